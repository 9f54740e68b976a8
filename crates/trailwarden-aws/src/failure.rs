//! Turning SDK errors into gaps: which target, which call, and a kind a human can act on.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use trailwarden_model::target::{AccountId, Gap, GapKind};

/// Where the failing call was made: the same error code means different things for an account
/// as a whole and for one region of an account whose other regions answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapScope {
    /// Role assumption, identity, region discovery.
    Account,
    /// A call in one region, with credentials that worked elsewhere.
    Region,
}

const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "AuthorizationError",
    "Forbidden",
];
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
];
/// Codes AWS gives when credentials are not valid where they were sent. In a region of an
/// account whose other regions answer, they mean the region is not enabled (opt-in regions
/// do not accept the account's tokens until enabled).
const TOKEN_REJECTED: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AuthFailure",
    "OptInRequired",
];
const BAD_CREDENTIALS: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

/// A call made outside any account fan-out (a bucket, an object, a queue, a topic) that
/// failed: what it was about, and the failure classified like a [`Gap`] when AWS answered (or
/// could not be reached). Displays as `subject: service:Operation failed (kind, Code): message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject}: {detail}")]
pub struct CallError {
    /// `bucket b (region r)`, `queue URL`, `topic ARN`, ...
    pub subject: String,
    /// The failure's kind; `None` for a local failure (a body that could not be read, a file
    /// that could not be written, an object over the size limit).
    pub kind: Option<GapKind>,
    pub code: Option<String>,
    pub detail: String,
}

impl CallError {
    /// A failed AWS call of `operation` in `region`.
    pub fn from_sdk<E>(
        err: &SdkError<E, HttpResponse>,
        subject: impl Into<String>,
        region: &str,
        operation: &str,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let gap = gap_from_sdk(
            err,
            &AccountId::as_recorded("-"),
            Some(region),
            operation,
            GapScope::Region,
        );
        let code = gap
            .code
            .as_deref()
            .map(|c| format!(", {c}"))
            .unwrap_or_default();
        Self {
            subject: subject.into(),
            kind: Some(gap.kind),
            detail: format!(
                "{} failed ({}{code}): {}",
                gap.operation, gap.kind, gap.message
            ),
            code: gap.code,
        }
    }

    /// A failure on this side of the call.
    pub fn local(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            kind: None,
            code: None,
            detail: detail.into(),
        }
    }
}

/// Classifies an SDK error into a [`Gap`] for `account` (and `region`, if the call was
/// regional), naming the failed `operation` as `service:Operation`.
pub fn gap_from_sdk<E>(
    err: &SdkError<E, HttpResponse>,
    account: &AccountId,
    region: Option<&str>,
    operation: &str,
    scope: GapScope,
) -> Gap
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (kind, code, message) = match err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let code = err.code().map(str::to_owned);
            let message = err
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| describe_response(err));
            let kind = code
                .as_deref()
                .map(|c| kind_of_code(c, scope))
                .unwrap_or(GapKind::ServiceError);
            (kind, code, message)
        }
        SdkError::TimeoutError(_) => (
            GapKind::Timeout,
            None,
            "the call timed out (see --call-timeout)".to_owned(),
        ),
        SdkError::DispatchFailure(failure) => {
            let chain = DisplayErrorContext(err).to_string();
            if failure.is_timeout() {
                (GapKind::Timeout, None, chain)
            } else if failure.is_io() {
                (GapKind::Unreachable, None, chain)
            } else if let Some(inner) = innermost_connector_error(err) {
                // A credential provider (AssumeRole) that could not reach STS.
                let kind = if inner.is_timeout() {
                    GapKind::Timeout
                } else if inner.is_io() {
                    GapKind::Unreachable
                } else {
                    GapKind::ServiceError
                };
                (kind, None, inner.to_string())
            } else if let Some(meta) = innermost_aws_error(err) {
                // Credential resolution (e.g. a denied AssumeRole) fails here, before sending;
                // the AWS error it got is deep in the source chain.
                let code = meta.code().map(str::to_owned);
                let kind = code
                    .as_deref()
                    .map(|c| kind_of_code(c, scope))
                    .unwrap_or(GapKind::ServiceError);
                let message = meta.message().map(str::to_owned).unwrap_or(chain);
                (kind, code, message)
            } else {
                let (kind, code) = kind_from_text(&chain, scope);
                (kind, code, chain)
            }
        }
        _ => {
            let chain = DisplayErrorContext(err).to_string();
            let (kind, code) = kind_from_text(&chain, scope);
            (kind, code, chain)
        }
    };
    Gap {
        account: account.clone(),
        region: region.map(str::to_owned),
        operation: operation.to_owned(),
        kind,
        code,
        message: one_line(&message),
    }
}

/// The AWS error metadata (code, message) nearest the root cause, if the chain holds one.
fn innermost_aws_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a aws_smithy_types::error::ErrorMetadata> {
    let mut found = None;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(meta) = e.downcast_ref::<aws_smithy_types::error::ErrorMetadata>()
            && meta.code().is_some()
        {
            found = Some(meta);
        }
        current = e.source();
    }
    found
}

/// The deepest connector error with a definite cause (I/O, timeout) in the chain.
fn innermost_connector_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a aws_smithy_runtime_api::client::result::ConnectorError> {
    let mut found = None;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(c) = e.downcast_ref::<aws_smithy_runtime_api::client::result::ConnectorError>()
            && (c.is_io() || c.is_timeout())
        {
            found = Some(c);
        }
        current = e.source();
    }
    found
}

fn kind_of_code(code: &str, scope: GapScope) -> GapKind {
    if ACCESS_DENIED.contains(&code) {
        GapKind::AccessDenied
    } else if THROTTLED.contains(&code) {
        GapKind::Throttled
    } else if TOKEN_REJECTED.contains(&code) {
        match scope {
            GapScope::Region => GapKind::RegionNotEnabled,
            GapScope::Account => GapKind::BadCredentials,
        }
    } else if BAD_CREDENTIALS.contains(&code) {
        GapKind::BadCredentials
    } else {
        GapKind::ServiceError
    }
}

/// For errors that only carry text (credential providers wrap the STS error they got).
fn kind_from_text(text: &str, scope: GapScope) -> (GapKind, Option<String>) {
    let tokens: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    for group in [ACCESS_DENIED, THROTTLED, TOKEN_REJECTED, BAD_CREDENTIALS] {
        if let Some(code) = group.iter().find(|code| tokens.contains(code)) {
            return (kind_of_code(code, scope), Some((*code).to_owned()));
        }
    }
    if text.contains("no providers in chain") || text.contains("failed to load credentials") {
        return (GapKind::BadCredentials, None);
    }
    (GapKind::ServiceError, None)
}

fn describe_response<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: std::error::Error + 'static,
{
    match err.raw_response() {
        Some(raw) => format!(
            "HTTP {} without an AWS error message",
            raw.status().as_u16()
        ),
        None => DisplayErrorContext(err).to_string(),
    }
}

fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    const MAX: usize = 600;
    if joined.len() > MAX {
        let mut end = MAX;
        while !joined.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &joined[..end])
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(
            kind_of_code("AccessDenied", GapScope::Account),
            GapKind::AccessDenied
        );
        assert_eq!(
            kind_of_code("ThrottlingException", GapScope::Region),
            GapKind::Throttled
        );
        assert_eq!(
            kind_of_code("UnrecognizedClientException", GapScope::Region),
            GapKind::RegionNotEnabled
        );
        assert_eq!(
            kind_of_code("UnrecognizedClientException", GapScope::Account),
            GapKind::BadCredentials
        );
        assert_eq!(
            kind_of_code("TrailNotFoundException", GapScope::Region),
            GapKind::ServiceError
        );
    }

    #[test]
    fn wrapped_errors_are_classified_by_their_code_word() {
        let text = "dispatch failure: other: failed to load credentials: an error occurred while loading credentials: service error: AccessDenied: User: x is not authorized to perform: sts:AssumeRole";
        assert_eq!(
            kind_from_text(text, GapScope::Account),
            (GapKind::AccessDenied, Some("AccessDenied".into()))
        );
        // "AccessDeniedException" must not be read as the shorter word inside it.
        assert_eq!(
            kind_from_text("error AccessDeniedException: nope", GapScope::Region),
            (GapKind::AccessDenied, Some("AccessDeniedException".into()))
        );
        assert_eq!(
            kind_from_text("something else entirely", GapScope::Region).0,
            GapKind::ServiceError
        );
    }

    #[test]
    fn messages_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert!(one_line(&"é".repeat(1000)).chars().count() <= 601);
    }
}
