//! SNS topics `watch` notifies: publish one message.

use crate::client::AccountConfig;
use crate::failure::CallError;

/// The topic's region, from its ARN (`arn:aws:sns:<region>:<account>:<name>`).
pub fn topic_region(topic_arn: &str) -> Option<&str> {
    let parts: Vec<&str> = topic_arn.split(':').collect();
    // `then`, not `then_some`: the index must not be evaluated for a short value.
    (parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[3].is_empty())
        .then(|| parts[3])
}

/// Publishes `message` (with an e-mail `subject`, cut to SNS's 100 characters) to the topic.
pub async fn publish(
    account: &AccountConfig,
    topic_arn: &str,
    subject: &str,
    message: &str,
) -> Result<(), CallError> {
    let subject_of = || format!("topic {topic_arn}");
    let region = topic_region(topic_arn)
        .ok_or_else(|| CallError::local(subject_of(), "not an SNS topic ARN"))?
        .to_owned();
    // SNS subjects: printable ASCII without line breaks, at most 100 characters.
    let subject: String = subject
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .take(100)
        .collect();
    account
        .sns(&region)
        .publish()
        .topic_arn(topic_arn)
        .subject(subject.trim())
        .message(message)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| CallError::from_sdk(&e, subject_of(), &region, "sns:Publish"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_arn() {
        assert_eq!(
            topic_region("arn:aws:sns:eu-west-1:100000000000:alerts"),
            Some("eu-west-1")
        );
        assert_eq!(topic_region("alerts"), None);
        assert_eq!(topic_region("arn:aws:sqs:eu-west-1:1:q"), None);
    }
}
