//! Parsing what registries and token servers send: `WWW-Authenticate` challenges (RFC 7235)
//! and RFC 3339 timestamps (a token's `issued_at`).

use reqwest::Url;

/// How the registry wants requests authenticated, as learned from its challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Challenge {
    /// The registry needs no authentication (or has not said how).
    None,
    /// `Basic`: send the credential with every request.
    Basic,
    /// `Bearer`: get a token from `realm` for `service`.
    Bearer { realm: Url, service: Option<String> },
}

/// One challenge of a `WWW-Authenticate` header: the scheme (lowercase) and its parameters
/// (names lowercase) or its token68.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RawChallenge {
    pub(super) scheme: String,
    pub(super) params: Vec<(String, String)>,
    pub(super) token68: Option<String>,
}

impl RawChallenge {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A byte cursor over a header value.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// An RFC 7230 `token` (1*tchar), or None without moving.
    fn token(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| String::from_utf8_lossy(&self.bytes[start..self.pos]).into())
    }

    /// A `token68` that makes up a whole challenge's credentials (followed by the end or a
    /// comma), or None without moving.
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        let mut end = start;
        while self
            .bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
        {
            end += 1;
        }
        if end == start {
            return None;
        }
        while self.bytes.get(end) == Some(&b'=') {
            end += 1;
        }
        let mut after = end;
        while matches!(self.bytes.get(after), Some(b' ' | b'\t')) {
            after += 1;
        }
        if !matches!(self.bytes.get(after), None | Some(b',')) {
            return None;
        }
        self.pos = end;
        Some(String::from_utf8_lossy(&self.bytes[start..end]).into())
    }

    /// A `quoted-string` starting at the opening quote, unescaped.
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated quoted string at offset {start}")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&value).into());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => value.push(b),
                        _ => return Err(format!("bad escape in quoted string at offset {start}")),
                    }
                    self.pos += 1;
                }
                Some(b) if b != b'\t' && (b < 0x20 || b == 0x7f) => {
                    return Err(format!(
                        "control character in quoted string at offset {start}"
                    ));
                }
                Some(b) => {
                    value.push(b);
                    self.pos += 1;
                }
            }
        }
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 7235 section 4.1: a
/// comma-separated list of challenges, each a scheme followed by a token68 or a
/// comma-separated list of `name=value` parameters, values tokens or quoted strings).
pub(super) fn parse_www_authenticate(header: &str) -> Result<Vec<RawChallenge>, String> {
    let mut c = Cursor {
        bytes: header.as_bytes(),
        pos: 0,
    };
    let mut challenges = Vec::new();
    loop {
        while matches!(c.peek(), Some(b' ' | b'\t' | b',')) {
            c.pos += 1;
        }
        if c.peek().is_none() {
            break;
        }
        let scheme = c
            .token()
            .ok_or_else(|| format!("expected an authentication scheme at offset {}", c.pos))?;
        let mut challenge = RawChallenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
            token68: None,
        };
        let spaced = c.skip_spaces() > 0;
        if !spaced && c.peek().is_some_and(|b| b != b',') {
            return Err(format!("expected a space after scheme `{scheme}`"));
        }
        if let Some(token68) = c.token68() {
            challenge.token68 = Some(token68);
            challenges.push(challenge);
            continue;
        }
        let mut after_comma = false;
        loop {
            c.skip_spaces();
            while c.peek() == Some(b',') {
                c.pos += 1;
                after_comma = true;
                c.skip_spaces();
            }
            let start = c.pos;
            let Some(name) = c.token() else {
                if c.peek().is_none() {
                    break;
                }
                return Err(format!("expected a parameter name at offset {}", c.pos));
            };
            c.skip_spaces();
            if c.peek() != Some(b'=') {
                // After a comma, a token without `=` is the next challenge's scheme.
                if after_comma {
                    c.pos = start;
                    break;
                }
                return Err(format!("expected `=` after parameter `{name}`"));
            }
            c.pos += 1;
            c.skip_spaces();
            let value = match c.peek() {
                Some(b'"') => c.quoted()?,
                _ => c
                    .token()
                    .ok_or_else(|| format!("expected a value for parameter `{name}`"))?,
            };
            let name = name.to_ascii_lowercase();
            // RFC 7235: each parameter name occurs once per challenge.
            if challenge.param(&name).is_some() {
                return Err(format!("parameter `{name}` occurs twice"));
            }
            challenge.params.push((name.clone(), value));
            c.skip_spaces();
            if !matches!(c.peek(), None | Some(b',')) {
                return Err(format!("expected `,` after parameter `{name}`"));
            }
            after_comma = false;
        }
        challenges.push(challenge);
    }
    if challenges.is_empty() {
        return Err("no challenge in it".into());
    }
    Ok(challenges)
}

/// Picks the challenge to answer: Bearer (with an absolute http(s) realm) over Basic.
pub(super) fn choose_challenge(challenges: &[RawChallenge]) -> Result<Challenge, String> {
    if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
        let realm = bearer
            .param("realm")
            .filter(|r| !r.is_empty())
            .ok_or("the `Bearer` challenge has no `realm`")?;
        let realm = Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| format!("the realm `{realm}` is not an http(s) URL"))?;
        let service = bearer.param("service").map(str::to_string);
        return Ok(Challenge::Bearer { realm, service });
    }
    if challenges.iter().any(|c| c.scheme == "basic") {
        return Ok(Challenge::Basic);
    }
    let schemes: Vec<String> = challenges
        .iter()
        .map(|c| format!("`{}`", c.scheme))
        .collect();
    Err(format!(
        "no supported scheme (`Basic` or `Bearer`) among {}",
        schemes.join(", ")
    ))
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2024-05-01T12:00:00.5Z`,
/// `…+02:00`), or None when it is not one.
pub(super) fn parse_rfc3339(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut fraction = 0.0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        fraction = format!("0.{}", &after_dot[..digits]).parse().ok()?;
        rest = &after_dot[digits..];
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [h1, h2, m1, m2];
            if !digits.iter().all(|d| d.is_ascii_digit()) {
                return None;
            }
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            let total = hours * 3600 + minutes * 60;
            if *sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    let days = days_since_epoch(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(seconds as f64 + fraction)
}

/// Days from 1970-01-01 to a proleptic Gregorian date, counting years from March so that
/// the leap day falls at the end of the year.
pub(super) fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_www_authenticate_table() {
        type Params = &'static [(&'static str, &'static str)];
        let ok: &[(&str, &[(&str, Params)])] = &[
            ("Basic", &[("basic", &[])]),
            (
                "basic realm=\"Registry\"",
                &[("basic", &[("realm", "Registry")])],
            ),
            ("BASIC REALM=x", &[("basic", &[("realm", "x")])]),
            (
                "Bearer realm=\"https://auth.example/token\",service=\"reg\",scope=\"repository:a/b:pull\"",
                &[(
                    "bearer",
                    &[
                        ("realm", "https://auth.example/token"),
                        ("service", "reg"),
                        ("scope", "repository:a/b:pull"),
                    ],
                )],
            ),
            (
                "Bearer realm = \"r\" ,  service=s",
                &[("bearer", &[("realm", "r"), ("service", "s")])],
            ),
            (
                "Bearer realm=\"a\\\"b\\\\c\"",
                &[("bearer", &[("realm", "a\"b\\c")])],
            ),
            (
                "Bearer realm=\"a,b=c\"",
                &[("bearer", &[("realm", "a,b=c")])],
            ),
            ("Bearer realm=\"\"", &[("bearer", &[("realm", "")])]),
            (
                "Basic realm=\"x\", Bearer realm=\"y\"",
                &[("basic", &[("realm", "x")]), ("bearer", &[("realm", "y")])],
            ),
            (
                "Basic, Bearer realm=y",
                &[("basic", &[]), ("bearer", &[("realm", "y")])],
            ),
            (
                "Bearer realm=r,, ,service=s",
                &[("bearer", &[("realm", "r"), ("service", "s")])],
            ),
            ("  Bearer\trealm=r  ", &[("bearer", &[("realm", "r")])]),
            ("Bearer Realm=r", &[("bearer", &[("realm", "r")])]),
            (
                "Bearer realm=\"caf\u{e9}\"",
                &[("bearer", &[("realm", "caf\u{e9}")])],
            ),
            (
                "Newauth realm=\"apps\", type=1",
                &[("newauth", &[("realm", "apps"), ("type", "1")])],
            ),
        ];
        for (header, expected) in ok {
            let parsed = parse_www_authenticate(header)
                .unwrap_or_else(|e| panic!("`{header}` should parse, got {e}"));
            let got: Vec<(String, Vec<(String, String)>)> =
                parsed.into_iter().map(|c| (c.scheme, c.params)).collect();
            let want: Vec<(String, Vec<(String, String)>)> = expected
                .iter()
                .map(|(s, p)| {
                    let p = p
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect();
                    (s.to_string(), p)
                })
                .collect();
            assert_eq!(got, want, "header `{header}`");
        }
        let token68 = parse_www_authenticate("Negotiate abc+/def==").expect("token68");
        assert_eq!(token68[0].token68.as_deref(), Some("abc+/def=="));

        let malformed = [
            "",
            "   ",
            ",,",
            "Bearer realm=\"unterminated",
            "Bearer realm=\"bad\\",
            "Bearer realm",
            "Bearer realm=",
            "Bearer realm=r service=s",
            "Bearer realm=r, realm=s",
            "Bearer =r",
            "Bearer realm=\"a\u{1}b\"",
            "\"Bearer\" realm=r",
            "Bearer realm=r,service",
            "Bearer realm=\"r\"x",
            "Bearer,=",
        ];
        for header in malformed {
            let outcome = parse_www_authenticate(header).and_then(|c| choose_challenge(&c));
            // `Bearer realm=r,service` parses as a second challenge named `service`; it must at
            // least not yield a usable token challenge with a bogus realm.
            assert!(
                outcome.is_err(),
                "`{header}` should be rejected, got {outcome:?}"
            );
        }
    }

    #[test]
    fn chooses_bearer_over_basic_and_checks_the_realm() {
        let choose = |h: &str| parse_www_authenticate(h).and_then(|c| choose_challenge(&c));
        assert_eq!(choose("Basic realm=x"), Ok(Challenge::Basic));
        let realm = Url::parse("https://auth.example/token").expect("url");
        assert_eq!(
            choose("Basic realm=x, Bearer realm=\"https://auth.example/token\",service=reg"),
            Ok(Challenge::Bearer {
                realm: realm.clone(),
                service: Some("reg".into())
            })
        );
        assert_eq!(
            choose("bEaReR realm=\"https://auth.example/token\""),
            Ok(Challenge::Bearer {
                realm,
                service: None
            })
        );
        assert!(choose("Bearer service=reg").is_err());
        assert!(choose("Bearer realm=\"\"").is_err());
        assert!(choose("Bearer realm=\"/token\"").is_err());
        assert!(choose("Bearer realm=\"ftp://host/token\"").is_err());
        assert!(choose("Digest realm=x, nonce=y").is_err());
    }

    #[test]
    fn parses_rfc3339_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2009-11-10T23:00:00Z"), Some(1_257_894_000.0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00+02:00"),
            Some(1_709_200_800.0)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.25-00:30"),
            Some(1_709_209_800.25)
        );
        for bad in [
            "",
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2024-02-29T12:00:00",
            "x024-02-29T12:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
