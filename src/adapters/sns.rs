//! The staff's notifier over SNS (`REPLIES_TOPIC_ARN`, DESIGN.md "Conversations"): one
//! `Publish` per reply; the template subscribes `ReplyNotificationEmail` to the topic.

use async_trait::async_trait;

use crate::adapters::describe;
use crate::ports::{Notifier, StoreError};

/// SNS refuses an email subject longer than 100 characters.
const MAX_SUBJECT_CHARS: usize = 100;

/// Publishes notices to one SNS topic.
#[derive(Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsNotifier { client, topic_arn: topic_arn.into() }
    }
}

/// A subject SNS accepts: one line of printable characters, at most 100.
fn subject_line(subject: &str) -> String {
    let line: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.trim();
    if line.is_empty() {
        "Missive".into()
    } else {
        line.chars().take(MAX_SUBJECT_CHARS).collect()
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, subject: &str, message: &str) -> Result<(), StoreError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject_line(subject))
            .message(message)
            .send()
            .await
            .map_err(|e| StoreError::new("Publish SNS", describe(&e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::subject_line;

    #[test]
    fn a_subject_is_one_short_printable_line() {
        assert_eq!(subject_line("Reply\nfrom +33•••78"), "Reply from +33•••78");
        assert_eq!(subject_line(&"x".repeat(150)).chars().count(), 100);
        assert_eq!(subject_line(" \t"), "Missive");
    }
}
