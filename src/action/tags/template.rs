//! The `{{...}}` templates of tag rule attributes: parsing at rule-parse time, so a
//! typo fails up front, and rendering against the run's context.

use super::short_sha;
use crate::action::context::{GitHubContext, RefKind, UtcTime};

/// A parsed template of a rule attribute: text with `{{...}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    Text(String),
    Branch,
    Tag,
    Sha,
    BaseRef,
    IsDefaultBranch,
    IsNotDefaultBranch,
    Date {
        commit: bool,
        format: Vec<DateToken>,
    },
    Semver(SemverPart),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SemverPart {
    Version,
    Major,
    Minor,
    Patch,
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Vocabulary {
    Global,
    Semver,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DateToken {
    Text(String),
    Year4,
    Year2,
    Month2,
    Month,
    Day2,
    Day,
    Hour2,
    Hour,
    Minute2,
    Minute,
    Second2,
    Second,
    Unix,
}

/// What a version pattern can name, from a semver or a PEP 440 version.
pub(super) struct VersionParts {
    pub(super) version: String,
    pub(super) major: u64,
    pub(super) minor: u64,
    pub(super) patch: u64,
    pub(super) raw: String,
}

pub(super) struct Eval<'a> {
    pub(super) context: &'a GitHubContext,
    pub(super) now: UtcTime,
    pub(super) version: Option<&'a VersionParts>,
}

impl Template {
    pub(super) fn text(text: &str) -> Template {
        Template {
            pieces: vec![Piece::Text(text.to_string())],
        }
    }

    pub(super) fn placeholder(piece: Piece) -> Template {
        Template {
            pieces: vec![piece],
        }
    }

    pub(super) fn as_text(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Text(text)] => Some(text),
            _ => None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.as_text() == Some("")
    }

    pub(super) fn is_only(&self, piece: Piece) -> bool {
        self.pieces == [piece]
    }

    pub(super) fn parse(text: &str, vocabulary: Vocabulary) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or("a `{{` is not closed by `}}`")?;
            pieces.push(parse_placeholder(after[..end].trim(), vocabulary)?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    pub(super) fn render(&self, eval: &Eval<'_>) -> Result<String, String> {
        let context = eval.context;
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Branch => {
                    if let RefKind::Branch(branch) = context.ref_kind() {
                        out.push_str(&branch);
                    }
                }
                Piece::Tag => {
                    if let RefKind::Tag(tag) = context.ref_kind() {
                        out.push_str(&tag);
                    }
                }
                Piece::Sha => out.push_str(short_sha(&context.sha)),
                Piece::BaseRef => out.push_str(&base_ref(context)),
                Piece::IsDefaultBranch => out.push_str(bool_text(context.is_default_branch())),
                Piece::IsNotDefaultBranch => out.push_str(bool_text(!context.is_default_branch())),
                Piece::Date { commit, format } => {
                    let time = if *commit {
                        context.commit_time.ok_or(
                            "`{{commit_date}}` needs the commit time, which the run does not know",
                        )?
                    } else {
                        eval.now
                    };
                    format_date(time, format, &mut out);
                }
                Piece::Semver(part) => {
                    let parts = eval.version.ok_or("version parts outside a version rule")?;
                    match part {
                        SemverPart::Version => out.push_str(&parts.version),
                        SemverPart::Major => out.push_str(&parts.major.to_string()),
                        SemverPart::Minor => out.push_str(&parts.minor.to_string()),
                        SemverPart::Patch => out.push_str(&parts.patch.to_string()),
                        SemverPart::Raw => out.push_str(&parts.raw),
                    }
                }
            }
        }
        Ok(out)
    }
}

fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

// `{{base_ref}}`: the branch a pushed tag belongs to, or the target of a pull request.
fn base_ref(context: &GitHubContext) -> String {
    match context.ref_kind() {
        RefKind::Tag(_) => context
            .push_base_ref
            .as_deref()
            .map(|base| base.strip_prefix("refs/heads/").unwrap_or(base).to_string())
            .unwrap_or_default(),
        RefKind::PullRequest(_) => context
            .pull_request
            .as_ref()
            .and_then(|pull| pull.base_ref.clone())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn parse_placeholder(inner: &str, vocabulary: Vocabulary) -> Result<Piece, String> {
    let words = split_words(inner)?;
    let (name, arguments) = words.split_first().ok_or("an empty `{{}}`")?;
    let no_arguments = |piece: Piece| {
        if arguments.is_empty() {
            Ok(piece)
        } else {
            Err(format!("`{{{{{name}}}}}` takes no arguments"))
        }
    };
    let piece = match (vocabulary, name.as_str()) {
        (Vocabulary::Semver, "version") => Piece::Semver(SemverPart::Version),
        (Vocabulary::Semver, "major") => Piece::Semver(SemverPart::Major),
        (Vocabulary::Semver, "minor") => Piece::Semver(SemverPart::Minor),
        (Vocabulary::Semver, "patch") => Piece::Semver(SemverPart::Patch),
        (Vocabulary::Semver, "raw") => Piece::Semver(SemverPart::Raw),
        (Vocabulary::Semver, other) => {
            return Err(format!(
                "unknown `{{{{{other}}}}}`, accepted: {{{{version}}}}, {{{{major}}}}, \
                 {{{{minor}}}}, {{{{patch}}}}, {{{{raw}}}}"
            ));
        }
        (_, "branch") => Piece::Branch,
        (_, "tag") => Piece::Tag,
        (_, "sha") => Piece::Sha,
        (_, "base_ref") => Piece::BaseRef,
        (_, "is_default_branch") => Piece::IsDefaultBranch,
        (_, "is_not_default_branch") => Piece::IsNotDefaultBranch,
        (_, "date" | "commit_date") => {
            return parse_date(name == "commit_date", arguments);
        }
        (_, other) => {
            return Err(format!(
                "unknown `{{{{{other}}}}}`, accepted: branch, tag, sha, base_ref, \
                 is_default_branch, is_not_default_branch, date 'FORMAT', commit_date 'FORMAT'"
            ));
        }
    };
    no_arguments(piece)
}

// Words of a placeholder: bare words, and `'...'` or `"..."` strings kept whole
// (the quotes removed); `key='value'` stays one word with its quotes removed.
fn split_words(inner: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    let mut started = false;
    for c in inner.chars() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            (None, c) => {
                current.push(c);
                started = true;
            }
        }
    }
    if quote.is_some() {
        return Err("a quote inside `{{...}}` is not closed".to_string());
    }
    if started {
        words.push(current);
    }
    Ok(words)
}

fn parse_date(commit: bool, arguments: &[String]) -> Result<Piece, String> {
    let name = if commit { "commit_date" } else { "date" };
    let (format, options) = arguments
        .split_first()
        .ok_or_else(|| format!("`{{{{{name}}}}}` needs a format such as 'YYYYMMDD'"))?;
    for option in options {
        match option.split_once('=') {
            // FIXME: only UTC is supported; fixed means `tz=` takes any IANA zone name,
            // which needs a time zone database.
            Some(("tz", "UTC" | "Etc/UTC")) => {}
            Some(("tz", zone)) => {
                return Err(format!("`tz={zone}`: only UTC is supported"));
            }
            _ => {
                return Err(format!(
                    "unknown option `{option}` of `{{{{{name}}}}}`, accepted: tz"
                ));
            }
        }
    }
    Ok(Piece::Date {
        commit,
        format: parse_date_format(format)?,
    })
}

// A subset of moment.js's format tokens (the ones metadata-action's examples use);
// text in `[...]` is literal, and so is anything that is not a letter.
fn parse_date_format(format: &str) -> Result<Vec<DateToken>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = format.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if c == '[' {
            let end = chars[index..]
                .iter()
                .position(|&c| c == ']')
                .ok_or("a `[` in the date format is not closed")?;
            tokens.push(DateToken::Text(
                chars[index + 1..index + end].iter().collect(),
            ));
            index += end + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            tokens.push(DateToken::Text(c.to_string()));
            index += 1;
            continue;
        }
        let run = chars[index..]
            .iter()
            .take_while(|&&other| other == c)
            .count();
        let token = match (c, run) {
            ('Y', 4) => DateToken::Year4,
            ('Y', 2) => DateToken::Year2,
            ('M', 2) => DateToken::Month2,
            ('M', 1) => DateToken::Month,
            ('D', 2) => DateToken::Day2,
            ('D', 1) => DateToken::Day,
            ('H', 2) => DateToken::Hour2,
            ('H', 1) => DateToken::Hour,
            ('m', 2) => DateToken::Minute2,
            ('m', 1) => DateToken::Minute,
            ('s', 2) => DateToken::Second2,
            ('s', 1) => DateToken::Second,
            ('X', 1) => DateToken::Unix,
            _ => {
                let token: String = chars[index..index + run].iter().collect();
                return Err(format!(
                    "date token `{token}` is not supported, accepted: YYYY, YY, MM, M, DD, D, \
                     HH, H, mm, m, ss, s, X and [text]"
                ));
            }
        };
        tokens.push(token);
        index += run;
    }
    Ok(tokens)
}

fn format_date(time: UtcTime, format: &[DateToken], out: &mut String) {
    let civil = time.civil();
    for token in format {
        let text = match token {
            DateToken::Text(text) => text.clone(),
            DateToken::Year4 => format!("{:04}", civil.year),
            DateToken::Year2 => format!("{:02}", civil.year.rem_euclid(100)),
            DateToken::Month2 => format!("{:02}", civil.month),
            DateToken::Month => civil.month.to_string(),
            DateToken::Day2 => format!("{:02}", civil.day),
            DateToken::Day => civil.day.to_string(),
            DateToken::Hour2 => format!("{:02}", civil.hour),
            DateToken::Hour => civil.hour.to_string(),
            DateToken::Minute2 => format!("{:02}", civil.minute),
            DateToken::Minute => civil.minute.to_string(),
            DateToken::Second2 => format!("{:02}", civil.second),
            DateToken::Second => civil.second.to_string(),
            DateToken::Unix => time.unix().to_string(),
        };
        out.push_str(&text);
    }
}
