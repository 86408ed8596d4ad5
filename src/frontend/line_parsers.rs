//! Argument splitting per instruction, as BuildKit's parser does it before any typing.
//!
//! Each instruction has one way of cutting its text after the flags: a JSON array or
//! a shell string, whitespace-separated words, key=value pairs, or one string. The
//! results keep quotes and escapes: removing them is word expansion's job, later.

use super::expand::go_quote;
use super::node::Node;

/// The arguments one line parser produced.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    pub args: Vec<String>,
    pub json: bool,
    pub inner: Option<Box<Node>>,
}

/// The separators BuildKit's parser splits on: ASCII blanks, not newlines.
pub(super) fn is_blank(ch: char) -> bool {
    matches!(ch, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// Splits on runs of blanks, as a `[\t\v\f\r ]+` split would.
pub(super) fn split_blanks(text: &str, limit: Option<usize>) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        if limit.is_some_and(|limit| parts.len() + 1 == limit) {
            parts.push(rest.to_string());
            return parts;
        }
        match rest.find(is_blank) {
            Some(start) => {
                parts.push(rest[..start].to_string());
                let after = &rest[start..];
                let skip = after.find(|c: char| !is_blank(c)).unwrap_or(after.len());
                rest = &after[skip..];
            }
            None => {
                parts.push(rest.to_string());
                return parts;
            }
        }
    }
}

/// How a word scan treats the quotes and escapes it meets.
///
/// BuildKit cuts arguments in two ways that differ only in these rules: key=value
/// words keep their quoting for expansion later, flags lose it at once.
#[derive(Clone, Copy)]
struct WordRules {
    /// Keep quote and escape characters in the words.
    keep_syntax: bool,
    /// Let the escape character work inside single quotes too.
    escape_in_single_quotes: bool,
    /// Stop before a word that does not start with `--`, and after a bare `--`.
    flags_only: bool,
}

/// Cuts `chars` into words at unquoted whitespace under `rules`.
///
/// Returns the words and, when the scan stopped early, the index of the first
/// character not consumed. An escape character takes the next character literally;
/// one at the very end is dropped. A quoted word is kept even when empty (`''`).
fn scan_words(chars: &[char], escape: char, rules: WordRules) -> (Vec<String>, Option<usize>) {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut keep_empty = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if !in_word {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            if rules.flags_only && (ch != '-' || chars.get(i + 1) != Some(&'-')) {
                return (words, Some(i));
            }
            in_word = true;
        }
        let is_quote = quote.is_none() && (ch == '\'' || ch == '"');
        let closes = quote == Some(ch);
        if quote.is_none() && ch.is_whitespace() {
            if rules.flags_only && word == "--" {
                return (words, Some(i));
            }
            if keep_empty || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            keep_empty = false;
            in_word = false;
        } else if is_quote || closes {
            quote = if is_quote { Some(ch) } else { None };
            keep_empty = true;
            if rules.keep_syntax {
                word.push(ch);
            }
        } else if ch == escape && (quote != Some('\'') || rules.escape_in_single_quotes) {
            match chars.get(i + 1) {
                // A trailing escape is dropped, and so is an open quote it was in.
                None => quote = None,
                Some(&next) => {
                    if rules.keep_syntax {
                        word.push(ch);
                    }
                    word.push(next);
                    i += 1;
                }
            }
        } else {
            word.push(ch);
        }
        i += 1;
    }
    let dropped = rules.flags_only && word == "--";
    if in_word && !dropped && (keep_empty || !word.is_empty()) {
        words.push(word);
    }
    (words, None)
}

/// Cuts `text` into words at unquoted whitespace, keeping quotes and escapes, as
/// BuildKit does for ENV, LABEL and ARG. Inside single quotes the escape character is
/// ordinary.
pub(super) fn split_words(text: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let rules = WordRules {
        keep_syntax: true,
        escape_in_single_quotes: false,
        flags_only: false,
    };
    scan_words(&chars, escape, rules).0
}

/// Splits the leading `--flags` off an instruction's text.
///
/// Returns the flags (quotes and escapes removed) and the rest of the text. A bare
/// `--` ends the flags.
pub(super) fn split_flags(text: &str, escape: char) -> (Vec<String>, String) {
    let chars: Vec<char> = text.chars().collect();
    let rules = WordRules {
        keep_syntax: false,
        escape_in_single_quotes: true,
        flags_only: true,
    };
    let (flags, stop) = scan_words(&chars, escape, rules);
    let rest = stop.map_or_else(String::new, |i| chars[i..].iter().collect());
    (flags, rest)
}

/// Why a JSON argument list was not taken.
enum JsonError {
    /// Not JSON at all: the text is used in shell form instead.
    NotJson,
    /// A JSON array with a non-string element: BuildKit rejects this outright.
    NotStrings,
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

fn parse_json(text: &str) -> Result<Vec<String>, JsonError> {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return Err(JsonError::NotJson);
    }
    let values: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|_| JsonError::NotJson)?;
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(JsonError::NotStrings),
        })
        .collect()
}

/// CMD, ENTRYPOINT, RUN, SHELL: a JSON array, or else the whole text as one string.
fn parse_maybe_json(text: &str) -> Result<Parsed, String> {
    if text.is_empty() {
        return Ok(Parsed::default());
    }
    match parse_json(text) {
        Ok(args) => Ok(Parsed {
            args,
            json: true,
            inner: None,
        }),
        Err(JsonError::NotStrings) => Err(NOT_STRING_ARRAY.to_string()),
        Err(JsonError::NotJson) => Ok(Parsed {
            args: vec![text.to_string()],
            ..Parsed::default()
        }),
    }
}

/// ADD, COPY, VOLUME: a JSON array, or else whitespace-separated words.
fn parse_maybe_json_to_list(text: &str) -> Result<Parsed, String> {
    match parse_json(text) {
        Ok(args) => Ok(Parsed {
            args,
            json: true,
            inner: None,
        }),
        Err(JsonError::NotStrings) => Err(NOT_STRING_ARRAY.to_string()),
        Err(JsonError::NotJson) => Ok(parse_whitespace_delimited(text)),
    }
}

/// FROM, EXPOSE: whitespace-separated words, quotes untouched.
fn parse_whitespace_delimited(text: &str) -> Parsed {
    if text.is_empty() {
        return Parsed::default();
    }
    Parsed {
        args: split_blanks(text, None),
        ..Parsed::default()
    }
}

/// MAINTAINER, STOPSIGNAL, USER, WORKDIR: the text as one string.
fn parse_string(text: &str) -> Parsed {
    if text.is_empty() {
        return Parsed::default();
    }
    Parsed {
        args: vec![text.to_string()],
        ..Parsed::default()
    }
}

/// ENV and LABEL: `key value` (legacy) or `key=value ...`, as key, value, separator triples.
fn parse_name_value(text: &str, keyword: &str, escape: char) -> Result<Parsed, String> {
    let words = split_words(text, escape);
    let Some(first) = words.first() else {
        return Ok(Parsed::default());
    };
    let mut args = Vec::new();
    if !first.contains('=') {
        let parts = split_blanks(text, Some(2));
        if parts.len() < 2 {
            return Err(format!("{keyword} must have two arguments"));
        }
        args.extend([parts[0].clone(), parts[1].clone(), String::new()]);
        return Ok(Parsed {
            args,
            ..Parsed::default()
        });
    }
    for word in &words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!(
                "syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(word)
            ));
        };
        args.extend([key.to_string(), value.to_string(), "=".to_string()]);
    }
    Ok(Parsed {
        args,
        ..Parsed::default()
    })
}

/// HEALTHCHECK: the type word (`CMD` or `NONE`), then the command as for CMD.
fn parse_health(text: &str) -> Result<Parsed, String> {
    let sep = text.find(char::is_whitespace).unwrap_or(text.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let kind = &text[..sep];
    let command = text[sep..].trim_start();
    let mut parsed = parse_maybe_json(command)?;
    parsed.args.insert(0, kind.to_string());
    Ok(parsed)
}

/// Splits `text` as instruction `keyword`'s line parser does.
///
/// `inner` parses an ONBUILD trigger; the caller passes its own node constructor so
/// nested instructions get the same treatment as top-level ones.
pub(super) fn parse_arguments(
    keyword: &str,
    text: &str,
    escape: char,
    inner: &mut dyn FnMut(&str) -> Result<Node, String>,
) -> Result<Parsed, String> {
    match keyword.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(text),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(text),
        "arg" => Ok(Parsed {
            args: split_words(text, escape),
            ..Parsed::default()
        }),
        "env" => parse_name_value(text, "ENV", escape),
        "label" => parse_name_value(text, "LABEL", escape),
        "expose" | "from" => Ok(parse_whitespace_delimited(text)),
        "healthcheck" => parse_health(text),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(parse_string(text)),
        "onbuild" => {
            if text.is_empty() {
                return Ok(Parsed::default());
            }
            let node = inner(text)?;
            Ok(Parsed {
                inner: Some(Box::new(node)),
                ..Parsed::default()
            })
        }
        // Unknown instructions keep no arguments: typing reports them.
        _ => Ok(Parsed::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_words(input: &str, expected: &[&str]) {
        assert_eq!(split_words(input, '\\'), expected, "input: {input:?}");
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        check_words("a b  c", &["a", "b", "c"]);
        check_words(r#"name="value value1""#, &[r#"name="value value1""#]);
        check_words(r"name=value\ value2 x", &[r"name=value\ value2", "x"]);
        check_words("''", &["''"]);
        check_words(r"a\", &["a"]);
        check_words(r#""a\"b""#, &[r#""a\"b""#]);
        check_words(r"'a\'b''", &[r"'a\'b''"]);
        check_words("", &[]);
    }

    #[test]
    fn flags_stop_at_first_non_flag() {
        let (flags, rest) = split_flags("--from=build --chown=1:1 src dst", '\\');
        assert_eq!(flags, ["--from=build", "--chown=1:1"]);
        assert_eq!(rest, "src dst");
        let (flags, rest) = split_flags(r#"--mount="type=cache,target=/x" -- --weird"#, '\\');
        assert_eq!(flags, ["--mount=type=cache,target=/x"]);
        assert_eq!(rest, " --weird");
        let (flags, rest) = split_flags("--link", '\\');
        assert_eq!(flags, ["--link"]);
        assert_eq!(rest, "");
        let (flags, rest) = split_flags("-x y", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, "-x y");
    }

    #[test]
    fn blanks_split_with_a_limit() {
        assert_eq!(split_blanks("a  b\tc", None), ["a", "b", "c"]);
        assert_eq!(split_blanks("a  b c", Some(2)), ["a", "b c"]);
        assert_eq!(split_blanks("a", Some(2)), ["a"]);
    }

    #[test]
    fn json_that_is_not_strings_is_an_error() {
        assert!(parse_maybe_json(r#"["a", 1]"#).is_err());
        let parsed = parse_maybe_json(r#"["a", "b"]"#).ok().unwrap_or_default();
        assert!(parsed.json);
        assert_eq!(parsed.args, ["a", "b"]);
        let parsed = parse_maybe_json("[a, b]").ok().unwrap_or_default();
        assert!(!parsed.json);
        assert_eq!(parsed.args, ["[a, b]"]);
    }
}
