//! The CloudFormation templates of trailwarden's side in member accounts, as data: the
//! forwarding rule (every region) and the roles trailwarden uses there (one region: IAM is
//! global). `deploy --cloudformation` writes them and `deploy --stack-set` deploys them: one
//! source. The audit role's policies are the shipped ones in `docs/iam`, embedded at build
//! time, so the deployed role and the reviewed documents cannot drift apart.
//!
//! This module builds JSON only; it must not call AWS.

use crate::forwarding::Forwarding;
use serde_json::{Value, json};

const AUDIT_POLICY: &str = include_str!("../../../docs/iam/trailwarden-audit-policy.json");
const REMEDIATE_POLICY: &str = include_str!("../../../docs/iam/trailwarden-remediate-policy.json");

/// The forwarding rule of every member region. In regions other than the bus's, EventBridge
/// needs a role to put events on it: `ForwarderRoleName` in the same account.
pub fn member_forwarding(forwarding: &Forwarding) -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "trailwarden: forward tamper-relevant CloudTrail events to the security account's bus. Deploy as a StackSet to every member account and region.",
        "Parameters": {
            "SecurityEventBusArn": {"Type": "String", "Default": forwarding.bus_arn},
            "ForwarderRoleName": {
                "Type": "String",
                "Default": forwarding.forwarder_role_name.clone().unwrap_or_default(),
                "Description": "Role (in the same account) EventBridge uses to put events on the bus from other regions; empty if the bus's region is the only one."
            }
        },
        "Conditions": {"HasRole": {"Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ForwarderRoleName"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::Region"}, forwarding.bus_region()]}]}
        ]}},
        "Resources": {
            "ForwardTamperEvents": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": trailwarden_aws::forwarding::FORWARDING_RULE,
                    "State": "ENABLED",
                    "EventPattern": forwarding.pattern,
                    "Targets": [{
                        "Id": "trailwarden-security-bus",
                        "Arn": {"Ref": "SecurityEventBusArn"},
                        "RoleArn": {"Fn::If": [
                            "HasRole",
                            {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${ForwarderRoleName}"},
                            {"Ref": "AWS::NoValue"}
                        ]}
                    }]
                }
            }
        }
    })
}

/// The roles of a member account: `role_name`, which only `trusted_principal` (the security
/// account's trailwarden role) may assume, from inside `organization_id` and with a
/// `trailwarden-*` session name, with the shipped audit and remediation policies; and the
/// forwarder role EventBridge uses for a bus in another region, when one is named.
pub fn member_roles(
    role_name: &str,
    trusted_principal: &str,
    organization_id: &str,
    forwarding: &Forwarding,
) -> Value {
    // The shipped files are valid JSON (a unit test and the IAM checks read them).
    let audit: Value = serde_json::from_str(AUDIT_POLICY).unwrap_or(Value::Null);
    let remediate: Value = serde_json::from_str(REMEDIATE_POLICY).unwrap_or(Value::Null);
    let mut resources = json!({
        "AuditRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": role_name,
                "Description": "trailwarden: read the audit-relevant state and put it back to the baseline (docs/iam).",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "TrustTheSecurityAccountsTrailwarden",
                        "Effect": "Allow",
                        "Principal": {"AWS": {"Ref": "TrustedPrincipalArn"}},
                        "Action": "sts:AssumeRole",
                        "Condition": {
                            "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}},
                            "StringLike": {"sts:RoleSessionName": "trailwarden-*"}
                        }
                    }]
                },
                "Policies": [
                    {"PolicyName": "trailwarden-audit", "PolicyDocument": audit},
                    {"PolicyName": "trailwarden-remediate", "PolicyDocument": remediate}
                ]
            }
        }
    });
    if let Some(forwarder) = &forwarding.forwarder_role_name {
        resources["ForwarderRole"] = json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": forwarder,
                "Description": "trailwarden: EventBridge puts forwarded events on the security account's bus with it.",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sts:AssumeRole"
                    }]
                },
                "Policies": [{
                    "PolicyName": "trailwarden-forward",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": "events:PutEvents",
                            "Resource": forwarding.bus_arn
                        }]
                    }
                }]
            }
        });
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "trailwarden: the roles it uses in a member account. Deploy as a StackSet in one region (IAM is global).",
        "Parameters": {
            "TrustedPrincipalArn": {
                "Type": "String",
                "Default": trusted_principal,
                "Description": "The security account's trailwarden role: the only principal that may assume the audit role."
            },
            "OrganizationId": {
                "Type": "String",
                "Default": organization_id,
                "Description": "o-…: the principal must be inside this organization."
            }
        },
        "Resources": resources
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarding(role: Option<&str>) -> Forwarding {
        Forwarding {
            bus_arn: "arn:aws:events:us-east-1:100000000000:event-bus/default".into(),
            forwarder_role_name: role.map(str::to_owned),
            pattern: json!({"source": ["aws.cloudtrail"]}),
        }
    }

    #[test]
    fn the_audit_role_carries_the_shipped_policies_and_trusts_one_principal_inside_the_organization()
     {
        let t = member_roles(
            "TrailwardenAudit",
            "arn:aws:iam::100000000000:role/trailwarden",
            "o-abc123",
            &forwarding(None),
        );
        let role = &t["Resources"]["AuditRole"]["Properties"];
        assert_eq!(role["RoleName"], "TrailwardenAudit");
        let shipped = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert_eq!(role["Policies"][0]["PolicyDocument"], shipped(AUDIT_POLICY));
        assert_eq!(
            role["Policies"][1]["PolicyDocument"],
            shipped(REMEDIATE_POLICY)
        );
        let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
        assert_eq!(trust["Principal"]["AWS"]["Ref"], "TrustedPrincipalArn");
        assert_eq!(
            t["Parameters"]["TrustedPrincipalArn"]["Default"],
            "arn:aws:iam::100000000000:role/trailwarden"
        );
        assert_eq!(
            trust["Condition"]["StringEquals"]["aws:PrincipalOrgID"]["Ref"],
            "OrganizationId"
        );
        assert_eq!(t["Parameters"]["OrganizationId"]["Default"], "o-abc123");
        assert_eq!(
            trust["Condition"]["StringLike"]["sts:RoleSessionName"],
            "trailwarden-*"
        );
        assert!(
            t["Resources"].get("ForwarderRole").is_none(),
            "none asked for"
        );
        // IAM's limit for a role's inline policies together.
        let inline: usize = role["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["PolicyDocument"].to_string().len())
            .sum();
        assert!(inline < 10_240, "{inline} characters of inline policy");
    }

    #[test]
    fn the_forwarder_role_may_only_put_events_on_the_bus_and_is_used_outside_its_region() {
        let f = forwarding(Some("TrailwardenEventForwarder"));
        let roles = member_roles("TrailwardenAudit", "arn:aws:iam::1:role/t", "o-1", &f);
        let forwarder = &roles["Resources"]["ForwarderRole"]["Properties"];
        assert_eq!(forwarder["RoleName"], "TrailwardenEventForwarder");
        let statement = &forwarder["Policies"][0]["PolicyDocument"]["Statement"][0];
        assert_eq!(statement["Action"], "events:PutEvents");
        assert_eq!(statement["Resource"], f.bus_arn);
        let rule = member_forwarding(&f);
        assert_eq!(
            rule["Parameters"]["ForwarderRoleName"]["Default"],
            "TrailwardenEventForwarder"
        );
        let not_bus_region =
            &rule["Conditions"]["HasRole"]["Fn::And"][1]["Fn::Not"][0]["Fn::Equals"];
        assert_eq!(not_bus_region[1], "us-east-1");
        assert_eq!(
            rule["Resources"]["ForwardTamperEvents"]["Properties"]["EventPattern"],
            f.pattern
        );
    }
}
