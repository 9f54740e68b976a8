//! One CloudTrail record (an "event"), as AWS writes it in log files, EventBridge `detail` and
//! CloudTrail Lake.
//!
//! The well-known keys get typed fields; every other key is kept in `extra`, so that
//! serializing a parsed record gives back every key of the input. Real-world data is sloppy
//! (rule-test fixtures converted from YAML, anonymised exports), so parsing accepts:
//!
//! - account ids (`recipientAccountId`, `userIdentity.accountId`) written as JSON integers:
//!   they become decimal strings, zero-padded to 12 digits because an integer cannot carry an account id's leading
//!   zeros; account ids that are not 12 digits are kept as written;
//! - `readOnly`, `managementEvent` and `sessionCredentialFromConsole` written as the strings
//!   `"true"` / `"false"` (any ASCII case);
//! - any `eventTime` string (Panther writes `2024-11-25 22:00:58.000000000`): it is kept as the
//!   string, not interpreted;
//! - a well-known key whose value is `null`: the typed field stays `None` and the key is kept
//!   in `extra` as `null`, so it survives a round trip.
//!
//! A value of a wrong type (an object where `eventName` should be a string) is an error that
//! names the field. A key that appears twice in the same object is an error too: parsers
//! disagree on which copy wins, and an attacker could use that to show different events to
//! different tools.
//!
//! Serializing writes the normalised values (strings for account ids, booleans for flags),
//! the well-known keys first, then `extra` in input order.

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// A CloudTrail record. Every well-known field is optional: CloudTrail omits what does not
/// apply, and records from rule tests or exports are often partial.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudTrailRecord {
    /// `eventVersion`, e.g. `1.08`.
    pub event_version: Option<String>,
    /// `userIdentity`: who made the call.
    pub user_identity: Option<UserIdentity>,
    /// `eventTime`, as written (normally `2024-11-25T22:00:58Z`).
    pub event_time: Option<String>,
    /// `eventSource`, e.g. `cloudtrail.amazonaws.com`.
    pub event_source: Option<String>,
    /// `eventName`, e.g. `StopLogging`.
    pub event_name: Option<String>,
    /// `awsRegion`.
    pub aws_region: Option<String>,
    /// `sourceIPAddress` (an IP address, or a service name such as `cloudtrail.amazonaws.com`).
    pub source_ip_address: Option<String>,
    /// `userAgent`.
    pub user_agent: Option<String>,
    /// `errorCode`: present when the call failed.
    pub error_code: Option<String>,
    /// `errorMessage`.
    pub error_message: Option<String>,
    /// `requestParameters`, as sent by the caller.
    pub request_parameters: Option<Value>,
    /// `responseElements`.
    pub response_elements: Option<Value>,
    /// `additionalEventData`.
    pub additional_event_data: Option<Value>,
    /// `requestID`.
    pub request_id: Option<String>,
    /// `eventID`: unique per record.
    pub event_id: Option<String>,
    /// `readOnly`.
    pub read_only: Option<bool>,
    /// `resources`: normally objects with `ARN`, `accountId` and `type`, but kept as JSON
    /// because real data also has other things there (Panther tests hold Python-repr strings).
    pub resources: Option<Vec<Value>>,
    /// `eventType`, e.g. `AwsApiCall`, `AwsServiceEvent`, `AwsConsoleSignIn`.
    pub event_type: Option<String>,
    /// `apiVersion`.
    pub api_version: Option<String>,
    /// `managementEvent`.
    pub management_event: Option<bool>,
    /// `recipientAccountId`: the account that received the record.
    pub recipient_account_id: Option<String>,
    /// `sharedEventID`: links the copies of one cross-account event.
    pub shared_event_id: Option<String>,
    /// `vpcEndpointId`.
    pub vpc_endpoint_id: Option<String>,
    /// `eventCategory`, e.g. `Management`, `Data`, `Insight`.
    pub event_category: Option<String>,
    /// `tlsDetails`.
    pub tls_details: Option<Value>,
    /// `sessionCredentialFromConsole`.
    pub session_credential_from_console: Option<bool>,
    /// Every other key, in input order, and well-known keys whose value was `null`.
    pub extra: Map<String, Value>,
}

/// `userIdentity` of a record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserIdentity {
    /// `type`, e.g. `IAMUser`, `AssumedRole`, `Root`, `AWSService`.
    pub identity_type: Option<String>,
    /// `principalId`.
    pub principal_id: Option<String>,
    /// `arn` of the principal.
    pub arn: Option<String>,
    /// `accountId` of the principal.
    pub account_id: Option<String>,
    /// `accessKeyId` used to sign the call.
    pub access_key_id: Option<String>,
    /// `userName`.
    pub user_name: Option<String>,
    /// `invokedBy`: the AWS service that made the call for the principal.
    pub invoked_by: Option<String>,
    /// `sessionContext`, kept as JSON.
    pub session_context: Option<Value>,
    /// Every other key, and well-known keys whose value was `null`.
    pub extra: Map<String, Value>,
}

impl CloudTrailRecord {
    /// True when the call failed: `errorCode` is present and not empty. Failed calls raise
    /// findings but never trigger remediation.
    pub fn is_failed(&self) -> bool {
        self.error_code
            .as_deref()
            .is_some_and(|code| !code.is_empty())
    }

    /// The caller's ARN (`userIdentity.arn`); for an assumed role, the session ARN.
    pub fn actor_arn(&self) -> Option<&str> {
        non_empty(self.user_identity.as_ref()?.arn.as_deref())
    }

    /// The access key that signed the call (`userIdentity.accessKeyId`).
    pub fn access_key_id(&self) -> Option<&str> {
        non_empty(self.user_identity.as_ref()?.access_key_id.as_deref())
    }

    /// The account the record belongs to: `recipientAccountId`, else `userIdentity.accountId`.
    pub fn account_id(&self) -> Option<&str> {
        non_empty(self.recipient_account_id.as_deref())
            .or_else(|| non_empty(self.user_identity.as_ref()?.account_id.as_deref()))
    }
}

/// Empty strings are as good as absent for the helpers above.
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// Why a value could not be stored in a typed field. `path` is the dotted key path.
#[derive(Debug)]
struct FieldError {
    path: String,
    problem: String,
}

impl FieldError {
    fn new(key: &str, problem: impl Into<String>) -> Self {
        Self {
            path: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// The same error seen from the enclosing object's key.
    fn within(mut self, parent: &str) -> Self {
        self.path = format!("{parent}.{}", self.path);
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.path, self.problem)
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(key: &str, value: Value) -> Result<String, FieldError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(FieldError::new(
            key,
            format!("expected a string, found {}", kind_of(&other)),
        )),
    }
}

fn account_id(key: &str, value: Value) -> Result<String, FieldError> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => match n.as_u64() {
            Some(id) => Ok(format!("{id:012}")),
            None => Err(FieldError::new(
                key,
                format!("expected an account id, found the number {n}"),
            )),
        },
        other => Err(FieldError::new(
            key,
            format!("expected an account id, found {}", kind_of(&other)),
        )),
    }
}

fn flag(key: &str, value: Value) -> Result<bool, FieldError> {
    match value {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        Value::String(s) => Err(FieldError::new(
            key,
            format!("expected a boolean, found the string {s:?}"),
        )),
        other => Err(FieldError::new(
            key,
            format!("expected a boolean, found {}", kind_of(&other)),
        )),
    }
}

fn json(_key: &str, value: Value) -> Result<Value, FieldError> {
    Ok(value)
}

fn user_identity(key: &str, value: Value) -> Result<UserIdentity, FieldError> {
    object_from_value(key, value)
}

fn array(key: &str, value: Value) -> Result<Vec<Value>, FieldError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(FieldError::new(
            key,
            format!("expected an array, found {}", kind_of(&other)),
        )),
    }
}

/// What the object types share, so one visitor and one serializer serve them all.
trait Fields: Default {
    const EXPECTING: &'static str;
    /// Stores a non-null value: in its typed field for a well-known key, else in `extra`.
    fn set(&mut self, key: String, value: Value) -> Result<(), FieldError>;
    /// Whether the typed field for `key` holds a value (false for other keys).
    fn is_set(&self, key: &str) -> bool;
    fn extra_mut(&mut self) -> &mut Map<String, Value>;
    fn extra(&self) -> &Map<String, Value>;
    fn serialize_known<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;

    fn has_key(&self, key: &str) -> bool {
        self.is_set(key) || self.extra().contains_key(key)
    }

    fn insert(&mut self, key: String, value: Value) -> Result<(), FieldError> {
        if value.is_null() {
            self.extra_mut().insert(key, Value::Null);
            Ok(())
        } else {
            self.set(key, value)
        }
    }
}

/// Lists each well-known key once and generates storing, lookup and serialization from it,
/// so the three cannot drift apart.
macro_rules! well_known_fields {
    ($ty:ty, $expecting:literal, { $($field:ident: $key:literal => $convert:expr,)* }) => {
        impl $ty {
            /// The well-known keys, spelled as in the JSON.
            pub const KNOWN_KEYS: &'static [&'static str] = &[$($key),*];
        }

        impl Fields for $ty {
            const EXPECTING: &'static str = $expecting;

            fn set(&mut self, key: String, value: Value) -> Result<(), FieldError> {
                match key.as_str() {
                    $($key => self.$field = Some($convert($key, value)?),)*
                    _ => {
                        self.extra.insert(key, value);
                    }
                }
                Ok(())
            }

            fn is_set(&self, key: &str) -> bool {
                match key {
                    $($key => self.$field.is_some(),)*
                    _ => false,
                }
            }

            fn extra_mut(&mut self) -> &mut Map<String, Value> {
                &mut self.extra
            }

            fn extra(&self) -> &Map<String, Value> {
                &self.extra
            }

            fn serialize_known<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                $(if let Some(value) = &self.$field {
                    map.serialize_entry($key, value)?;
                })*
                Ok(())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serialize_object(self, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_map(ObjectVisitor(PhantomData))
            }
        }
    };
}

well_known_fields!(CloudTrailRecord, "a CloudTrail record (a JSON object)", {
    event_version: "eventVersion" => string,
    user_identity: "userIdentity" => user_identity,
    event_time: "eventTime" => string,
    event_source: "eventSource" => string,
    event_name: "eventName" => string,
    aws_region: "awsRegion" => string,
    source_ip_address: "sourceIPAddress" => string,
    user_agent: "userAgent" => string,
    error_code: "errorCode" => string,
    error_message: "errorMessage" => string,
    request_parameters: "requestParameters" => json,
    response_elements: "responseElements" => json,
    additional_event_data: "additionalEventData" => json,
    request_id: "requestID" => string,
    event_id: "eventID" => string,
    read_only: "readOnly" => flag,
    resources: "resources" => array,
    event_type: "eventType" => string,
    api_version: "apiVersion" => string,
    management_event: "managementEvent" => flag,
    recipient_account_id: "recipientAccountId" => account_id,
    shared_event_id: "sharedEventID" => string,
    vpc_endpoint_id: "vpcEndpointId" => string,
    event_category: "eventCategory" => string,
    tls_details: "tlsDetails" => json,
    session_credential_from_console: "sessionCredentialFromConsole" => flag,
});

well_known_fields!(UserIdentity, "a userIdentity (a JSON object)", {
    identity_type: "type" => string,
    principal_id: "principalId" => string,
    arn: "arn" => string,
    account_id: "accountId" => account_id,
    access_key_id: "accessKeyId" => string,
    user_name: "userName" => string,
    invoked_by: "invokedBy" => string,
    session_context: "sessionContext" => json,
});

fn serialize_object<T: Fields, S: Serializer>(
    object: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    object.serialize_known(&mut map)?;
    for (key, value) in object.extra() {
        // A null kept for a well-known key gives way if code has since set the typed field.
        if !object.is_set(key) {
            map.serialize_entry(key, value)?;
        }
    }
    map.end()
}

/// Builds a nested object (userIdentity) from an already parsed JSON value.
fn object_from_value<T: Fields>(key: &str, value: Value) -> Result<T, FieldError> {
    match value {
        Value::Object(map) => {
            let mut out = T::default();
            for (k, v) in map {
                out.insert(k, v).map_err(|e| e.within(key))?;
            }
            Ok(out)
        }
        other => Err(FieldError::new(
            key,
            format!("expected {}, found {}", T::EXPECTING, kind_of(&other)),
        )),
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Fields> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut out = T::default();
        while let Some(key) = map.next_key::<String>()? {
            if out.has_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let value: Value = map.next_value()?;
            out.insert(key, value).map_err(de::Error::custom)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(v: Value) -> CloudTrailRecord {
        serde_json::from_value(v).expect("parses")
    }

    fn parse_err(text: &str) -> String {
        serde_json::from_str::<CloudTrailRecord>(text)
            .expect_err("must not parse")
            .to_string()
    }

    #[test]
    fn typical_record_fills_typed_fields() {
        let r = parse(json!({
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/alice",
                "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice",
                "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}
            },
            "eventTime": "2024-11-25T22:00:58Z",
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "StopLogging",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2",
            "requestParameters": {"name": "main"},
            "responseElements": null,
            "requestID": "r-1",
            "eventID": "e-1",
            "readOnly": false,
            "resources": [{"ARN": "arn:aws:cloudtrail:us-east-1:111122223333:trail/main", "accountId": "111122223333", "type": "AWS::CloudTrail::Trail"}, "{'accountId': '1'}"],
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": "111122223333",
            "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3"},
            "sessionCredentialFromConsole": "true"
        }));
        assert_eq!(r.event_name.as_deref(), Some("StopLogging"));
        assert_eq!(r.source_ip_address.as_deref(), Some("198.51.100.7"));
        assert_eq!(r.read_only, Some(false));
        assert_eq!(r.management_event, Some(true));
        assert_eq!(r.session_credential_from_console, Some(true));
        assert_eq!(r.request_parameters, Some(json!({"name": "main"})));
        assert_eq!(r.response_elements, None);
        assert_eq!(r.extra.get("responseElements"), Some(&Value::Null));
        let ui = r.user_identity.as_ref().expect("userIdentity");
        assert_eq!(ui.identity_type.as_deref(), Some("IAMUser"));
        assert_eq!(ui.user_name.as_deref(), Some("alice"));
        let resources = r.resources.as_ref().expect("resources");
        assert_eq!(resources[0]["type"], json!("AWS::CloudTrail::Trail"));
        assert_eq!(resources.len(), 2);
        assert_eq!(r.actor_arn(), Some("arn:aws:iam::111122223333:user/alice"));
        assert_eq!(r.access_key_id(), Some("AKIAEXAMPLE"));
        assert_eq!(r.account_id(), Some("111122223333"));
        assert!(!r.is_failed());
    }

    #[test]
    fn integer_account_ids_become_12_digit_strings() {
        let r = parse(json!({
            "recipientAccountId": 123456789012u64,
            "userIdentity": {"accountId": 42},
        }));
        assert_eq!(r.recipient_account_id.as_deref(), Some("123456789012"));
        let ui = r.user_identity.as_ref().expect("userIdentity");
        assert_eq!(ui.account_id.as_deref(), Some("000000000042"));
    }

    #[test]
    fn account_ids_that_are_not_12_digits_are_kept_as_written() {
        for id in [
            "000000000",
            "00000000000",
            "1010101010101",
            "0123456789012",
            "",
        ] {
            let r = parse(json!({"recipientAccountId": id, "userIdentity": {"accountId": id}}));
            assert_eq!(r.recipient_account_id.as_deref(), Some(id));
            assert_eq!(
                r.user_identity.and_then(|u| u.account_id).as_deref(),
                Some(id)
            );
        }
    }

    #[test]
    fn negative_or_fractional_account_id_is_an_error_naming_the_field() {
        let err = parse_err(r#"{"recipientAccountId": -1}"#);
        assert!(err.contains("field `recipientAccountId`"), "{err}");
        let err = parse_err(r#"{"userIdentity": {"accountId": 1.5}}"#);
        assert!(err.contains("field `userIdentity.accountId`"), "{err}");
    }

    #[test]
    fn flags_accept_strings_in_any_case() {
        for (text, want) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("false", false),
            ("False", false),
        ] {
            let r = parse(
                json!({"readOnly": text, "managementEvent": text, "sessionCredentialFromConsole": text}),
            );
            assert_eq!(r.read_only, Some(want), "{text}");
            assert_eq!(r.management_event, Some(want), "{text}");
            assert_eq!(r.session_credential_from_console, Some(want), "{text}");
        }
    }

    #[test]
    fn flag_with_other_string_is_an_error_naming_the_field() {
        let err = parse_err(r#"{"readOnly": "maybe"}"#);
        assert!(err.contains("field `readOnly`"), "{err}");
        assert!(err.contains("\"maybe\""), "{err}");
        let err = parse_err(r#"{"managementEvent": 1}"#);
        assert!(err.contains("field `managementEvent`"), "{err}");
    }

    #[test]
    fn panther_event_time_is_kept_verbatim() {
        let r = parse(json!({"eventTime": "2024-11-25 22:00:58.000000000"}));
        assert_eq!(
            r.event_time.as_deref(),
            Some("2024-11-25 22:00:58.000000000")
        );
    }

    #[test]
    fn wrong_type_is_an_error_naming_the_field() {
        let err = parse_err(r#"{"eventVersion": "1.08", "eventName": {"x": 1}}"#);
        assert!(err.contains("field `eventName`"), "{err}");
        assert!(err.contains("expected a string, found an object"), "{err}");

        let err = parse_err(r#"{"userIdentity": {"arn": ["a"]}}"#);
        assert!(err.contains("field `userIdentity.arn`"), "{err}");

        let err = parse_err(r#"{"userIdentity": "root"}"#);
        assert!(err.contains("field `userIdentity`"), "{err}");

        let err = parse_err(r#"{"resources": {"ARN": "a"}}"#);
        assert!(err.contains("field `resources`"), "{err}");
    }

    #[test]
    fn top_level_that_is_not_an_object_is_an_error() {
        let err = parse_err(r#"["eventName"]"#);
        assert!(err.contains("expected a CloudTrail record"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let err = parse_err(r#"{"eventName": "StopLogging", "eventName": "StartLogging"}"#);
        assert!(err.contains("duplicate key `eventName`"), "{err}");
        let err = parse_err(r#"{"x": 1, "x": 2}"#);
        assert!(err.contains("duplicate key `x`"), "{err}");
        let err = parse_err(r#"{"errorCode": null, "errorCode": "AccessDenied"}"#);
        assert!(err.contains("duplicate key `errorCode`"), "{err}");
    }

    #[test]
    fn unknown_fields_and_nulls_survive_a_round_trip() {
        let input = json!({
            "eventName": "DeleteTrail",
            "p_log_type": "AWS.CloudTrail",
            "eventname": "lowercase keys are not the same key",
            "insightDetails": {"state": "Start", "nested": [1, 2.5, null, {"a": "b"}]},
            "userIdentity": {"type": "AssumedRole", "assumed_role": "admin", "invokedBy": null},
            "resources": [{"ARN": "arn:x", "extraResourceKey": true}],
            "errorCode": null,
            "responseElements": null,
            "requestParameters": "a string is kept as it is"
        });
        let record = parse(input.clone());
        assert_eq!(
            record.extra.get("p_log_type"),
            Some(&json!("AWS.CloudTrail"))
        );
        assert_eq!(record.error_code, None);
        let ui = record.user_identity.as_ref().expect("userIdentity");
        assert_eq!(ui.extra.get("assumed_role"), Some(&json!("admin")));
        assert_eq!(ui.invoked_by, None);
        let back = serde_json::to_value(&record).expect("serializes");
        assert_eq!(back, input);
        assert_eq!(parse(back), record);
    }

    #[test]
    fn setting_a_field_that_was_null_does_not_duplicate_the_key() {
        let mut record = parse(json!({"errorCode": null}));
        record.error_code = Some("AccessDenied".to_owned());
        let text = serde_json::to_string(&record).expect("serializes");
        assert_eq!(text, r#"{"errorCode":"AccessDenied"}"#);
    }

    #[test]
    fn helpers_treat_empty_strings_as_absent() {
        let r = parse(json!({
            "errorCode": "",
            "recipientAccountId": "",
            "userIdentity": {"arn": "", "accessKeyId": "", "accountId": "444455556666"}
        }));
        assert!(!r.is_failed());
        assert_eq!(r.actor_arn(), None);
        assert_eq!(r.access_key_id(), None);
        assert_eq!(r.account_id(), Some("444455556666"));
        assert!(parse(json!({"errorCode": "AccessDenied"})).is_failed());
        assert_eq!(CloudTrailRecord::default().account_id(), None);
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            // Dyadic fractions: exact in binary and in short decimal, so text round trips are exact.
            (any::<i32>(), 0..8i32)
                .prop_map(|(m, e)| Value::from(f64::from(m) / f64::from(1 << e))),
            ".{0,12}".prop_map(Value::String),
        ]
    }

    fn any_json() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-zA-Z_@]{1,8}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// A record in canonical form (what serialization writes), with random unknown keys.
    fn canonical_record() -> impl Strategy<Value = Value> {
        let s = || prop::option::of(".{0,16}");
        (
            (s(), s(), s(), prop::option::of(any::<bool>()), s()),
            prop::option::of(prop::option::of(any_json())),
            prop::option::of((s(), s(), prop::option::of("[0-9]{12}"))),
            prop::collection::vec(("x[a-zA-Z]{0,8}", any_json()), 0..4),
        )
            .prop_map(|((name, source, code, ro, time), params, ui, extra)| {
                let mut m = Map::new();
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        m.insert(k.to_owned(), v);
                    }
                };
                put("eventName", name.map(Value::String));
                put("eventSource", source.map(Value::String));
                put("errorCode", code.map(Value::String));
                put("readOnly", ro.map(Value::Bool));
                put("eventTime", time.map(Value::String));
                // Some(None) is a present-but-null key.
                put(
                    "requestParameters",
                    params.map(|p| p.unwrap_or(Value::Null)),
                );
                if let Some((arn, key, account)) = ui {
                    let mut u = Map::new();
                    for (k, v) in [("arn", arn), ("accessKeyId", key), ("accountId", account)] {
                        if let Some(v) = v {
                            u.insert(k.to_owned(), Value::String(v));
                        }
                    }
                    m.insert("userIdentity".to_owned(), Value::Object(u));
                }
                for (k, v) in extra {
                    m.insert(k, v);
                }
                Value::Object(m)
            })
    }

    fn sorted(v: &Value) -> Value {
        // Key order: typed keys are written first, so compare as sets of keys.
        match v {
            Value::Object(m) => {
                let mut pairs: Vec<_> = m.iter().collect();
                pairs.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn serialize_after_parse_gives_back_every_key(input in canonical_record()) {
            let text = serde_json::to_string(&input).expect("serializes");
            let record: CloudTrailRecord = serde_json::from_str(&text).expect("parses");
            let back = serde_json::to_value(&record).expect("serializes");
            prop_assert_eq!(sorted(&back), sorted(&input));
            let again: CloudTrailRecord = serde_json::from_value(back).expect("parses again");
            prop_assert_eq!(again, record);
        }

        #[test]
        fn any_json_object_parses_or_errors_without_panicking(input in any_json()) {
            let _ = serde_json::from_value::<CloudTrailRecord>(input);
        }
    }
}
