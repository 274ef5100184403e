"""moto's server, with DynamoDB writes made atomic.

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

from moto.server import main  # noqa: E402  (after the patch, so the server uses it)

if __name__ == "__main__":
    sys.exit(main())
