"""moto's server, with DynamoDB writes made atomic (and SQS receives no longer O(depth)).

DynamoDB evaluates a condition expression and applies the write as one atomic step; Missive's
"exactly once in effect" rests on that (two concurrent claims of one message_id: one wins).
moto's threaded server evaluates the condition and writes in two steps without a lock, so two
concurrent conditional writes can both pass. This launcher serialises the DynamoDB backend's
item writes with one lock, which restores DynamoDB's guarantee and changes nothing else.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT (the same options as moto_server).
"""
import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend

_lock = threading.RLock()


def _atomic(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    return wrapper


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "get_item"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

# SQS: for every message it receives, moto checks the queue's retention period through
# get_queue_attributes, which computes all the queue's attributes, the approximate message
# counts included (each a pass over every message of the queue), three times. A ReceiveMessage
# then costs O(received x depth): 0.6 s at a depth of 1,000, 1.8 s at 3,000 — the benchmark's
# queue. Reading the one attribute gives the same answer in O(1).
from moto.core.utils import unix_time  # noqa: E402
from moto.sqs.models import SQSBackend  # noqa: E402

if hasattr(SQSBackend, "is_message_valid_based_on_retention_period"):

    def _within_retention(self, queue_name, message):
        queue = self.get_queue(queue_name)
        retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
        return retain_until > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = _within_retention

from moto.server import main  # noqa: E402  (after the patches, so the server uses them)

if __name__ == "__main__":
    sys.exit(main())
