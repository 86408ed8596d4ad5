//! Semantic versions as git tags spell them, with semver.org precedence.

use std::cmp::Ordering;
use std::fmt;

/// A semantic version (semver.org 2.0.0), as a git tag such as `v1.2.3-rc.1` spells it.
///
/// Equality and order are semver precedence: build metadata is kept but ignored.
#[derive(Debug, Clone)]
pub struct Version {
    /// The major number.
    pub major: u64,
    /// The minor number.
    pub minor: u64,
    /// The patch number.
    pub patch: u64,
    /// The pre-release identifiers (`rc.1` is `["rc", "1"]`); empty for a release.
    pub pre: Vec<String>,
    /// The build metadata after `+`, empty when absent.
    pub build: String,
}

impl Version {
    /// Parses `[v|V|=]MAJOR.MINOR.PATCH[-PRE][+BUILD]`; None when it is not semver.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.strip_prefix(['v', 'V', '=']).unwrap_or(text);
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, build),
            None => (text, ""),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut numbers = core.split('.').map(parse_number);
        let (major, minor, patch) = (numbers.next()??, numbers.next()??, numbers.next()??);
        if numbers.next().is_some() {
            return None;
        }
        let identifier = |part: &str| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let pre: Vec<String> = match pre {
            Some(pre) => pre.split('.').map(str::to_string).collect(),
            None => Vec::new(),
        };
        for part in &pre {
            let numeric = part.bytes().all(|b| b.is_ascii_digit());
            if !identifier(part) || (numeric && part.len() > 1 && part.starts_with('0')) {
                return None;
            }
        }
        if text.contains('+') && !build.split('.').all(identifier) {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre,
            build: build.to_string(),
        })
    }

    /// Whether this is a pre-release such as `2.0.0-rc.1`.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

fn parse_number(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for Version {
    /// `MAJOR.MINOR.PATCH[-PRE]`: build metadata is left out, as a tag cannot hold `+`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.is_prerelease() {
            write!(f, "-{}", self.pre.join("."))?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let core =
            (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        if core != Ordering::Equal {
            return core;
        }
        // A release ranks above its pre-releases.
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        for (left, right) in self.pre.iter().zip(&other.pre) {
            let order = match (left.parse::<u64>(), right.parse::<u64>()) {
                (Ok(left), Ok(right)) => left.cmp(&right),
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                (Err(_), Err(_)) => left.cmp(right),
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        self.pre.len().cmp(&other.pre.len())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_parsing_and_precedence() {
        let valid = [
            "1.2.3",
            "v1.2.3",
            "V0.0.0",
            "=1.0.0",
            "1.0.0-rc.1",
            "1.0.0+20130313",
            "1.0.0-x-y.7+b.1",
        ];
        for text in valid {
            assert!(Version::parse(text).is_some(), "{text}");
        }
        let invalid = [
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "1.2.x",
            "",
            "v",
            "1.2.3-a..b",
        ];
        for text in invalid {
            assert!(Version::parse(text).is_none(), "{text}");
        }
        // semver.org's precedence example, in ascending order.
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            let (low, high) = (
                Version::parse(pair[0]).unwrap(),
                Version::parse(pair[1]).unwrap(),
            );
            assert!(low < high, "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(
            Version::parse("1.0.0+a").unwrap(),
            Version::parse("v1.0.0+b").unwrap()
        );
        assert_eq!(
            Version::parse("v1.0.0-rc.1+b7").unwrap().to_string(),
            "1.0.0-rc.1"
        );
    }
}
