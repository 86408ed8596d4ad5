//! `.dockerignore` handling with the exact semantics of Docker's pattern matcher.
//!
//! Docker (through BuildKit) reads an ignore file line by line, normalises each pattern and
//! turns it into one of four matchers: a literal comparison, a literal prefix, a literal suffix or
//! a regular expression that is generated from the glob text. The generated expression is not a
//! faithful rendering of `filepath.Match`: some glob characters are passed straight through to the
//! regular-expression engine, which gives a handful of surprising results. This module reproduces
//! that pipeline — it builds the same expression text and evaluates it with a small engine for the
//! subset of RE2 syntax such text can contain — so that a build context is filtered exactly the
//! way `docker build` filters it. The surprises are called out where they arise.
//!
//! A path is excluded when the last pattern that matches it, or any of its parent directories, is
//! a plain pattern; a matching `!` pattern re-includes it.

use std::path::{Path, PathBuf};

/// Longest line, in bytes, that Go's line scanner accepts; Docker fails on anything longer.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Why a single pattern could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternFault {
    /// The pattern was only `!`, an exception with nothing to except.
    #[error("exception `!` names no pattern")]
    BareException,
    /// Glob syntax that `filepath.Match` rejects: an unterminated or empty `[` class, a range
    /// without an end, or a trailing `\`.
    #[error("glob syntax is malformed")]
    Glob,
    /// A `\` escape the generated regular expression cannot contain (or this engine does not
    /// support, such as `\p` Unicode classes and `\b` word boundaries).
    #[error("escape `\\{0}` is not supported")]
    Escape(char),
    /// A character range whose end comes before its start, such as `[z-a]`.
    #[error("character range `{0}-{1}` is reversed")]
    ReversedRange(char, char),
    /// A `[:name:]` class with an unknown name.
    #[error("character class `{0}` is unknown")]
    NamedClass(String),
    /// The generated expression is structurally invalid (for example a stacked repetition).
    #[error("generated expression `{0}` is invalid")]
    Expression(String),
}

/// A pattern that could not be compiled, or an ignore file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// A pattern read from an ignore file is invalid.
    #[error("invalid ignore pattern `{pattern}` on line {line}")]
    Line {
        /// The pattern as written, without surrounding whitespace.
        pattern: String,
        /// The 1-based line number in the ignore file.
        line: usize,
        /// What is wrong with it.
        #[source]
        fault: PatternFault,
    },
    /// A pattern given directly (such as a `COPY --exclude` value) is invalid.
    #[error("invalid exclude pattern `{pattern}`")]
    Pattern {
        /// The pattern as given, without surrounding whitespace.
        pattern: String,
        /// What is wrong with it.
        #[source]
        fault: PatternFault,
    },
    /// A line is too long for Docker's ignore-file reader, which rejects the whole file.
    #[error("line {line} of the ignore file is longer than 65535 bytes")]
    LineTooLong {
        /// The 1-based line number.
        line: usize,
    },
}

/// A compiled list of ignore patterns, in file order.
#[derive(Debug, Clone, Default)]
pub struct IgnorePatterns {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exception: bool,
    matcher: Matcher,
}

impl IgnorePatterns {
    /// Reads a .dockerignore text: one pattern per line, `#` comments, blank lines skipped,
    /// surrounding whitespace trimmed, `!` exceptions, paths cleaned like Go's filepath.Clean, a
    /// leading `/` dropped.
    ///
    /// As in Docker, a line is a comment only when `#` is its very first character; ` #x` is the
    /// pattern `#x`. A UTF-8 byte order mark at the start of the text is ignored.
    pub fn parse(text: &str) -> Result<IgnorePatterns, IgnoreError> {
        // Docker's scanner does not report a final empty line after a trailing newline; that
        // line would be skipped anyway, so splitting naively is equivalent.
        let mut patterns = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            if raw.len() >= MAX_LINE_BYTES {
                return Err(IgnoreError::LineTooLong { line });
            }
            let mut raw = raw.strip_suffix('\r').unwrap_or(raw);
            if index == 0 {
                raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
            }
            if raw.starts_with('#') {
                continue;
            }
            let compiled = normalise_entry(raw).map(|entry| compile_entry(&entry));
            match compiled {
                None | Some(Ok(None)) => {}
                Some(Ok(Some(pattern))) => patterns.push(pattern),
                Some(Err(fault)) => {
                    let pattern = raw.trim().to_owned();
                    return Err(IgnoreError::Line {
                        pattern,
                        line,
                        fault,
                    });
                }
            }
        }
        Ok(IgnorePatterns { patterns })
    }

    /// Compiles patterns given directly (COPY --exclude values), same rules.
    ///
    /// A value starting with `#` is a pattern here, not a comment, since it did not come from a
    /// file. Unlike BuildKit, which hands `--exclude` values to the matcher unnormalised (so a
    /// leading `/` there makes a pattern that never matches), the ignore-file normalisation is
    /// applied, which drops a leading `/`.
    pub fn from_patterns(patterns: &[String]) -> Result<IgnorePatterns, IgnoreError> {
        let mut compiled = Vec::new();
        for given in patterns {
            let Some(entry) = normalise_entry(given) else {
                continue;
            };
            match compile_entry(&entry) {
                Ok(None) => {}
                Ok(Some(pattern)) => compiled.push(pattern),
                Err(fault) => {
                    let pattern = given.trim().to_owned();
                    return Err(IgnoreError::Pattern { pattern, fault });
                }
            }
        }
        Ok(IgnorePatterns { patterns: compiled })
    }

    /// Whether there are no patterns at all, so nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded: the last
    /// matching pattern wins, and a pattern matching a parent directory matches everything below
    /// it (MatchesOrParentMatches semantics).
    ///
    /// The path is cleaned first and a leading `/` dropped; the context root itself (`.` or an
    /// empty path) is never excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let Some(path) = normalise_path(path) else {
            return false;
        };
        self.last_match(&path)
            .is_some_and(|pattern| !pattern.1.exception)
    }

    /// For walking: whether an excluded directory may still contain included paths because of a
    /// later `!` exception, so the walk must descend into it.
    ///
    /// The answer errs towards `true`: `false` guarantees that everything below `dir` is
    /// excluded. A directory that is not excluded (including the context root) gives `true`.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let Some(dir) = normalise_path(dir) else {
            return true;
        };
        let Some((decisive, pattern)) = self.last_match(&dir) else {
            return true;
        };
        if pattern.exception {
            return true;
        }
        // Every pattern up to `decisive` that matches `dir` also matches everything below it
        // (through the parent rule), so only a later exception that can match some path strictly
        // inside `dir` is able to change the outcome for a descendant.
        let prefix = format!("{dir}/");
        self.patterns
            .iter()
            .skip(decisive + 1)
            .any(|later| later.exception && later.matcher.may_match_under(&prefix))
    }

    /// The index and pattern that decide `path`: the last one matching it or a parent directory.
    ///
    /// Docker walks the list forwards, skipping plain patterns while the path is excluded and
    /// exceptions while it is not; that is the same as taking the last pattern that matches.
    fn last_match(&self, path: &str) -> Option<(usize, &Pattern)> {
        let parents: Vec<&str> = path.match_indices('/').map(|(at, _)| &path[..at]).collect();
        self.patterns.iter().enumerate().rev().find(|(_, pattern)| {
            pattern.matcher.matches(path) || parents.iter().any(|p| pattern.matcher.matches(p))
        })
    }
}

/// The ignore file for a build: `<dockerfile file name>.dockerignore` beside the Dockerfile if it
/// exists, else `<context>/.dockerignore`, else None.
///
/// A relative `dockerfile` is resolved like any relative path, against the working directory.
/// Only regular files (or symbolic links to them) count.
pub fn find_ignore_file(context: &Path, dockerfile: &Path) -> Option<PathBuf> {
    if let Some(name) = dockerfile.file_name() {
        let mut beside_name = name.to_os_string();
        beside_name.push(".dockerignore");
        let beside = dockerfile.with_file_name(beside_name);
        if beside.is_file() {
            return Some(beside);
        }
    }
    let at_root = context.join(".dockerignore");
    at_root.is_file().then_some(at_root)
}

/// Applies the ignore-file reader's normalisation to one line; `None` for a blank line.
fn normalise_entry(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    let (exception, body) = match trimmed.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, trimmed),
    };
    let mut body = if body.is_empty() {
        String::new()
    } else {
        clean(body)
    };
    if body.len() > 1 && body.starts_with('/') {
        body.remove(0);
    }
    Some(if exception { format!("!{body}") } else { body })
}

/// Matches one path component against one component of a COPY source pattern (`*.go`,
/// `file?.txt`, `[a-c]*`), with the same glob semantics as ignore patterns, which agree
/// with Go's `filepath.Match` on a single component.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, IgnoreError> {
    let fault = |fault| IgnoreError::Pattern {
        pattern: pattern.to_string(),
        fault,
    };
    validate_glob(pattern).map_err(fault)?;
    let matcher = Matcher::compile(pattern).map_err(fault)?;
    Ok(matcher.matches(name))
}

/// Applies the matcher's own normalisation and compiles; `None` for an empty entry.
///
/// The matcher cleans the entry again with the `!` still attached. That is harmless except for
/// `!/`, which cleans to a bare `!` and is therefore rejected, as Docker rejects it.
fn compile_entry(entry: &str) -> Result<Option<Pattern>, PatternFault> {
    let trimmed = entry.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let cleaned = clean(trimmed);
    let (exception, body) = match cleaned.strip_prefix('!') {
        Some("") => return Err(PatternFault::BareException),
        Some(rest) => (true, rest),
        None => (false, cleaned.as_str()),
    };
    validate_glob(body)?;
    Ok(Some(Pattern {
        exception,
        matcher: Matcher::compile(body)?,
    }))
}

/// Cleans a slash-separated path lexically, the way Go's `filepath.Clean` does on Unix.
fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            // `..` cannot climb above the root, but stays at the front of a relative path.
            ".." if rooted => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

/// Cleans a path to be matched; `None` for the context root.
fn normalise_path(path: &str) -> Option<String> {
    let cleaned = clean(path);
    let relative = cleaned.strip_prefix('/').unwrap_or(&cleaned);
    (!relative.is_empty() && relative != ".").then(|| relative.to_owned())
}

/// Checks a pattern against the syntax `filepath.Match` accepts, which Docker enforces up front.
fn validate_glob(pattern: &str) -> Result<(), PatternFault> {
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next().ok_or(PatternFault::Glob)?;
            }
            '[' => {
                chars.next_if_eq(&'^');
                let mut items = 0;
                loop {
                    if items > 0 && chars.next_if_eq(&']').is_some() {
                        break;
                    }
                    glob_class_char(&mut chars)?;
                    if chars.next_if_eq(&'-').is_some() {
                        glob_class_char(&mut chars)?;
                    }
                    items += 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One possibly escaped character of a glob class, which must not be the last of the pattern.
fn glob_class_char(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<(), PatternFault> {
    match chars.next() {
        None | Some('-' | ']') => return Err(PatternFault::Glob),
        Some('\\') => {
            chars.next().ok_or(PatternFault::Glob)?;
        }
        Some(_) => {}
    }
    chars.peek().map(|_| ()).ok_or(PatternFault::Glob)
}

/// How one pattern is tested, mirroring the four strategies Docker picks between.
#[derive(Debug, Clone)]
enum Matcher {
    /// No glob characters: the path must equal the pattern.
    Exact(String),
    /// Only literal text before a final `**`: the path must start with that text (in bytes).
    Prefix(Vec<u8>),
    /// `**` first and only literal text after it: the path must end with that text, or equal it
    /// without its leading `/` (in bytes).
    Suffix(Vec<u8>),
    /// Anything else: the generated regular expression.
    Program(Program),
}

impl Matcher {
    /// Translates a cleaned pattern the way Docker does, then picks the strategy.
    fn compile(pattern: &str) -> Result<Matcher, PatternFault> {
        #[derive(PartialEq)]
        enum Kind {
            Exact,
            Prefix,
            Suffix,
            Regex,
        }
        let mut kind = Kind::Exact;
        let mut expr = String::from("^");
        let mut chars = pattern.chars().peekable();
        // Go's text scanner silently drops a byte order mark in front of the pattern.
        chars.next_if_eq(&'\u{feff}');
        let mut first = true;
        while let Some(c) = chars.next() {
            let at_start = std::mem::replace(&mut first, false);
            match c {
                '*' if chars.next_if_eq(&'*').is_some() => {
                    chars.next_if_eq(&'/');
                    if chars.peek().is_some() {
                        expr.push_str("(.*/)?");
                        kind = Kind::Regex;
                    } else if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        expr.push_str(".*");
                        kind = Kind::Regex;
                    }
                    // Surprise: a leading `**` selects suffix matching even though the rest of
                    // the pattern may later switch back to a regex; if it does not, `**foo`
                    // becomes "ends with `foo`" and so matches `xfoo`, not just `x/foo`.
                    if at_start {
                        kind = Kind::Suffix;
                    }
                }
                '*' => {
                    expr.push_str("[^/]*");
                    kind = Kind::Regex;
                }
                '?' => {
                    expr.push_str("[^/]");
                    kind = Kind::Regex;
                }
                '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                    expr.push('\\');
                    expr.push(c);
                }
                // Surprise: the escaped character reaches the regex engine as `\x`, so `\d` is a
                // digit class rather than the letter `d`.
                '\\' => match chars.next() {
                    Some(escaped) => {
                        expr.push('\\');
                        expr.push(escaped);
                        kind = Kind::Regex;
                    }
                    None => expr.push('\\'),
                },
                // Surprise: brackets pass through unchanged, so a class is an RE2 class: `[!a]`
                // is `!` or `a` (not a negation), `[[:digit:]]` is a POSIX class, and a `*` or
                // `?` inside brackets splices its own expansion into the class text.
                '[' | ']' => {
                    expr.push(c);
                    kind = Kind::Regex;
                }
                // Surprise: a bare `^` is also passed through, which makes it an anchor (that
                // can never match mid-path) once the pattern is a regex.
                other => expr.push(other),
            }
        }
        Ok(match kind {
            Kind::Exact => Matcher::Exact(pattern.to_owned()),
            Kind::Prefix => {
                let bytes = pattern.as_bytes();
                Matcher::Prefix(bytes[..bytes.len().saturating_sub(2)].to_vec())
            }
            Kind::Suffix => Matcher::Suffix(pattern.as_bytes().get(2..).unwrap_or(&[]).to_vec()),
            Kind::Regex => {
                expr.push('$');
                Matcher::Program(Program::compile(&expr)?)
            }
        })
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(text) => path == text,
            // Surprise: `dir/**` keeps its slash, so it matches everything inside `dir` but not
            // `dir` itself.
            Matcher::Prefix(prefix) => path.as_bytes().starts_with(prefix),
            Matcher::Suffix(suffix) => {
                let path = path.as_bytes();
                path.ends_with(suffix) || (suffix.first() == Some(&b'/') && path == &suffix[1..])
            }
            Matcher::Program(program) => program
                .run(path, true)
                .iter()
                .any(|inst| matches!(inst, Inst::Match)),
        }
    }

    /// Whether some path starting with `prefix` (which ends in `/`) and longer than it could
    /// match; errs towards `true`.
    fn may_match_under(&self, prefix: &str) -> bool {
        match self {
            Matcher::Exact(text) => text.len() > prefix.len() && text.starts_with(prefix),
            Matcher::Prefix(literal) => {
                literal.starts_with(prefix.as_bytes()) || prefix.as_bytes().starts_with(literal)
            }
            // Any suffix can be appended below any directory.
            Matcher::Suffix(_) => true,
            Matcher::Program(program) => program
                .run(prefix, false)
                .iter()
                .any(|inst| matches!(inst, Inst::Class(_))),
        }
    }
}

/// A set of characters, as ranges of scalar values, possibly negated.
#[derive(Debug, Clone, PartialEq)]
struct Class {
    negated: bool,
    ranges: Vec<(u32, u32)>,
}

impl Class {
    fn of(ranges: &[(u32, u32)], negated: bool) -> Class {
        Class {
            negated,
            ranges: ranges.to_vec(),
        }
    }

    fn single(c: char) -> Class {
        Class::of(&[(c as u32, c as u32)], false)
    }

    fn contains(&self, c: char) -> bool {
        let c = c as u32;
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// The complement of a set of ranges within the Unicode scalar space.
fn complement(ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut out = Vec::new();
    let mut next = 0u32;
    for (lo, hi) in sorted {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = next.max(hi.saturating_add(1));
    }
    if next <= 0x10FFFF {
        out.push((next, 0x10FFFF));
    }
    out
}

const DIGIT: &[(u32, u32)] = &[(0x30, 0x39)];
const SPACE_PERL: &[(u32, u32)] = &[(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)];
const WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];

/// The Perl class named by the letter after `\`, as RE2 defines it (ASCII only).
fn perl_class(letter: char) -> Option<Class> {
    let ranges = match letter.to_ascii_lowercase() {
        'd' => DIGIT,
        's' => SPACE_PERL,
        'w' => WORD,
        _ => return None,
    };
    Some(Class::of(ranges, letter.is_ascii_uppercase()))
}

/// The ranges of an RE2 POSIX class name (ASCII only).
fn posix_class(name: &str) -> Option<&'static [(u32, u32)]> {
    Some(match name {
        "alnum" => &[(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
        "alpha" => &[(0x41, 0x5A), (0x61, 0x7A)],
        "ascii" => &[(0x00, 0x7F)],
        "blank" => &[(0x09, 0x09), (0x20, 0x20)],
        "cntrl" => &[(0x00, 0x1F), (0x7F, 0x7F)],
        "digit" => DIGIT,
        "graph" => &[(0x21, 0x7E)],
        "lower" => &[(0x61, 0x7A)],
        "print" => &[(0x20, 0x7E)],
        "punct" => &[(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
        "space" => &[(0x09, 0x0D), (0x20, 0x20)],
        "upper" => &[(0x41, 0x5A)],
        "word" => WORD,
        "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        _ => return None,
    })
}

/// A parsed piece of the generated expression.
#[derive(Debug)]
enum Node {
    Class(Class),
    BeginText,
    EndText,
    Group(Vec<Node>),
    Star(Box<Node>),
    Optional(Box<Node>),
    Plus(Box<Node>),
}

/// One instruction of a Thompson-style automaton.
#[derive(Debug, Clone, PartialEq)]
enum Inst {
    Class(Class),
    BeginText,
    EndText,
    Split(usize, usize),
    Jump(usize),
    Match,
}

/// A compiled expression, run by simulating all threads at once so that no pattern can make
/// matching slower than linear in the path length.
#[derive(Debug, Clone)]
struct Program {
    insts: Vec<Inst>,
}

impl Program {
    fn compile(expr: &str) -> Result<Program, PatternFault> {
        let mut parser = ExprParser {
            chars: expr.chars().collect(),
            pos: 0,
            text: expr,
        };
        let nodes = parser.sequence(false)?;
        let mut insts = Vec::new();
        for node in &nodes {
            emit(node, &mut insts);
        }
        insts.push(Inst::Match);
        Ok(Program { insts })
    }

    /// Runs over `text` and returns the instructions alive at its end. With `complete` false the
    /// text is treated as the start of something longer, so the end-of-text anchor never holds.
    fn run(&self, text: &str, complete: bool) -> Vec<&Inst> {
        let mut chars = text.chars().peekable();
        let mut current = Vec::new();
        let mut seen = vec![false; self.insts.len()];
        let at_end = complete && chars.peek().is_none();
        self.follow(0, true, at_end, &mut seen, &mut current);
        while let Some(c) = chars.next() {
            let at_end = complete && chars.peek().is_none();
            let mut next = Vec::new();
            seen.iter_mut().for_each(|flag| *flag = false);
            for &pc in &current {
                if let Some(Inst::Class(class)) = self.insts.get(pc) {
                    if class.contains(c) {
                        self.follow(pc + 1, false, at_end, &mut seen, &mut next);
                    }
                }
            }
            if next.is_empty() {
                return Vec::new();
            }
            current = next;
        }
        current
            .iter()
            .filter_map(|&pc| self.insts.get(pc))
            .collect()
    }

    /// Adds to `threads` every consuming or accepting instruction reachable from `start` without
    /// consuming input, evaluating anchors for the current position. `seen` is shared by all
    /// threads at one position, so each instruction is visited once per position.
    fn follow(
        &self,
        start: usize,
        at_start: bool,
        at_end: bool,
        seen: &mut [bool],
        threads: &mut Vec<usize>,
    ) {
        let mut stack = vec![start];
        while let Some(pc) = stack.pop() {
            let (Some(inst), Some(flag)) = (self.insts.get(pc), seen.get_mut(pc)) else {
                continue;
            };
            if std::mem::replace(flag, true) {
                continue;
            }
            match inst {
                Inst::Split(first, second) => stack.extend([*second, *first]),
                Inst::Jump(to) => stack.push(*to),
                Inst::BeginText if at_start => stack.push(pc + 1),
                Inst::EndText if at_end => stack.push(pc + 1),
                Inst::BeginText | Inst::EndText => {}
                Inst::Class(_) | Inst::Match => threads.push(pc),
            }
        }
    }
}

fn emit(node: &Node, insts: &mut Vec<Inst>) {
    match node {
        Node::Class(class) => insts.push(Inst::Class(class.clone())),
        Node::BeginText => insts.push(Inst::BeginText),
        Node::EndText => insts.push(Inst::EndText),
        Node::Group(nodes) => nodes.iter().for_each(|inner| emit(inner, insts)),
        Node::Star(inner) => {
            let split = insts.len();
            insts.push(Inst::Split(0, 0));
            emit(inner, insts);
            insts.push(Inst::Jump(split));
            insts[split] = Inst::Split(split + 1, insts.len());
        }
        Node::Optional(inner) => {
            let split = insts.len();
            insts.push(Inst::Split(0, 0));
            emit(inner, insts);
            insts[split] = Inst::Split(split + 1, insts.len());
        }
        Node::Plus(inner) => {
            let start = insts.len();
            emit(inner, insts);
            insts.push(Inst::Split(start, insts.len() + 1));
        }
    }
}

/// A parser for the part of RE2's syntax that Docker's generated expressions can contain.
struct ExprParser<'a> {
    chars: Vec<char>,
    pos: usize,
    text: &'a str,
}

impl ExprParser<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        Some(c)
    }

    fn invalid(&self) -> PatternFault {
        PatternFault::Expression(self.text.to_owned())
    }

    /// Parses until the end of the text, or until the `)` closing a group when `in_group`.
    fn sequence(&mut self, in_group: bool) -> Result<Vec<Node>, PatternFault> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut after_repeat = false;
        while let Some(c) = self.bump() {
            let node = match c {
                ')' if in_group => return Ok(nodes),
                ')' | '|' => return Err(self.invalid()),
                '*' | '+' | '?' => {
                    // RE2 refuses a repetition with no operand and a repetition of a repetition;
                    // a `?` straight after one only makes it non-greedy, which cannot change
                    // whether the whole path matches.
                    let operand = nodes.pop().filter(|_| !after_repeat);
                    let operand = Box::new(operand.ok_or_else(|| self.invalid())?);
                    nodes.push(match c {
                        '*' => Node::Star(operand),
                        '+' => Node::Plus(operand),
                        _ => Node::Optional(operand),
                    });
                    if self.peek(0) == Some('?') {
                        self.pos += 1;
                    }
                    after_repeat = true;
                    continue;
                }
                '(' => Node::Group(self.sequence(true)?),
                '^' => Node::BeginText,
                '$' => Node::EndText,
                // RE2's `.` stops at a newline, so `**` does not cross one inside a file name.
                '.' => Node::Class(Class::single('\n').negate()),
                '[' => Node::Class(self.class()?),
                '\\' => self.top_escape()?,
                other => Node::Class(Class::single(other)),
            };
            nodes.push(node);
            after_repeat = false;
        }
        if in_group {
            Err(self.invalid())
        } else {
            Ok(nodes)
        }
    }

    fn top_escape(&mut self) -> Result<Node, PatternFault> {
        let c = self.bump().ok_or_else(|| self.invalid())?;
        Ok(match c {
            'A' => Node::BeginText,
            'z' => Node::EndText,
            _ => match perl_class(c) {
                Some(class) => Node::Class(class),
                None => Node::Class(Class::single(self.escape(c)?)),
            },
        })
    }

    /// The character an escape stands for, given the character after the `\`.
    fn escape(&mut self, c: char) -> Result<char, PatternFault> {
        match c {
            _ if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
            'a' => Ok('\u{7}'),
            'f' => Ok('\u{c}'),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            't' => Ok('\t'),
            'v' => Ok('\u{b}'),
            '0'..='7' => {
                // A lone non-zero digit would be a back-reference, which RE2 rejects.
                let octal = |d: Option<char>| d.filter(|d| ('0'..='7').contains(d));
                if c != '0' && octal(self.peek(0)).is_none() {
                    return Err(PatternFault::Escape(c));
                }
                let mut value = c as u32 - '0' as u32;
                for _ in 0..2 {
                    let Some(digit) = octal(self.peek(0)) else {
                        break;
                    };
                    value = value * 8 + (digit as u32 - '0' as u32);
                    self.pos += 1;
                }
                char::from_u32(value).ok_or(PatternFault::Escape(c))
            }
            'x' => {
                let high = self.bump().and_then(|d| d.to_digit(16));
                let low = self.bump().and_then(|d| d.to_digit(16));
                match (high, low) {
                    (Some(high), Some(low)) => char::from_u32(high * 16 + low),
                    _ => None,
                }
                .ok_or(PatternFault::Escape(c))
            }
            _ => Err(PatternFault::Escape(c)),
        }
    }

    /// Parses a class after its `[`, following RE2's rules rather than the glob's.
    fn class(&mut self) -> Result<Class, PatternFault> {
        let negated = self.peek(0) == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.peek(0).ok_or_else(|| self.invalid())?;
            if c == ']' && !first {
                self.pos += 1;
                return Ok(Class { negated, ranges });
            }
            first = false;
            if c == '[' && self.peek(1) == Some(':') {
                if let Some(named) = self.named_class()? {
                    ranges.extend(named);
                    continue;
                }
            }
            if c == '\\' {
                if let Some(class) = self.peek(1).and_then(perl_class) {
                    self.pos += 2;
                    ranges.extend(class.effective_ranges());
                    continue;
                }
            }
            let lo = self.class_char()?;
            let mut hi = lo;
            if self.peek(0) == Some('-') && self.peek(1).is_some_and(|next| next != ']') {
                self.pos += 1;
                hi = self.class_char()?;
                if hi < lo {
                    return Err(PatternFault::ReversedRange(lo, hi));
                }
            }
            ranges.push((lo as u32, hi as u32));
        }
    }

    /// A `[:name:]` or `[:^name:]` class at the cursor, or `None` when there is no closing `:]`
    /// (then the `[` is an ordinary character).
    fn named_class(&mut self) -> Result<Option<Vec<(u32, u32)>>, PatternFault> {
        let rest = self.chars.get(self.pos + 2..).unwrap_or(&[]);
        let Some(len) = rest.windows(2).position(|pair| pair == [':', ']']) else {
            return Ok(None);
        };
        let name: String = rest[..len].iter().collect();
        let (negated, bare) = match name.strip_prefix('^') {
            Some(bare) => (true, bare),
            None => (false, name.as_str()),
        };
        let ranges =
            posix_class(bare).ok_or_else(|| PatternFault::NamedClass(format!("[:{name}:]")))?;
        self.pos += len + 4;
        Ok(Some(if negated {
            complement(ranges)
        } else {
            ranges.to_vec()
        }))
    }

    fn class_char(&mut self) -> Result<char, PatternFault> {
        match self.bump() {
            Some('\\') => {
                let c = self.bump().ok_or_else(|| self.invalid())?;
                self.escape(c)
            }
            Some(c) => Ok(c),
            None => Err(self.invalid()),
        }
    }
}

impl Class {
    fn negate(mut self) -> Class {
        self.negated = !self.negated;
        self
    }

    /// The ranges this class matches, with any negation resolved.
    fn effective_ranges(&self) -> Vec<(u32, u32)> {
        if self.negated {
            complement(&self.ranges)
        } else {
            self.ranges.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `lines` as an ignore file and reports whether `path` comes out excluded.
    fn excluded(lines: &[&str], path: &str) -> Result<bool, IgnoreError> {
        Ok(IgnorePatterns::parse(&lines.join("\n"))?.is_excluded(path))
    }

    type Case = (&'static [&'static str], &'static str, bool);

    const CASES: &[Case] = &[
        // `*` and `?` stay within one path segment.
        (&["*.txt"], "a.txt", true),
        (&["*.txt"], "dir/a.txt", false),
        (&["*.txt"], "a.txt.bak", false),
        (&["*"], "anything", true),
        (&["*"], "dir/file", true),
        (&["a*b"], "ab", true),
        (&["a*b"], "axyzb", true),
        (&["a*b"], "a/b", false),
        (&["dir/*"], "dir", false),
        (&["dir/*"], "dir/x", true),
        (&["dir/*"], "dir/x/y", true),
        (&["?.go"], "a.go", true),
        (&["?.go"], "ab.go", false),
        (&["?.go"], ".go", false),
        (&["a?b"], "a/b", false),
        (&["?"], "é", true),
        (&["é?"], "éa", true),
        // `**` in every position.
        (&["**"], "a", true),
        (&["**"], "a/b/c", true),
        (&["**/foo"], "foo", true),
        (&["**/foo"], "a/foo", true),
        (&["**/foo"], "a/b/foo", true),
        (&["**/foo"], "a/foo/bar", true),
        (&["**/foo"], "afoo", false),
        (&["**foo"], "xfoo", true),
        (&["**foo"], "a/bfoo", true),
        (&["**/*.go"], "a.go", true),
        (&["**/*.go"], "x/y/a.go", true),
        (&["**/*.go"], "x/a.goo", false),
        (&["**/.git"], ".git", true),
        (&["**/.git"], "sub/.git/config", true),
        (&["a/**/b"], "a/b", true),
        (&["a/**/b"], "a/x/b", true),
        (&["a/**/b"], "a/x/y/b", true),
        (&["a/**/b"], "ab", false),
        (&["a/**/b"], "a/xb", false),
        (&["a/**"], "a/x", true),
        (&["a/**"], "a/x/y", true),
        (&["a/**"], "a", false),
        (&["a/**"], "ab", false),
        (&["a**"], "abc", true),
        (&["a**"], "a/b", true),
        (&["a*/**"], "ab/c", true),
        (&["a*/**"], "ab", false),
        (&["**/a/**"], "x/a/b", true),
        (&["**/a/**"], "a/b", true),
        (&["**/a/**"], "a", false),
        (&["a/**/"], "a/x", true),
        (&["a/**/b"], "a/x\ny/b", false),
        // Character classes, ranges and negation, with RE2's reading of them.
        (&["[abc].txt"], "a.txt", true),
        (&["[abc].txt"], "d.txt", false),
        (&["[a-c]x"], "bx", true),
        (&["[a-c]x"], "dx", false),
        (&["[^a-c]x"], "dx", true),
        (&["[^a-c]x"], "ax", false),
        (&["x[^a]y"], "x/y", true),
        (&["[!a]x"], "!x", true),
        (&["[!a]x"], "ax", true),
        (&["[!a]x"], "bx", false),
        (&["[\\]]"], "]", true),
        (&["[a\\-z]"], "-", true),
        (&["[a\\-z]"], "b", false),
        (&["[[:digit:]]x"], "5x", true),
        (&["[[:digit:]]x"], "ax", false),
        (&["[a*]"], "a]", true),
        (&["[a*]"], "]", true),
        (&["[a*]"], "a", false),
        (&["[é-ë]"], "ê", true),
        // Escapes and characters that are special only to regexes.
        (&["\\*"], "*", true),
        (&["\\*"], "a", false),
        (&["a\\?b"], "a?b", true),
        (&["a\\?b"], "axb", false),
        (&["\\d"], "5", true),
        (&["\\d"], "d", false),
        (&["\\#a"], "#a", true),
        (&["a.b"], "a.b", true),
        (&["a.b"], "axb", false),
        (&["a.*"], "a.c", true),
        (&["a.*"], "abc", false),
        (&["a+b(c)|{d}$"], "a+b(c)|{d}$", true),
        (&["*.{a}"], "f.{a}", true),
        (&["a^b"], "a^b", true),
        (&["*^b"], "a^b", false),
        // Exceptions: the last match wins.
        (&["*.md", "!README.md"], "README.md", false),
        (&["*.md", "!README.md"], "a.md", true),
        (&["*.md", "!README.md", "README.md"], "README.md", true),
        (&["a", "!a"], "a", false),
        (&["!a", "a"], "a", true),
        (&["!x"], "x", false),
        (&["dir", "!dir/keep"], "dir", true),
        (&["dir", "!dir/keep"], "dir/keep", false),
        (&["dir", "!dir/keep"], "dir/keep/x", false),
        (&["dir", "!dir/keep"], "dir/other", true),
        (&["*", "!keep/file"], "keep", true),
        (&["*", "!keep/file"], "keep/file", false),
        (&["*", "!keep/file"], "keep/other", true),
        (&["a/b", "!a"], "a/b/c", false),
        (&["*", "! a"], "a", false),
        (&["*", "!*.go", "vendor"], "vendor/x.go", true),
        // Patterns are anchored at the context root; a parent match covers its subtree.
        (&["a"], "a/b/c", true),
        (&["a/b"], "a/b/c", true),
        (&["a/b"], "a", false),
        (&["b"], "a/b", false),
        // Patterns are cleaned before use.
        (&["./a"], "a", true),
        (&["a/"], "a/x", true),
        (&["/a"], "a", true),
        (&["a//b"], "a/b", true),
        (&["a/../b"], "b", true),
        (&["a/../b"], "a", false),
        (&["a/./b/"], "a/b", true),
        (&["  a  "], "a", true),
        (&["\ta b\t"], "a b", true),
        (&["/"], "a", false),
        (&["."], "a", false),
        (&["a /"], "a", true),
        // Comments need `#` in the very first column.
        (&["# a"], "# a", false),
        (&["#a"], "#a", false),
        (&[" #a"], "#a", true),
        (&["", "   ", "a"], "a", true),
        (&["a\r", "b\r"], "b", true),
        // Paths to test are cleaned too, and the root is never excluded.
        (&["a"], "./a", true),
        (&["a"], "/a", true),
        (&["a/b"], "a//b", true),
        (&["*"], ".", false),
        (&["**"], "", false),
    ];

    #[test]
    fn table() {
        let mut failures = Vec::new();
        for (lines, path, expected) in CASES {
            match excluded(lines, path) {
                Ok(got) if got == *expected => {}
                outcome => failures.push(format!("{lines:?} on {path:?}: {outcome:?}")),
            }
        }
        assert!(
            failures.is_empty(),
            "{} failing cases:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn table_is_large_enough() {
        assert!(CASES.len() >= 80, "only {} cases", CASES.len());
    }

    #[test]
    fn byte_order_mark_only_at_start() {
        let patterns = IgnorePatterns::parse("\u{feff}a\n\u{feff}b").unwrap();
        assert!(patterns.is_excluded("a"));
        assert!(!patterns.is_excluded("b"));
        assert!(patterns.is_excluded("\u{feff}b"));
    }

    #[test]
    fn walking_descends_only_where_needed() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["*", "!keep/file"], "keep", true),
            (&["*", "!keep/file"], "other", false),
            (&["dir"], "dir", false),
            (&["dir", "!dir/**/*.go"], "dir", true),
            (&["dir", "!dir/**/*.go"], "dir/sub", true),
            (&["*", "!*.go"], "sub", false),
            (&["*", "!**/*.go"], "sub", true),
            (&["a", "!a/b", "a/b"], "a/b", false),
            (&["!x"], "dir", true),
            (&["*", "!ke*/file"], "keep", true),
            (&["*", "!ke*/file"], "other", false),
            (&["*", "!a/b/c"], "a", true),
            (&["*", "!a/b/c"], "a/b", true),
            (&["*", "!a/b/c"], "a/x", false),
            (&["*", "!a/b**"], "a", true),
            (&["*", "!a/b**"], "c", false),
            (&["*", "!a"], "a/sub", true),
            (&["!a", "*"], "a", false),
            (&["*"], ".", true),
        ];
        for (lines, dir, expected) in cases {
            let patterns = IgnorePatterns::parse(&lines.join("\n")).unwrap();
            assert_eq!(
                patterns.may_include_below(dir),
                *expected,
                "{lines:?} below {dir:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_pattern_and_line() {
        let err = IgnorePatterns::parse("a\n  [  \n").unwrap_err();
        assert!(matches!(
            &err,
            IgnoreError::Line {
                line: 2,
                fault: PatternFault::Glob,
                ..
            }
        ));
        assert_eq!(err.to_string(), "invalid ignore pattern `[` on line 2");

        let err = IgnorePatterns::parse("# comment\n\n!").unwrap_err();
        assert_eq!(err.to_string(), "invalid ignore pattern `!` on line 3");
        assert!(matches!(
            err,
            IgnoreError::Line {
                fault: PatternFault::BareException,
                ..
            }
        ));

        let err = IgnorePatterns::from_patterns(&["ok".into(), " [a ".into()]).unwrap_err();
        assert_eq!(err.to_string(), "invalid exclude pattern `[a`");
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        let bad: &[(&str, PatternFault)] = &[
            ("[", PatternFault::Glob),
            ("[]", PatternFault::Glob),
            ("[^]", PatternFault::Glob),
            ("[a-]", PatternFault::Glob),
            ("[-a]", PatternFault::Glob),
            ("[a-b", PatternFault::Glob),
            ("a\\", PatternFault::Glob),
            ("!", PatternFault::BareException),
            ("! ", PatternFault::BareException),
            // `!/` only becomes a bare `!` after the matcher cleans it a second time.
            ("!/", PatternFault::BareException),
            // Docker reports these only when a path is first matched; here they fail up front.
            ("[z-a]", PatternFault::ReversedRange('z', 'a')),
            ("\\q", PatternFault::Escape('q')),
            ("a\\1", PatternFault::Escape('1')),
            ("[[:nope:]]", PatternFault::NamedClass("[:nope:]".into())),
        ];
        for (pattern, fault) in bad {
            match IgnorePatterns::parse(pattern) {
                Err(IgnoreError::Line {
                    fault: got,
                    line: 1,
                    ..
                }) => {
                    assert_eq!(&got, fault, "{pattern:?}")
                }
                other => panic!("{pattern:?} gave {other:?}"),
            }
        }
        for good in [
            "[a\\-]",
            "a[*]",
            "\\101",
            "\\x41",
            "[\\d]",
            "[[:^alpha:]]",
            "[[:a]",
        ] {
            assert!(IgnorePatterns::parse(good).is_ok(), "{good:?}");
        }
        assert!(IgnorePatterns::parse("\\101").unwrap().is_excluded("A"));
        assert!(
            IgnorePatterns::parse("[[:^alpha:]]")
                .unwrap()
                .is_excluded("1")
        );
        assert!(
            !IgnorePatterns::parse("[[:^alpha:]]")
                .unwrap()
                .is_excluded("q")
        );
    }

    #[test]
    fn overlong_lines_fail_like_docker() {
        let fits = "a".repeat(MAX_LINE_BYTES - 1);
        assert!(IgnorePatterns::parse(&format!("x\n{fits}\n")).is_ok());
        let long = "a".repeat(MAX_LINE_BYTES);
        let err = IgnorePatterns::parse(&format!("x\n{long}")).unwrap_err();
        assert!(
            matches!(err, IgnoreError::LineTooLong { line: 2 }),
            "{err:?}"
        );
    }

    #[test]
    fn exclude_values_follow_the_same_rules() {
        let values: Vec<String> = ["*.tmp", "!keep.tmp", "/abs", "", "#literal"]
            .map(String::from)
            .to_vec();
        let patterns = IgnorePatterns::from_patterns(&values).unwrap();
        assert!(patterns.is_excluded("x.tmp"));
        assert!(!patterns.is_excluded("keep.tmp"));
        assert!(patterns.is_excluded("abs/inner"));
        assert!(patterns.is_excluded("#literal"));
        assert!(!patterns.is_excluded("other"));
    }

    #[test]
    fn emptiness() {
        assert!(IgnorePatterns::parse("# only\n\n  \n").unwrap().is_empty());
        assert!(IgnorePatterns::from_patterns(&[]).unwrap().is_empty());
        assert!(!IgnorePatterns::parse("a").unwrap().is_empty());
        assert!(!IgnorePatterns::default().is_excluded("a"));
    }

    #[test]
    fn ignore_file_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path();
        let dockerfile = context.join("Dockerfile");
        assert_eq!(find_ignore_file(context, &dockerfile), None);

        std::fs::create_dir(context.join(".dockerignore")).unwrap();
        assert_eq!(
            find_ignore_file(context, &dockerfile),
            None,
            "a directory is not a file"
        );
        std::fs::remove_dir(context.join(".dockerignore")).unwrap();

        std::fs::write(context.join(".dockerignore"), "a").unwrap();
        assert_eq!(
            find_ignore_file(context, &dockerfile),
            Some(context.join(".dockerignore"))
        );

        let beside = context.join("Dockerfile.dockerignore");
        std::fs::write(&beside, "b").unwrap();
        assert_eq!(find_ignore_file(context, &dockerfile), Some(beside));

        std::fs::create_dir(context.join("build")).unwrap();
        let nested = context.join("build/app.Dockerfile");
        assert_eq!(
            find_ignore_file(context, &nested),
            Some(context.join(".dockerignore"))
        );
        let nested_ignore = context.join("build/app.Dockerfile.dockerignore");
        std::fs::write(&nested_ignore, "c").unwrap();
        assert_eq!(find_ignore_file(context, &nested), Some(nested_ignore));
    }

    /// A small deterministic generator so the fuzz test needs no extra dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn text(&mut self, alphabet: &[char], max: u64) -> String {
            let len = self.next() % (max + 1);
            (0..len)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn random_input_never_panics() {
        let pattern_chars: Vec<char> = "ab/*?[]^!-\\.:{}()$+| \n#é\u{feff}".chars().collect();
        let path_chars: Vec<char> = "ab/.é*[".chars().collect();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut compiled = 0;
        for _ in 0..3000 {
            let text = rng.text(&pattern_chars, 24);
            let values: Vec<String> = text.lines().map(String::from).collect();
            let _ = IgnorePatterns::from_patterns(&values);
            let Ok(patterns) = IgnorePatterns::parse(&text) else {
                continue;
            };
            compiled += 1;
            for _ in 0..8 {
                let path = rng.text(&path_chars, 10);
                let _ = (
                    patterns.is_excluded(&path),
                    patterns.may_include_below(&path),
                );
            }
        }
        assert!(compiled > 300, "only {compiled} random files compiled");
    }

    #[test]
    fn skipping_a_directory_never_loses_an_included_path() {
        let glob_chars: Vec<char> = "ab/*?.[]".chars().collect();
        let names = ["a", "b", "ab", "a.b"];
        let children: Vec<String> = names
            .iter()
            .flat_map(|x| std::iter::once(x.to_string()).chain(names.map(|y| format!("{x}/{y}"))))
            .collect();
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let mut skipped_despite_exceptions = 0;
        for _ in 0..4000 {
            let lines: Vec<String> = (0..1 + rng.next() % 4)
                .map(|_| {
                    let bang = if rng.next().is_multiple_of(2) {
                        "!"
                    } else {
                        ""
                    };
                    let glob = rng.text(&glob_chars, 5);
                    format!("{bang}{}{glob}", names[(rng.next() % 4) as usize])
                })
                .collect();
            let text = lines.join("\n");
            let Ok(patterns) = IgnorePatterns::parse(&text) else {
                continue;
            };
            for dir in &children {
                if !patterns.is_excluded(dir) || patterns.may_include_below(dir) {
                    continue;
                }
                skipped_despite_exceptions += usize::from(text.contains('!'));
                for child in &children {
                    let child = format!("{dir}/{child}");
                    assert!(
                        patterns.is_excluded(&child),
                        "{text:?}: {dir:?} then {child:?}"
                    );
                }
            }
        }
        assert!(
            skipped_despite_exceptions > 200,
            "only {skipped_despite_exceptions} checks"
        );
    }
}
