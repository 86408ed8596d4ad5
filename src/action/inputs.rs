//! The action's inputs, read from the `INPUT_*` variables the runner sets and checked
//! up front, so a wrong value fails before any work with an error naming the input.
//!
//! The runner names each variable `INPUT_` plus the input name upper-cased with its
//! hyphens kept (`INPUT_BUILD-ARGS`); an empty value means the input is unset, and
//! values are trimmed. List-valued inputs follow build-push-action's split:
//!
//! - `platforms` is split on newlines and on commas;
//! - `build-args`, `labels`, `annotations`, `secrets` are split on newlines only, since
//!   their values may hold commas;
//! - `tags` is one rule per line (see [`crate::action::tags::parse_rules`]).
//!
//! In every list an item that starts with a double quote runs to the closing quote,
//! may span lines and hold commas, and `""` inside it is one quote: that is how a
//! secret with a multi-line value is written (`"KEY=line one` ... `line two"`).
//! Empty items are skipped. Booleans are `true|True|TRUE|false|False|FALSE`, the
//! YAML 1.2 core schema spellings the runner itself accepts.

use std::collections::BTreeMap;
use std::fmt;

use crate::action::context::{GitHubContext, UtcTime};
use crate::action::labels::{Annotation, parse_annotation};
use crate::action::tags::{LatestMode, TagRule, TagRuleError, parse_rules};

/// Every input the action reads; `action.yml` must declare exactly these.
///
/// No `flavor` input: metadata-action's flavor prefix and suffix are per-rule
/// attributes here, and its `latest` is the `latest` input.
pub const INPUT_NAMES: &[&str] = &[
    "context",
    "file",
    "build-args",
    "labels",
    "annotations",
    "target",
    "platforms",
    "secrets",
    "no-cache",
    "source-date-epoch",
    "registry",
    "image",
    "username",
    "password",
    "github-token",
    "push",
    "tags",
    "latest",
];

/// An input with a value it does not accept.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A scalar input with a wrong value.
    #[error("input `{input}` accepts {accepted}, got `{value}`")]
    Invalid {
        /// The input's name as in `action.yml`.
        input: &'static str,
        /// What the input accepts.
        accepted: &'static str,
        /// The value given (never a secret's).
        value: String,
    },
    /// One item of a list input is wrong.
    #[error("input `{input}` line {line}: {problem}")]
    Item {
        /// The input's name as in `action.yml`.
        input: &'static str,
        /// The 1-based line where the item starts.
        line: usize,
        /// What is wrong and what is accepted (never showing a secret).
        problem: String,
    },
    /// A double quote in a list input is not closed.
    #[error("input `{input}` line {line}: a double quote is not closed")]
    Quote {
        /// The input's name as in `action.yml`.
        input: &'static str,
        /// The 1-based line where the quoted item starts.
        line: usize,
    },
    /// The `tags` input has a rule that does not parse.
    #[error("input `tags` has an invalid rule")]
    Tags(#[source] TagRuleError),
    /// The image name (given or derived from the repository) breaks the grammar.
    #[error("image name `{name}` is not valid: {problem}")]
    Image {
        /// The name after lower-casing.
        name: String,
        /// Which part breaks the grammar.
        problem: String,
    },
}

pub use crate::registry::Secret;

/// One `id=value` line of the `secrets` input, for `RUN --mount=type=secret,id=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The id a `RUN --mount=type=secret` names.
    pub id: String,
    /// The value.
    pub value: Secret,
}

/// The `push` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushMode {
    /// Push, except for a pull request from a fork, whose token cannot write.
    #[default]
    Auto,
    /// Always push.
    Always,
    /// Never push (the image is still built and its digest reported).
    Never,
}

impl PushMode {
    /// Whether this run pushes.
    pub fn resolve(self, context: &GitHubContext) -> bool {
        match self {
            PushMode::Auto => !context.is_fork_pr(),
            PushMode::Always => true,
            PushMode::Never => false,
        }
    }
}

/// One `os/arch[/variant]` of the `platforms` input, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The OS, such as `linux`.
    pub os: String,
    /// The architecture, such as `arm64`.
    pub architecture: String,
    /// The variant, such as `v7`.
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A registry host and a repository path, both valid and lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// The registry host, with a port when given: `ghcr.io`, `localhost:5000`.
    pub registry: String,
    /// The repository path: `acme-corp/web-app`.
    pub repository: String,
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// The inputs, parsed and checked.
#[derive(Debug, Clone)]
pub struct ActionInputs {
    /// `context`: the build context directory; None means the workspace.
    pub context: Option<String>,
    /// `file`: the Dockerfile; None means `Dockerfile` in the context.
    pub file: Option<String>,
    /// `build-args`: `NAME=value` pairs in input order.
    pub build_args: Vec<(String, String)>,
    /// `labels`: `key=value` pairs that override the computed OCI labels.
    pub labels: Vec<(String, String)>,
    /// `annotations`: manifest and index annotations.
    pub annotations: Vec<Annotation>,
    /// `target`: the stage to build.
    pub target: Option<String>,
    /// `platforms`: unique, in input order; empty means the runner's own.
    pub platforms: Vec<Platform>,
    /// `secrets`: `id=value` for secret mounts.
    pub secrets: Vec<SecretSpec>,
    /// `no-cache`.
    pub no_cache: bool,
    /// `source-date-epoch`; None means the commit time.
    pub source_date_epoch: Option<UtcTime>,
    /// `registry`, lower-cased; default `ghcr.io`.
    pub registry: String,
    /// `image`, validated; None means the lower-cased repository under `registry`.
    pub image: Option<ImageName>,
    /// `username`; None means the actor.
    pub username: Option<String>,
    /// `password`; None means anonymous (`action.yml` defaults it to the token).
    pub password: Option<Secret>,
    /// `github-token`: the token for GitHub's API (the default branch, a rebuild's ref,
    /// releases); the workflow's token by default.
    pub github_token: Option<Secret>,
    /// `push`.
    pub push: PushMode,
    /// `tags`: the parsed rules; empty means the defaults.
    pub tags: Vec<TagRule>,
    /// `latest`.
    pub latest: LatestMode,
}

impl ActionInputs {
    /// Reads and checks every input from the runner's environment.
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<ActionInputs, InputError> {
        read_inputs(&mut Reader::new(env))
    }

    /// The image to push: the `image` input, or `registry/<repository lower-cased>`.
    pub fn image_name(&self, repository: &str) -> Result<ImageName, InputError> {
        match &self.image {
            Some(image) => Ok(image.clone()),
            None => {
                let repository = repository.to_ascii_lowercase();
                check_repository(&self.registry, &repository)?;
                Ok(ImageName {
                    registry: self.registry.clone(),
                    repository,
                })
            }
        }
    }
}

/// `INPUT_*` variables that name no input of [`INPUT_NAMES`] (a typo in `with:`).
pub fn unknown_inputs(env: &BTreeMap<String, String>) -> Vec<String> {
    let known: Vec<String> = INPUT_NAMES.iter().map(|name| variable(name)).collect();
    env.keys()
        .filter(|key| key.starts_with("INPUT_") && !known.contains(key))
        .cloned()
        .collect()
}

fn variable(name: &str) -> String {
    format!("INPUT_{}", name.to_ascii_uppercase())
}

// Reads inputs by name and remembers which, so a test can prove `INPUT_NAMES` is
// exactly the set read.
struct Reader<'a> {
    env: &'a BTreeMap<String, String>,
    read: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(env: &'a BTreeMap<String, String>) -> Reader<'a> {
        Reader {
            env,
            read: Vec::new(),
        }
    }

    fn get(&mut self, name: &'static str) -> Option<&'a str> {
        self.get_untrimmed(name).map(str::trim)
    }

    // Lists are split untrimmed, so the line numbers of errors match the input's.
    fn get_untrimmed(&mut self, name: &'static str) -> Option<&'a str> {
        debug_assert!(
            INPUT_NAMES.contains(&name),
            "input `{name}` is not in INPUT_NAMES"
        );
        self.read.push(name);
        let value = self.env.get(&variable(name))?;
        (!value.trim().is_empty()).then_some(value.as_str())
    }

    fn list(&mut self, name: &'static str, commas: bool) -> Result<Vec<Item>, InputError> {
        match self.get_untrimmed(name) {
            Some(text) => {
                split_list(text, commas).map_err(|line| InputError::Quote { input: name, line })
            }
            None => Ok(Vec::new()),
        }
    }

    fn boolean(&mut self, name: &'static str) -> Result<Option<bool>, InputError> {
        self.get(name)
            .map(|value| {
                parse_bool(value).ok_or_else(|| InputError::Invalid {
                    input: name,
                    accepted: "true or false",
                    value: value.to_string(),
                })
            })
            .transpose()
    }

    fn choice(&mut self, name: &'static str) -> Result<Choice, InputError> {
        let Some(value) = self.get(name) else {
            return Ok(Choice::Auto);
        };
        if value == "auto" {
            return Ok(Choice::Auto);
        }
        match parse_bool(value) {
            Some(true) => Ok(Choice::True),
            Some(false) => Ok(Choice::False),
            None => Err(InputError::Invalid {
                input: name,
                accepted: "auto, true or false",
                value: value.to_string(),
            }),
        }
    }
}

enum Choice {
    Auto,
    True,
    False,
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn read_inputs(reader: &mut Reader<'_>) -> Result<ActionInputs, InputError> {
    let owned = |value: Option<&str>| value.map(str::to_string);
    let context = owned(reader.get("context"));
    let file = owned(reader.get("file"));
    let arg_items = reader.list("build-args", false)?;
    for item in &arg_items {
        if let Some((name, _)) = item.text.split_once('=')
            && name.trim().chars().any(char::is_whitespace)
        {
            return Err(InputError::Item {
                input: "build-args",
                line: item.line,
                problem: format!(
                    "`{}` is not an argument name, expected NAME=value",
                    name.trim()
                ),
            });
        }
    }
    let build_args = pairs(arg_items, "build-args", "NAME=value")?;
    let labels = pairs(reader.list("labels", false)?, "labels", "key=value")?;
    let annotations = reader
        .list("annotations", false)?
        .into_iter()
        .map(|item| {
            parse_annotation(&item.text).map_err(|problem| InputError::Item {
                input: "annotations",
                line: item.line,
                problem,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let target = owned(reader.get("target"));
    let mut platforms: Vec<Platform> = Vec::new();
    for item in reader.list("platforms", true)? {
        let platform = parse_platform(&item.text).ok_or_else(|| InputError::Item {
            input: "platforms",
            line: item.line,
            problem: format!(
                "`{}` is not a platform, expected os/arch[/variant] such as linux/amd64",
                item.text
            ),
        })?;
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    let secrets = read_secrets(reader.list("secrets", false)?)?;
    let no_cache = reader.boolean("no-cache")?.unwrap_or(false);
    let source_date_epoch = match reader.get("source-date-epoch") {
        Some(text) => Some(parse_epoch(text).ok_or_else(|| InputError::Invalid {
            input: "source-date-epoch",
            accepted: "a Unix time in whole seconds such as 1700000000",
            value: text.to_string(),
        })?),
        None => None,
    };
    let registry = read_registry(reader.get("registry"))?;
    let image = match reader.get("image") {
        Some(text) => Some(parse_image(text, &registry)?),
        None => None,
    };
    let username = owned(reader.get("username"));
    let password = reader.get("password").map(Secret::new);
    let github_token = reader.get("github-token").map(Secret::new);
    let push = match reader.choice("push")? {
        Choice::Auto => PushMode::Auto,
        Choice::True => PushMode::Always,
        Choice::False => PushMode::Never,
    };
    let tags = reader.get_untrimmed("tags").unwrap_or("");
    let tags = parse_rules(tags).map_err(InputError::Tags)?;
    let latest = match reader.choice("latest")? {
        Choice::Auto => LatestMode::Auto,
        Choice::True => LatestMode::Always,
        Choice::False => LatestMode::Never,
    };
    Ok(ActionInputs {
        context,
        file,
        build_args,
        labels,
        annotations,
        target,
        platforms,
        secrets,
        no_cache,
        source_date_epoch,
        registry,
        image,
        username,
        password,
        github_token,
        push,
        tags,
        latest,
    })
}

fn pairs(
    items: Vec<Item>,
    input: &'static str,
    shape: &str,
) -> Result<Vec<(String, String)>, InputError> {
    items
        .into_iter()
        .map(|item| match item.text.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_string(), value.trim().to_string()))
            }
            _ => Err(InputError::Item {
                input,
                line: item.line,
                problem: format!("`{}` is not {shape}", item.text),
            }),
        })
        .collect()
}

// Errors here name the secret's id at most: the line itself may be the value.
fn read_secrets(items: Vec<Item>) -> Result<Vec<SecretSpec>, InputError> {
    let mut secrets: Vec<SecretSpec> = Vec::new();
    for item in items {
        let fail = |problem: String| InputError::Item {
            input: "secrets",
            line: item.line,
            problem,
        };
        let Some((id, value)) = item.text.split_once('=') else {
            return Err(fail(
                "expected id=value (the line is not shown, it may be secret)".into(),
            ));
        };
        let id = id.trim();
        let valid_id = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
        if id.is_empty() || !id.bytes().all(valid_id) {
            return Err(fail(
                "the id before `=` must be letters, digits, `_`, `-` or `.` (the line is not \
                 shown, it may be secret)"
                    .into(),
            ));
        }
        if secrets.iter().any(|secret| secret.id == id) {
            return Err(fail(format!("secret id `{id}` is given twice")));
        }
        secrets.push(SecretSpec {
            id: id.to_string(),
            value: Secret::new(value),
        });
    }
    Ok(secrets)
}

fn parse_platform(text: &str) -> Option<Platform> {
    let lower = text.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let valid = |part: &&str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
        return None;
    }
    Some(Platform {
        os: parts[0].to_string(),
        architecture: parts[1].to_string(),
        variant: parts.get(2).map(|variant| variant.to_string()),
    })
}

fn parse_epoch(text: &str) -> Option<UtcTime> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().map(UtcTime::from_unix)
}

fn read_registry(value: Option<&str>) -> Result<String, InputError> {
    let Some(text) = value else {
        return Ok("ghcr.io".to_string());
    };
    let host = text.to_ascii_lowercase();
    if !valid_host(&host) {
        return Err(InputError::Invalid {
            input: "registry",
            accepted: "a registry host with an optional port, such as ghcr.io or \
                       localhost:5000, without a scheme or path",
            value: text.to_string(),
        });
    }
    Ok(host)
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let port_ok = port.is_none_or(|port| !port.is_empty() && port.parse::<u16>().is_ok());
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    port_ok && name.split('.').all(label_ok)
}

// `image` is either a full name whose first component is a host (it has a `.` or a
// `:`, or is `localhost`, as Docker decides), or a path under `registry`.
fn parse_image(text: &str, registry: &str) -> Result<ImageName, InputError> {
    let lower = text.to_ascii_lowercase();
    if lower.contains('@')
        || lower
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        return Err(InputError::Invalid {
            input: "image",
            accepted: "an image name without a tag or digest, such as ghcr.io/acme/app \
                       (tags come from the `tags` input)",
            value: text.to_string(),
        });
    }
    let (host, path) = match lower.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            if !valid_host(first) {
                return Err(InputError::Image {
                    name: lower.clone(),
                    problem: format!("`{first}` is not a registry host"),
                });
            }
            (first.to_string(), rest.to_string())
        }
        _ => (registry.to_string(), lower.clone()),
    };
    check_repository(&host, &path)?;
    Ok(ImageName {
        registry: host,
        repository: path,
    })
}

// The distribution spec's path grammar: lowercase components
// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`, host and path 255 at most.
fn check_repository(host: &str, path: &str) -> Result<(), InputError> {
    let fail = |problem: String| InputError::Image {
        name: format!("{host}/{path}"),
        problem,
    };
    if host.len() + 1 + path.len() > 255 {
        return Err(fail("longer than 255 characters".into()));
    }
    for component in path.split('/') {
        if !valid_component(component) {
            return Err(fail(format!(
                "`{component}` must be lowercase letters and digits, separated by one `.`, \
                 one or two `_`, or `-`; hint: set the `image` input"
            )));
        }
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

/// One item of a list input and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The 1-based line where the item starts.
    pub line: usize,
    /// The item, trimmed, quotes resolved.
    pub text: String,
}

/// Splits a list input (see the module documentation): on newlines, and on commas
/// when `commas` is set. Returns the line of an unclosed quote as the error.
pub fn split_list(text: &str, commas: bool) -> Result<Vec<Item>, usize> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted_text: Option<String> = None;
    let mut line = 1;
    let mut start_line = 1;
    let mut in_quote = false;
    let mut chars = text.chars().peekable();
    let finish = |current: &mut String, quoted: &mut Option<String>, items: &mut Vec<Item>, at| {
        let text = match quoted.take() {
            Some(quoted) => quoted + current.trim_end(),
            None => current.trim().to_string(),
        };
        current.clear();
        if !text.is_empty() {
            items.push(Item { line: at, text });
        }
    };
    while let Some(c) = chars.next() {
        if in_quote {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    current.push('"');
                }
                '"' => {
                    in_quote = false;
                    quoted_text = Some(std::mem::take(&mut current));
                }
                '\n' => {
                    line += 1;
                    current.push('\n');
                }
                // A CRLF inside a quoted value is one line break.
                '\r' if chars.peek() == Some(&'\n') => {}
                _ => current.push(c),
            }
            continue;
        }
        match c {
            '"' if quoted_text.is_none() && current.trim().is_empty() => {
                current.clear();
                in_quote = true;
                start_line = line;
            }
            '\n' => {
                finish(&mut current, &mut quoted_text, &mut items, start_line);
                line += 1;
                start_line = line;
            }
            ',' if commas => {
                finish(&mut current, &mut quoted_text, &mut items, start_line);
                start_line = line;
            }
            _ => {
                if current.is_empty() && quoted_text.is_none() && c.is_whitespace() {
                    continue;
                }
                if current.is_empty() && quoted_text.is_none() {
                    start_line = line;
                }
                current.push(c);
            }
        }
    }
    if in_quote {
        return Err(start_line);
    }
    finish(&mut current, &mut quoted_text, &mut items, start_line);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::context::fixtures;
    use crate::action::labels::AnnotationLevel;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (variable(k), v.to_string()))
            .collect()
    }

    fn read(pairs: &[(&str, &str)]) -> Result<ActionInputs, InputError> {
        ActionInputs::from_env(&env(pairs))
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        read(pairs)
            .expect_err("inputs should be rejected")
            .to_string()
    }

    #[test]
    fn every_declared_input_is_read_and_nothing_else() {
        let environment = env(&[]);
        let mut reader = Reader::new(&environment);
        read_inputs(&mut reader).expect("defaults are valid");
        let mut read = reader.read.clone();
        read.sort();
        let mut declared = INPUT_NAMES.to_vec();
        declared.sort();
        assert_eq!(read, declared);
    }

    #[test]
    fn defaults() {
        let inputs = read(&[]).unwrap();
        assert_eq!(inputs.registry, "ghcr.io");
        assert_eq!(inputs.push, PushMode::Auto);
        assert_eq!(inputs.latest, LatestMode::Auto);
        assert!(!inputs.no_cache);
        assert!(inputs.tags.is_empty() && inputs.platforms.is_empty());
        let image = inputs.image_name("Acme-Corp/Web-App").unwrap();
        assert_eq!(image.to_string(), "ghcr.io/acme-corp/web-app");
    }

    #[test]
    fn hyphenated_names_keep_their_hyphens() {
        let mut environment = BTreeMap::new();
        environment.insert("INPUT_BUILD-ARGS".to_string(), "A=1".to_string());
        environment.insert("INPUT_BUILD_ARGS".to_string(), "B=2".to_string());
        let inputs = ActionInputs::from_env(&environment).unwrap();
        assert_eq!(inputs.build_args, [("A".to_string(), "1".to_string())]);
        assert_eq!(unknown_inputs(&environment), ["INPUT_BUILD_ARGS"]);
    }

    #[test]
    fn booleans_and_choices() {
        for (text, expected) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("FALSE", false),
        ] {
            assert_eq!(
                read(&[("no-cache", text)]).unwrap().no_cache,
                expected,
                "{text}"
            );
        }
        assert_eq!(
            error(&[("no-cache", "yes")]),
            "input `no-cache` accepts true or false, got `yes`"
        );
        assert_eq!(read(&[("push", "False")]).unwrap().push, PushMode::Never);
        assert_eq!(read(&[("push", " true\n")]).unwrap().push, PushMode::Always);
        assert_eq!(
            read(&[("latest", "auto")]).unwrap().latest,
            LatestMode::Auto
        );
        assert_eq!(
            error(&[("latest", "always")]),
            "input `latest` accepts auto, true or false, got `always`"
        );
    }

    #[test]
    fn list_splitting() {
        type Case = (&'static str, bool, &'static [(usize, &'static str)]);
        let cases: &[Case] = &[
            ("a,b\nc", true, &[(1, "a"), (1, "b"), (2, "c")]),
            ("a,b\nc", false, &[(1, "a,b"), (2, "c")]),
            ("\n  a \n\n, b ,\n", true, &[(2, "a"), (4, "b")]),
            ("K=\"x\"", false, &[(1, "K=\"x\"")]),
            (
                "\"K=one\ntwo\"\nL=3",
                false,
                &[(1, "K=one\ntwo"), (3, "L=3")],
            ),
            ("\"say \"\"hi\"\", ok\"", true, &[(1, "say \"hi\", ok")]),
            ("a\r\nb", false, &[(1, "a"), (2, "b")]),
        ];
        for (text, commas, expected) in cases {
            let items = split_list(text, *commas).unwrap();
            let got: Vec<(usize, &str)> = items.iter().map(|i| (i.line, i.text.as_str())).collect();
            assert_eq!(got, *expected, "{text:?}");
        }
        assert_eq!(split_list("a\n\"b\nc", false), Err(2));
    }

    #[test]
    fn build_args_labels_platforms() {
        let inputs = read(&[
            ("build-args", "VERSION=1.2\nFLAGS=-a,-b\nEMPTY="),
            ("labels", "org.opencontainers.image.vendor=Acme, Inc."),
            (
                "platforms",
                "linux/amd64, linux/ARM64\nlinux/arm/v7,linux/amd64",
            ),
        ])
        .unwrap();
        let arg = |k: &str, v: &str| (k.to_string(), v.to_string());
        let expected = [
            arg("VERSION", "1.2"),
            arg("FLAGS", "-a,-b"),
            arg("EMPTY", ""),
        ];
        assert_eq!(inputs.build_args, expected);
        assert_eq!(
            inputs.labels,
            [arg("org.opencontainers.image.vendor", "Acme, Inc.")]
        );
        let platforms: Vec<String> = inputs.platforms.iter().map(|p| p.to_string()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    }

    #[test]
    fn item_errors_name_the_input_and_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "build-args",
                "A=1\nB",
                "input `build-args` line 2: `B` is not NAME=value",
            ),
            (
                "build-args",
                "\n\nA=1\nB\n",
                "input `build-args` line 4: `B` is not NAME=value",
            ),
            (
                "build-args",
                "MY ARG=1",
                "input `build-args` line 1: `MY ARG` is not an argument name, expected NAME=value",
            ),
            (
                "labels",
                "=x",
                "input `labels` line 1: `=x` is not key=value",
            ),
            (
                "platforms",
                "linux/amd64,amd64",
                "input `platforms` line 1: `amd64` is not a platform, expected os/arch[/variant] such as linux/amd64",
            ),
            (
                "platforms",
                "linux//amd64",
                "input `platforms` line 1: `linux//amd64` is not a platform, expected os/arch[/variant] such as linux/amd64",
            ),
            (
                "annotations",
                "a=1\nmanifest:",
                "input `annotations` line 2: `manifest:` is not [manifest:|index:]key=value",
            ),
            (
                "labels",
                "\"a=1",
                "input `labels` line 1: a double quote is not closed",
            ),
            (
                "source-date-epoch",
                "-5",
                "input `source-date-epoch` accepts a Unix time in whole seconds such as 1700000000, got `-5`",
            ),
            (
                "registry",
                "https://ghcr.io",
                "input `registry` accepts a registry host with an optional port, such as ghcr.io or localhost:5000, without a scheme or path, got `https://ghcr.io`",
            ),
            (
                "image",
                "ghcr.io/acme/app:v1",
                "input `image` accepts an image name without a tag or digest, such as ghcr.io/acme/app (tags come from the `tags` input), got `ghcr.io/acme/app:v1`",
            ),
            (
                "image",
                "acme/-app",
                "image name `ghcr.io/acme/-app` is not valid: `-app` must be lowercase letters and digits, separated by one `.`, one or two `_`, or `-`; hint: set the `image` input",
            ),
        ];
        for (input, value, expected) in cases {
            assert_eq!(error(&[(input, value)]), *expected, "{input}={value:?}");
        }
        let tags = read(&[("tags", "type=sha\ntype=ref")]).unwrap_err();
        assert_eq!(tags.to_string(), "input `tags` has an invalid rule");
        let source = std::error::Error::source(&tags).expect("cause").to_string();
        assert_eq!(source, "line 2: `type=ref` needs `event=`");
    }

    #[test]
    fn images() {
        let cases = [
            ("Acme/App", "ghcr.io/acme/app"),
            ("ghcr.io/Acme/App", "ghcr.io/acme/app"),
            ("localhost:5000/app", "localhost:5000/app"),
            ("localhost/team/app", "localhost/team/app"),
            (
                "registry.example.com:8443/a__b/c.d/e--f",
                "registry.example.com:8443/a__b/c.d/e--f",
            ),
        ];
        for (text, expected) in cases {
            let inputs = read(&[("image", text)]).unwrap();
            let image = inputs.image_name("ignored/Repo").unwrap();
            assert_eq!(image.to_string(), expected, "{text}");
        }
        let inputs = read(&[("registry", "LOCALHOST:5000")]).unwrap();
        let image = inputs.image_name("Acme-Corp/Web-App").unwrap();
        assert_eq!(image.to_string(), "localhost:5000/acme-corp/web-app");
        for bad in ["acme/a___b", "acme/a..b", "acme/_a", "acme//b"] {
            assert!(read(&[("image", bad)]).is_err(), "{bad}");
        }
        let error = read(&[]).unwrap().image_name("Acme/repo.-x").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("image name `ghcr.io/acme/repo.-x`"),
            "{error}"
        );
    }

    #[test]
    fn secrets_never_show() {
        let environment = env(&[
            ("password", "ghs_0123456789abcdefSECRET"),
            (
                "secrets",
                "NPM_TOKEN=npm_TOPSECRET\n\"SSH_KEY=-----BEGIN KEY-----\nAAAAhidden\n-----END KEY-----\"",
            ),
        ]);
        let inputs = ActionInputs::from_env(&environment).unwrap();
        let debug = format!("{inputs:?}");
        for secret in ["SECRET", "TOPSECRET", "AAAAhidden"] {
            assert!(!debug.contains(secret), "{secret} leaked into {debug}");
        }
        assert_eq!(inputs.password.as_ref().unwrap().to_string(), "***");
        assert_eq!(inputs.secrets.len(), 2);
        assert_eq!(inputs.secrets[0].id, "NPM_TOKEN");
        assert_eq!(inputs.secrets[0].value.expose(), "npm_TOPSECRET");
        assert_eq!(inputs.secrets[1].id, "SSH_KEY");
        let key = "-----BEGIN KEY-----\nAAAAhidden\n-----END KEY-----";
        assert_eq!(inputs.secrets[1].value.expose(), key);
        // A malformed line is not echoed: it may be the secret itself.
        for (text, expected) in [
            (
                "ghp_pastedTokenOnly",
                "input `secrets` line 1: expected id=value (the line is not shown, it may be secret)",
            ),
            (
                "my token=hunter2",
                "input `secrets` line 1: the id before `=` must be letters, digits, `_`, `-` or `.` (the line is not shown, it may be secret)",
            ),
            (
                "A=1\nA=2",
                "input `secrets` line 2: secret id `A` is given twice",
            ),
        ] {
            let message = error(&[("secrets", text)]);
            assert_eq!(message, expected);
            assert!(!message.contains("hunter2") && !message.contains("pasted"));
        }
    }

    #[test]
    fn annotations_and_tags_are_parsed_up_front() {
        let inputs = read(&[
            (
                "annotations",
                "index:org.opencontainers.image.description=Web app\nmanifest:a=b",
            ),
            ("tags", "type=sha\ntype=ref,event=branch"),
        ])
        .unwrap();
        assert_eq!(inputs.annotations.len(), 2);
        assert_eq!(inputs.annotations[0].level, AnnotationLevel::Index);
        assert_eq!(inputs.tags.len(), 2);
    }

    #[test]
    fn push_auto_skips_fork_pull_requests() {
        let cases = [
            (fixtures::push_main(), PushMode::Auto, true),
            (fixtures::pull_same(), PushMode::Auto, true),
            (fixtures::pull_fork(), PushMode::Auto, false),
            (fixtures::pull_fork(), PushMode::Always, true),
            (fixtures::push_main(), PushMode::Never, false),
        ];
        for (run, mode, expected) in cases {
            let context = run.context();
            assert_eq!(
                mode.resolve(&context),
                expected,
                "{mode:?} on {}",
                context.git_ref
            );
        }
    }
}
