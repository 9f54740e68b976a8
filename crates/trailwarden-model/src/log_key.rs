//! The S3 key layout CloudTrail delivers to, so a scan can skip objects before downloading:
//! `[prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz`, and
//! `CloudTrail-Digest` for digests.

/// What a CloudTrail object key says about its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey<'a> {
    /// Organization id for an organization trail (`o-...`).
    pub organization: Option<&'a str>,
    pub account: &'a str,
    pub region: &'a str,
    /// Delivery day (UTC).
    pub date: (u16, u8, u8),
    /// A digest file (`CloudTrail-Digest`), not records.
    pub digest: bool,
}

impl<'a> LogKey<'a> {
    /// Parses a key (or a path with `/` separators); `None` when it does not follow the layout.
    pub fn parse(key: &'a str) -> Option<Self> {
        let parts: Vec<&str> = key.split('/').collect();
        let at = parts.iter().rposition(|p| *p == "AWSLogs")?;
        let mut rest = &parts[at + 1..];
        let organization = match rest.first() {
            Some(p) if p.starts_with("o-") => {
                rest = &rest[1..];
                Some(*p)
            }
            _ => None,
        };
        let [account, kind, region, year, month, day, _file, ..] = rest else {
            return None;
        };
        let digest = match *kind {
            "CloudTrail" => false,
            "CloudTrail-Digest" => true,
            _ => return None,
        };
        Some(Self {
            organization,
            account,
            region,
            date: (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?),
            digest,
        })
    }
}

/// Which objects a scan wants; empty lists mean "all".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// Inclusive window of delivery days, `(year, month, day)`.
    pub since: Option<(u16, u8, u8)>,
    pub until: Option<(u16, u8, u8)>,
}

impl KeyFilter {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.regions.is_empty()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// Whether an object with this key may hold wanted records. Keys outside the layout are
    /// kept (the records themselves are filtered later); digests never hold records.
    pub fn keeps(&self, key: &str) -> bool {
        let Some(k) = LogKey::parse(key) else {
            return true;
        };
        !k.digest
            && (self.accounts.is_empty() || self.accounts.iter().any(|a| a == k.account))
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == k.region))
            && self.since.is_none_or(|s| k.date >= s)
            && self.until.is_none_or(|u| k.date <= u)
    }

    /// Narrower listing prefixes under `base` (which must end at `AWSLogs/`'s parent or be
    /// empty), one per account and region, when accounts are named; `None` when the whole
    /// base must be listed. `org_levels` are the `o-...` folders found under `AWSLogs/`.
    pub fn prefixes(&self, base: &str, org_levels: &[String]) -> Option<Vec<String>> {
        if self.accounts.is_empty() {
            return None;
        }
        let base = if base.is_empty() || base.ends_with('/') {
            base.to_owned()
        } else {
            format!("{base}/")
        };
        let mut roots = vec![format!("{base}AWSLogs/")];
        roots.extend(
            org_levels
                .iter()
                .map(|o| format!("{base}AWSLogs/{}/", o.trim_end_matches('/'))),
        );
        let mut out = Vec::new();
        for root in &roots {
            for account in &self.accounts {
                if self.regions.is_empty() {
                    out.push(format!("{root}{account}/CloudTrail/"));
                } else {
                    for region in &self.regions {
                        out.push(format!("{root}{account}/CloudTrail/{region}/"));
                    }
                }
            }
        }
        Some(out)
    }
}

/// Parses `YYYY-MM-DD` (or a full RFC 3339 time, whose day is taken) to a day.
pub fn parse_day(text: &str) -> Option<(u16, u8, u8)> {
    let t = text.trim();
    let day = t.get(..10)?;
    let b = day.as_bytes();
    if b[4] != b'-'
        || b[7] != b'-'
        || t.len() > 10 && !matches!(t.as_bytes()[10], b'T' | b't' | b' ')
    {
        return None;
    }
    let (y, m, d) = (
        day[..4].parse().ok()?,
        day[5..7].parse().ok()?,
        day[8..10].parse().ok()?,
    );
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_layouts() {
        let k = LogKey::parse("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/28/111122223333_CloudTrail_eu-west-1_20261128T1005Z_abc.json.gz").unwrap();
        assert_eq!(
            (k.account, k.region, k.date, k.digest),
            ("111122223333", "eu-west-1", (2026, 11, 28), false)
        );
        let k = LogKey::parse(
            "logs/AWSLogs/o-abc123/111122223333/CloudTrail-Digest/us-east-1/2026/01/02/x.json.gz",
        )
        .unwrap();
        assert_eq!(k.organization, Some("o-abc123"));
        assert!(k.digest);
        assert!(LogKey::parse("random/file.json").is_none());
        assert!(LogKey::parse("AWSLogs/1/CloudTrail/us-east-1/2026/11/").is_none());
    }

    #[test]
    fn filters_and_prefixes() {
        let f = KeyFilter {
            accounts: vec!["111122223333".into()],
            regions: vec!["us-east-1".into()],
            since: Some((2026, 11, 27)),
            until: Some((2026, 11, 28)),
        };
        assert!(f.keeps("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/28/f.json.gz"));
        assert!(!f.keeps("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/26/f.json.gz"));
        assert!(!f.keeps("AWSLogs/999999999999/CloudTrail/us-east-1/2026/11/28/f.json.gz"));
        assert!(!f.keeps("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/28/f.json.gz"));
        assert!(!f.keeps("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/28/f.json.gz"));
        assert!(f.keeps("elsewhere/f.json"));
        assert_eq!(
            f.prefixes("trail", &["o-1".into()]).unwrap(),
            [
                "trail/AWSLogs/111122223333/CloudTrail/us-east-1/",
                "trail/AWSLogs/o-1/111122223333/CloudTrail/us-east-1/"
            ]
        );
        assert!(KeyFilter::default().prefixes("", &[]).is_none());
    }

    #[test]
    fn days() {
        assert_eq!(parse_day("2026-11-28"), Some((2026, 11, 28)));
        assert_eq!(parse_day("2026-11-28T10:00:00Z"), Some((2026, 11, 28)));
        assert_eq!(parse_day("2026-13-28"), None);
        assert_eq!(parse_day("28/11/2026"), None);
    }
}
