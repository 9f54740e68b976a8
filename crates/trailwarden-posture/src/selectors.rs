//! Do a trail's event selectors record every management event?

use crate::snapshot::EventSelectors;

/// `None` when the selectors record every management event (read and write, every source);
/// otherwise why not. No selectors at all is AWS's default: all management events.
pub fn management_events_gap(selectors: &EventSelectors) -> Option<String> {
    if selectors.basic.is_empty() && selectors.advanced.is_empty() {
        return None;
    }
    let basic_ok = selectors.basic.iter().any(|s| {
        s.include_management_events
            && s.read_write_type.eq_ignore_ascii_case("All")
            && s.exclude_management_event_sources.is_empty()
    });
    let advanced_ok = selectors.advanced.iter().any(|s| {
        let management = s
            .field_selectors
            .iter()
            .any(|f| f.field == "eventCategory" && f.equals.iter().any(|v| v == "Management"));
        let narrowed = s.field_selectors.iter().any(|f| {
            f.field == "readOnly"
                || (f.field == "eventSource"
                    && !(f.not_equals.is_empty()
                        && f.not_starts_with.is_empty()
                        && f.not_ends_with.is_empty()))
        });
        management && !narrowed
    });
    if basic_ok || advanced_ok {
        return None;
    }
    // Say the most specific reason found.
    for s in &selectors.basic {
        if s.include_management_events && !s.read_write_type.eq_ignore_ascii_case("All") {
            return Some(format!(
                "management events limited to {}",
                s.read_write_type
            ));
        }
        if s.include_management_events && !s.exclude_management_event_sources.is_empty() {
            return Some(format!(
                "management events from {} excluded",
                s.exclude_management_event_sources.join(", ")
            ));
        }
    }
    for s in &selectors.advanced {
        for f in &s.field_selectors {
            if f.field == "readOnly" {
                return Some(format!(
                    "advanced selector {} limits management events to readOnly={}",
                    s.name.as_deref().unwrap_or("(unnamed)"),
                    f.equals.join("|")
                ));
            }
            if f.field == "eventSource" && !f.not_equals.is_empty() {
                return Some(format!(
                    "advanced selector {} excludes management events from {}",
                    s.name.as_deref().unwrap_or("(unnamed)"),
                    f.not_equals.join(", ")
                ));
            }
        }
    }
    Some(
        "management events are not recorded (data events only, or includeManagementEvents=false)"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{AdvancedSelector, BasicSelector, DataResource, FieldSelector};

    fn basic(rw: &str, mgmt: bool, exclude: &[&str]) -> BasicSelector {
        BasicSelector {
            read_write_type: rw.into(),
            include_management_events: mgmt,
            exclude_management_event_sources: exclude.iter().map(|s| s.to_string()).collect(),
            data_resources: vec![],
        }
    }

    fn field(name: &str, equals: &[&str], not_equals: &[&str]) -> FieldSelector {
        FieldSelector {
            field: name.into(),
            equals: equals.iter().map(|s| s.to_string()).collect(),
            not_equals: not_equals.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn with_basic(list: Vec<BasicSelector>) -> EventSelectors {
        EventSelectors {
            basic: list,
            advanced: vec![],
        }
    }

    fn with_advanced(fields: Vec<FieldSelector>) -> EventSelectors {
        EventSelectors {
            basic: vec![],
            advanced: vec![AdvancedSelector {
                name: Some("mgmt".into()),
                field_selectors: fields,
            }],
        }
    }

    #[test]
    fn default_and_full_basic_selectors_record_everything() {
        assert_eq!(management_events_gap(&EventSelectors::default()), None);
        assert_eq!(
            management_events_gap(&with_basic(vec![basic("All", true, &[])])),
            None
        );
    }

    #[test]
    fn stratus_event_selectors_attack_is_a_gap() {
        // Stratus cloudtrail-event-selectors: includeManagementEvents=false, ReadOnly data only.
        let mut s = basic("ReadOnly", false, &[]);
        s.data_resources.push(DataResource {
            resource_type: "AWS::S3::Object".into(),
            values: vec!["arn:aws:s3".into()],
        });
        let gap = management_events_gap(&with_basic(vec![s])).unwrap();
        assert!(gap.contains("not recorded"), "{gap}");
    }

    #[test]
    fn read_only_or_excluded_sources_are_gaps() {
        let gap = management_events_gap(&with_basic(vec![basic("ReadOnly", true, &[])])).unwrap();
        assert!(gap.contains("ReadOnly"), "{gap}");
        let gap = management_events_gap(&with_basic(vec![basic(
            "All",
            true,
            &["kms.amazonaws.com"],
        )]))
        .unwrap();
        assert!(gap.contains("kms.amazonaws.com"), "{gap}");
        // A second, complete selector makes it whole again.
        assert_eq!(
            management_events_gap(&with_basic(vec![
                basic("ReadOnly", true, &[]),
                basic("All", true, &[])
            ])),
            None
        );
    }

    #[test]
    fn advanced_selectors() {
        assert_eq!(
            management_events_gap(&with_advanced(vec![field(
                "eventCategory",
                &["Management"],
                &[]
            )])),
            None
        );
        let gap = management_events_gap(&with_advanced(vec![
            field("eventCategory", &["Management"], &[]),
            field("readOnly", &["true"], &[]),
        ]))
        .unwrap();
        assert!(gap.contains("readOnly=true"), "{gap}");
        let gap = management_events_gap(&with_advanced(vec![
            field("eventCategory", &["Management"], &[]),
            field("eventSource", &[], &["kms.amazonaws.com"]),
        ]))
        .unwrap();
        assert!(gap.contains("kms.amazonaws.com"), "{gap}");
        assert!(
            management_events_gap(&with_advanced(vec![field("eventCategory", &["Data"], &[])]))
                .is_some()
        );
    }
}
