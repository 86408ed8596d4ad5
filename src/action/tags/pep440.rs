//! PEP 440 versions (Python's), parsed with the spec's normalization rules, for
//! `type=pep440` tag rules.

use std::fmt;

/// The kind of a PEP 440 pre-release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreKind {
    /// `a` (also spelled `alpha`).
    Alpha,
    /// `b` (also spelled `beta`).
    Beta,
    /// `rc` (also spelled `c`, `pre`, `preview`).
    Candidate,
}

/// A PEP 440 version in its normalized form, such as `1!2.0rc1.post2.dev3+local.7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pep440 {
    /// The epoch before `!`, 0 when absent.
    pub epoch: u64,
    /// The release numbers: `2.0` is `[2, 0]`.
    pub release: Vec<u64>,
    /// The pre-release kind and number.
    pub pre: Option<(PreKind, u64)>,
    /// The post-release number.
    pub post: Option<u64>,
    /// The development release number.
    pub dev: Option<u64>,
    /// The local version label after `+`, with `.` separators, lower-case.
    pub local: Option<String>,
}

impl Pep440 {
    /// Parses any spelling PEP 440 normalizes: case-insensitive, a leading `v`,
    /// `-`, `_` or `.` separators, `alpha`/`beta`/`c`/`pre`/`preview` for `a`/`b`/`rc`,
    /// `rev`/`r` and an implicit `-N` for a post-release, and implicit numbers of 0.
    pub fn parse(text: &str) -> Option<Pep440> {
        let lower = text.trim().to_ascii_lowercase();
        let mut scanner = Scanner {
            rest: lower.strip_prefix('v').unwrap_or(&lower),
        };
        let mut epoch = 0;
        let first = scanner.number()?;
        let mut release = vec![first];
        if scanner.eat("!") {
            epoch = first;
            release = vec![scanner.number()?];
        }
        while scanner.rest.starts_with('.') && scanner.peek_digit_after(1) {
            scanner.eat(".");
            release.push(scanner.number()?);
        }
        let pre = scanner.pre();
        let post = scanner.post();
        let dev = scanner.dev();
        let local = if scanner.eat("+") {
            Some(scanner.local()?)
        } else {
            None
        };
        if !scanner.rest.is_empty() {
            return None;
        }
        Some(Pep440 {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// Whether this is a final release: no pre-, post- or development part.
    pub fn is_final(&self) -> bool {
        self.pre.is_none() && self.post.is_none() && self.dev.is_none()
    }

    /// The release number at `index` (0 major, 1 minor, 2 patch), 0 when absent.
    pub fn release_part(&self, index: usize) -> u64 {
        self.release.get(index).copied().unwrap_or(0)
    }
}

impl fmt::Display for Pep440 {
    /// The normalized spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}!", self.epoch)?;
        }
        let release: Vec<String> = self.release.iter().map(u64::to_string).collect();
        f.write_str(&release.join("."))?;
        if let Some((kind, number)) = self.pre {
            let kind = match kind {
                PreKind::Alpha => "a",
                PreKind::Beta => "b",
                PreKind::Candidate => "rc",
            };
            write!(f, "{kind}{number}")?;
        }
        if let Some(post) = self.post {
            write!(f, ".post{post}")?;
        }
        if let Some(dev) = self.dev {
            write!(f, ".dev{dev}")?;
        }
        if let Some(local) = &self.local {
            write!(f, "+{local}")?;
        }
        Ok(())
    }
}

struct Scanner<'a> {
    rest: &'a str,
}

impl Scanner<'_> {
    fn eat(&mut self, prefix: &str) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn peek_digit_after(&self, offset: usize) -> bool {
        self.rest
            .as_bytes()
            .get(offset)
            .is_some_and(u8::is_ascii_digit)
    }

    fn number(&mut self) -> Option<u64> {
        let digits = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, rest) = self.rest.split_at(digits);
        self.rest = rest;
        number.parse().ok()
    }

    // An optional separator then one of `words`; the scanner moves only on a match.
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let start = self.rest;
        self.eat_separator();
        for (index, word) in words.iter().enumerate() {
            if self.eat(word) {
                return Some(index);
            }
        }
        self.rest = start;
        None
    }

    fn eat_separator(&mut self) -> bool {
        self.eat(".") || self.eat("-") || self.eat("_")
    }

    // An optional separator and number after a word; an absent number is 0.
    fn implicit_number(&mut self) -> u64 {
        let start = self.rest;
        self.eat_separator();
        match self.number() {
            Some(number) => number,
            None => {
                self.rest = start;
                0
            }
        }
    }

    fn pre(&mut self) -> Option<(PreKind, u64)> {
        // Longer spellings first, so `preview` is not read as `pre` plus `view`.
        let words = ["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"];
        let kind = match self.word(&words)? {
            0 | 5 => PreKind::Alpha,
            1 | 6 => PreKind::Beta,
            _ => PreKind::Candidate,
        };
        Some((kind, self.implicit_number()))
    }

    fn post(&mut self) -> Option<u64> {
        if self.rest.starts_with('-') && self.peek_digit_after(1) {
            self.eat("-");
            return self.number();
        }
        self.word(&["post", "rev", "r"])?;
        Some(self.implicit_number())
    }

    fn dev(&mut self) -> Option<u64> {
        self.word(&["dev"])?;
        Some(self.implicit_number())
    }

    fn local(&mut self) -> Option<String> {
        let segments: Vec<&str> = self.rest.split(['.', '-', '_']).collect();
        let valid = |segment: &&str| {
            !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        if !segments.iter().all(valid) {
            return None;
        }
        self.rest = "";
        Some(segments.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization() {
        let cases = [
            ("1.0", Some("1.0")),
            ("v1.2.3", Some("1.2.3")),
            ("1.0a1", Some("1.0a1")),
            ("1.0-ALPHA.1", Some("1.0a1")),
            ("1.0beta", Some("1.0b0")),
            ("1.0.preview_2", Some("1.0rc2")),
            ("1.0c3", Some("1.0rc3")),
            ("1.0-1", Some("1.0.post1")),
            ("1.0.rev", Some("1.0.post0")),
            ("1.0r7", Some("1.0.post7")),
            ("1.0.dev", Some("1.0.dev0")),
            ("1.0rc1.post2.dev3", Some("1.0rc1.post2.dev3")),
            ("2!1.0", Some("2!1.0")),
            ("1.0+Ubuntu-1_x", Some("1.0+ubuntu.1.x")),
            ("007.01", Some("7.1")),
            ("1.0.", None),
            ("1.0+", None),
            ("1.0+a..b", None),
            ("x1.0", None),
            ("1.0rc1foo", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let parsed = Pep440::parse(text).map(|version| version.to_string());
            assert_eq!(parsed.as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn parts_and_finality() {
        let version = Pep440::parse("3.11").unwrap();
        assert!(version.is_final());
        let parts = [
            version.release_part(0),
            version.release_part(1),
            version.release_part(2),
        ];
        assert_eq!(parts, [3, 11, 0]);
        for unstable in ["1.0a1", "1.0.post1", "1.0.dev1"] {
            assert!(!Pep440::parse(unstable).unwrap().is_final(), "{unstable}");
        }
        assert!(Pep440::parse("1.0+local").unwrap().is_final());
    }
}
