//! The `--name[=value]` words before an instruction's arguments, parsed the way BuildKit does.

use std::fmt;

/// What kind of value a declared flag takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link`, `--link=true`, `--link=false` (any case for the value).
    Bool,
    /// `--from=build`: a value is required and the flag may appear once.
    String,
    /// `--mount=...`: a value is required and every occurrence is kept.
    List,
}

/// A flag word that could not be accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagError {
    /// Index of the offending word in the node's flag list, so callers can locate it.
    pub index: usize,
    /// Lowercase message naming the flag.
    pub message: String,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FlagError {}

/// The flags one instruction accepts.
#[derive(Clone, Debug, Default)]
pub struct FlagSet {
    declared: Vec<(&'static str, FlagKind)>,
}

/// The value one used flag ended up with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FlagValue {
    Bool(bool),
    String(String),
    List(Vec<String>),
}

/// The flags a node actually used, with their values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedFlags {
    // Kept in order of first use so `used` is deterministic.
    values: Vec<(&'static str, FlagValue)>,
}

impl FlagSet {
    /// A set accepting no flags at all: every flag word is then an unknown flag.
    pub fn new() -> Self {
        FlagSet::default()
    }

    /// The same set also accepting `--name` of `kind`.
    pub fn with(mut self, name: &'static str, kind: FlagKind) -> Self {
        self.declared.push((name, kind));
        self
    }

    /// Parses flag words as written on the instruction (`--from=build`, `--link`).
    ///
    /// A bare `--` ends the flags; everything after it is ignored, as in BuildKit.
    pub fn parse(&self, words: &[String]) -> Result<ParsedFlags, FlagError> {
        let mut parsed = ParsedFlags::default();
        for (index, word) in words.iter().enumerate() {
            let fail = |message: String| FlagError { index, message };
            if word == "--" {
                break;
            }
            let Some(rest) = word.strip_prefix("--") else {
                return Err(fail(format!("arg should start with -- : {word}")));
            };
            let (name, value) = match rest.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (rest, None),
            };
            let written = format!("--{name}");
            let Some(&(declared, kind)) = self.declared.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = self.declared.iter().map(|(n, _)| *n).collect();
                let message = format!("unknown flag: {written}");
                return Err(fail(with_suggestion(message, name, &names, true)));
            };
            let previous = parsed.values.iter().position(|(n, _)| *n == declared);
            if previous.is_some() && kind != FlagKind::List {
                return Err(fail(format!("duplicate flag specified: {written}")));
            }
            let value = match (kind, value) {
                (FlagKind::Bool, Some("")) | (FlagKind::String | FlagKind::List, None) => {
                    return Err(fail(format!("missing a value on flag: {written}")));
                }
                (FlagKind::Bool, None) => FlagValue::Bool(true),
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => FlagValue::Bool(true),
                    "false" => FlagValue::Bool(false),
                    _ => {
                        let message =
                            format!("expecting boolean value for flag {written}, not: {v}");
                        return Err(fail(message));
                    }
                },
                (FlagKind::String, Some(v)) => FlagValue::String(v.to_string()),
                (FlagKind::List, Some(v)) => FlagValue::List(vec![v.to_string()]),
            };
            match (previous, value) {
                (Some(at), FlagValue::List(more)) => {
                    if let FlagValue::List(all) = &mut parsed.values[at].1 {
                        all.extend(more);
                    }
                }
                (_, value) => parsed.values.push((declared, value)),
            }
        }
        Ok(parsed)
    }
}

impl ParsedFlags {
    fn get(&self, name: &str) -> Option<&FlagValue> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// True when `--name` appeared at least once.
    pub fn is_used(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The names of the flags that appeared, in order of first appearance.
    pub fn used(&self) -> Vec<&'static str> {
        self.values.iter().map(|(n, _)| *n).collect()
    }

    /// The value of a bool flag, `None` when it was not given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(FlagValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// The value of a string flag as written (possibly empty), `None` when not given.
    pub fn string(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(FlagValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The value of a string flag, with an empty value treated like an absent flag.
    ///
    /// BuildKit stores absent string flags as `""` and only acts on non-empty ones, so
    /// `--chmod=` means the same as no `--chmod` at all.
    pub fn non_empty(&self, name: &str) -> Option<String> {
        self.string(name)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Every value of a list flag, in order; empty when not given.
    pub fn list(&self, name: &str) -> &[String] {
        match self.get(name) {
            Some(FlagValue::List(all)) => all,
            _ => &[],
        }
    }
}

/// Appends BuildKit's ` (did you mean X?)` hint when one option is close to `value`.
///
/// An option equal to `value` means the error had another cause, so no hint is added.
pub(crate) fn with_suggestion(
    message: String,
    value: &str,
    options: &[&str],
    case_sensitive: bool,
) -> String {
    let wanted = if case_sensitive {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut best_distance = 3;
    for option in options {
        let candidate = if case_sensitive {
            option.to_string()
        } else {
            option.to_lowercase()
        };
        if candidate == wanted {
            return message;
        }
        let distance = levenshtein(&wanted, &candidate);
        if distance < best_distance {
            best_distance = distance;
            best = Some(if case_sensitive {
                candidate
            } else {
                match_case(&candidate, value)
            });
        }
    }
    match best {
        Some(hint) => format!("{message} (did you mean {hint}?)"),
        None => message,
    }
}

/// Gives `option` the case style of what the user wrote (all lower or all upper).
fn match_case(option: &str, written: &str) -> String {
    if written == written.to_lowercase() {
        option.to_lowercase()
    } else if written == written.to_uppercase() {
        option.to_uppercase()
    } else {
        option.to_string()
    }
}

/// Edit distance over characters with unit costs.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}
