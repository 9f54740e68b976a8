//! The central SQS queue `watch` consumes: long-poll receive, delete after handling.

use crate::client::AccountConfig;
use crate::failure::CallError;
use aws_sdk_sqs::types::MessageSystemAttributeName;

/// One received message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How many times SQS has handed this message out (1 the first time).
    pub receive_count: u32,
}

/// The queue's region: from an AWS queue URL (`https://sqs.<region>.amazonaws.com/...`),
/// else `fallback` (emulators).
pub fn queue_region(url: &str, fallback: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|host| {
            let parts: Vec<&str> = host.split('.').collect();
            (parts.len() >= 4 && parts[0] == "sqs").then(|| parts[1].to_owned())
        })
        .unwrap_or_else(|| fallback.to_owned())
}

/// The queue's visibility timeout in seconds (how long a received message stays hidden).
pub async fn visibility_timeout(
    account: &AccountConfig,
    region: &str,
    url: &str,
) -> Result<u32, CallError> {
    let out = account
        .sqs(region)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| {
            CallError::from_sdk(&e, format!("queue {url}"), region, "sqs:GetQueueAttributes")
        })?;
    Ok(out
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse().ok())
        .unwrap_or(30))
}

/// Receives up to 10 messages, waiting up to `wait_seconds` (long polling).
pub async fn receive(
    account: &AccountConfig,
    region: &str,
    url: &str,
    wait_seconds: i32,
) -> Result<Vec<Message>, CallError> {
    let out = account
        .sqs(region)
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds.clamp(0, 20))
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| {
            CallError::from_sdk(&e, format!("queue {url}"), region, "sqs:ReceiveMessage")
        })?;
    Ok(out
        .messages()
        .iter()
        .map(|m| Message {
            id: m.message_id().unwrap_or_default().to_owned(),
            receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
            body: m.body().unwrap_or_default().to_owned(),
            receive_count: m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        })
        .collect())
}

/// Keeps `message` hidden from other receivers for `seconds` more from now (SQS caps a
/// message's visibility at 12 hours): a heartbeat while it is handled, or a back-off before
/// its next attempt.
pub async fn change_visibility(
    account: &AccountConfig,
    region: &str,
    url: &str,
    message: &Message,
    seconds: i32,
) -> Result<(), CallError> {
    account
        .sqs(region)
        .change_message_visibility()
        .queue_url(url)
        .receipt_handle(&message.receipt_handle)
        .visibility_timeout(seconds.clamp(0, 43_200))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            CallError::from_sdk(
                &e,
                format!("queue {url}"),
                region,
                "sqs:ChangeMessageVisibility",
            )
        })
}

/// Deletes handled messages, up to 10 (one batch of a receive) in one call; the messages
/// that could not be deleted come back with why (they will be redelivered and recognised).
pub async fn delete_batch(
    account: &AccountConfig,
    region: &str,
    url: &str,
    messages: &[&Message],
) -> Vec<(String, String)> {
    use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
    if messages.is_empty() {
        return Vec::new();
    }
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&m.receipt_handle)
                .build()
                .ok()
        })
        .collect();
    match account
        .sqs(region)
        .delete_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await
    {
        Ok(out) => out
            .failed()
            .iter()
            .map(|f| {
                let id = f
                    .id()
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| messages.get(i))
                    .map_or_else(|| f.id().to_owned(), |m| m.id.clone());
                (id, format!("{}: {}", f.code(), f.message().unwrap_or("")))
            })
            .collect(),
        Err(e) => {
            let why =
                CallError::from_sdk(&e, format!("queue {url}"), region, "sqs:DeleteMessageBatch")
                    .to_string();
            messages
                .iter()
                .map(|m| (m.id.clone(), why.clone()))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_queue_urls() {
        assert_eq!(
            queue_region(
                "https://sqs.eu-west-1.amazonaws.com/111122223333/q",
                "us-east-1"
            ),
            "eu-west-1"
        );
        assert_eq!(
            queue_region("http://127.0.0.1:5000/111122223333/q", "us-east-1"),
            "us-east-1"
        );
    }
}
