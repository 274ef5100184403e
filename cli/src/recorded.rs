//! Which message ids MessageLog already holds, read with `BatchGetItem` (100 keys per call,
//! only the key projected). `bulk` uses it so that running the same file twice does not
//! enqueue again what `send` already took.
//!
//! A message enqueued but not yet taken by `send` has no item: it is not seen here. That copy
//! is still harmless, as `send` acknowledges a second copy of a `message_id` as a duplicate.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use futures::StreamExt;
use missive::schema::MESSAGE_LOG;

use crate::error::{CliError, CliResult};
use crate::item_attrs::{text, Item};

/// DynamoDB's cap on the keys of one `BatchGetItem` call.
pub const KEYS_PER_CALL: usize = 100;

/// Calls per chunk of keys, the first included: `UnprocessedKeys` (throttling, or the 16 MB
/// answer cap) are asked again this many times at most, with a growing pause.
pub const ATTEMPTS: u32 = 5;

/// The first pause before asking for unprocessed keys again; doubled at each attempt.
const FIRST_PAUSE: Duration = Duration::from_millis(50);

/// What the lookup found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lookup {
    /// The ids MessageLog holds.
    pub recorded: HashSet<String>,
    /// The ids DynamoDB still left unprocessed after every attempt: not known either way.
    pub unchecked: Vec<String>,
}

/// One `BatchGetItem` answer for one table: the ids found and the ids left for another call.
#[derive(Debug, Default)]
pub struct Answer {
    pub found: Vec<String>,
    pub unprocessed: Vec<String>,
}

/// Looks `ids` up in `table`, `KEYS_PER_CALL` at a time, `concurrency` calls at once.
pub async fn lookup(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    ids: &[String],
    concurrency: usize,
) -> CliResult<Lookup> {
    // DynamoDB refuses a call that names the same key twice.
    let mut unique: Vec<String> = ids.to_vec();
    unique.sort();
    unique.dedup();
    let chunks: Vec<Vec<String>> = unique.chunks(KEYS_PER_CALL).map(<[String]>::to_vec).collect();
    let results: Vec<CliResult<(Vec<String>, Vec<String>)>> = futures::stream::iter(chunks)
        .map(|chunk| with_retries(chunk, FIRST_PAUSE, |keys| batch_get(dynamo, table, keys)))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut found = Lookup::default();
    for result in results {
        let (recorded, unchecked) = result?;
        found.recorded.extend(recorded);
        found.unchecked.extend(unchecked);
    }
    found.unchecked.sort();
    Ok(found)
}

/// Calls `call` with `ids`, then again with what it left unprocessed, `ATTEMPTS` calls at
/// most, pausing `first_pause`, then twice as long each time. Returns (found, still unprocessed).
pub async fn with_retries<F, Fut>(
    ids: Vec<String>,
    first_pause: Duration,
    mut call: F,
) -> CliResult<(Vec<String>, Vec<String>)>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = CliResult<Answer>>,
{
    let mut found = Vec::new();
    let mut pending = ids;
    let mut pause = first_pause;
    for attempt in 0..ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        let answer = call(pending).await?;
        found.extend(answer.found);
        pending = answer.unprocessed;
    }
    Ok((found, pending))
}

fn key_name() -> &'static str {
    MESSAGE_LOG.partition.0
}

/// The `message_id` of each key or item (those without one are ignored).
fn ids_of(items: &[Item]) -> Vec<String> {
    items.iter().filter_map(|item| text(item, key_name())).collect()
}

/// One `BatchGetItem` call (at most `KEYS_PER_CALL` ids), projecting only the key.
async fn batch_get(dynamo: &aws_sdk_dynamodb::Client, table: &str, ids: Vec<String>) -> CliResult<Answer> {
    let keys = ids.into_iter().map(|id| HashMap::from([(key_name().to_owned(), AttributeValue::S(id))])).collect();
    let request = KeysAndAttributes::builder()
        .set_keys(Some(keys))
        // A placeholder, as everywhere: no attribute name is ever written bare.
        .projection_expression("#id")
        .expression_attribute_names("#id", key_name())
        .build()
        .map_err(|e| CliError::Runtime(format!("BatchGetItem {table}: {e}")))?;
    let output = dynamo
        .batch_get_item()
        .request_items(table, request)
        .send()
        .await
        .map_err(|e| CliError::aws(&format!("BatchGetItem {table}"), &e))?;
    let found = output.responses.as_ref().and_then(|r| r.get(table)).map(|items| ids_of(items)).unwrap_or_default();
    let unprocessed =
        output.unprocessed_keys.as_ref().and_then(|u| u.get(table)).map(|k| ids_of(k.keys())).unwrap_or_default();
    Ok(Answer { found, unprocessed })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn unprocessed_keys_are_asked_again() {
        let calls = Mutex::new(Vec::new());
        let (found, left) = with_retries(ids(&["c:1", "c:2", "c:3"]), Duration::ZERO, |keys| {
            calls.lock().unwrap().push(keys.clone());
            let first = calls.lock().unwrap().len() == 1;
            async move {
                // The first call finds c:1 and leaves c:2 and c:3; the second finds c:3.
                Ok(if first {
                    Answer { found: ids(&["c:1"]), unprocessed: ids(&["c:2", "c:3"]) }
                } else {
                    Answer { found: ids(&["c:3"]), unprocessed: vec![] }
                })
            }
        })
        .await
        .unwrap();
        assert_eq!((found, left), (ids(&["c:1", "c:3"]), vec![]));
        assert_eq!(calls.into_inner().unwrap(), [ids(&["c:1", "c:2", "c:3"]), ids(&["c:2", "c:3"])]);
    }

    #[tokio::test]
    async fn the_retries_are_bounded_and_what_is_left_is_returned() {
        let calls = Mutex::new(0u32);
        let (found, left) = with_retries(ids(&["c:1"]), Duration::ZERO, |keys| {
            *calls.lock().unwrap() += 1;
            async move { Ok(Answer { found: vec![], unprocessed: keys }) }
        })
        .await
        .unwrap();
        assert_eq!((found, left), (vec![], ids(&["c:1"])));
        assert_eq!(calls.into_inner().unwrap(), ATTEMPTS);
    }

    #[tokio::test]
    async fn an_error_stops_the_lookup() {
        let result = with_retries(ids(&["c:1"]), Duration::ZERO, |_| async {
            Err::<Answer, _>(CliError::Runtime("BatchGetItem MessageLog: access denied".into()))
        })
        .await;
        assert!(result.unwrap_err().to_string().contains("access denied"));
    }

    #[tokio::test]
    async fn nothing_to_look_up_makes_no_call() {
        let (found, left) =
            with_retries(vec![], Duration::ZERO, |_| async { panic!("no call expected") }).await.unwrap();
        assert!(found.is_empty() && left.is_empty());
    }
}
