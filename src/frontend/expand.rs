//! Dockerfile word expansion (variables, quotes, escapes, word splitting) with BuildKit's rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Variables visible to an expansion.
pub trait Env {
    /// The value of `name`, if set (an empty value is set).
    fn get(&self, name: &str) -> Option<String>;
}

/// An environment in which no variable is set.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _name: &str) -> Option<String> {
        None
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<String> {
        // Searching from the back lets a later definition shadow an earlier one.
        self.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<String> {
        Env::get(self.as_slice(), name)
    }
}

/// Expansion options, mirroring BuildKit's Lex.
#[derive(Clone, Debug)]
pub struct Lexer {
    /// The escape character: `\` by default, or `` ` `` after an `escape` directive.
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave `$UNSET` / `${UNSET...}` text as written instead of expanding it to "".
    pub skip_unset_env: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
}

/// The outcome of expanding one word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded text.
    pub value: String,
    /// Variable names that were looked up and found set.
    pub matched: BTreeSet<String>,
    /// Variable names that were looked up and found unset (for UndefinedVar warnings).
    pub unmatched: BTreeSet<String>,
}

/// A word that cannot be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpandError {
    /// The full message as BuildKit prints it: `failed to process "<word>": <reason>`.
    pub message: String,
    /// The cause alone, e.g. `syntax error: missing '}'`.
    pub reason: String,
}

impl ExpandError {
    fn new(word: &str, reason: String) -> Self {
        let message = format!("failed to process {}: {reason}", go_quote(word));
        Self { message, reason }
    }
}

impl Lexer {
    /// A lexer using `escape` with every option off.
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// Expand one word (quote removal, no word splitting).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<Expansion, ExpandError> {
        let mut expander = Expander::new(self, word, env);
        match expander.read_until(None, self.raw_escapes) {
            Ok((value, _)) => Ok(Expansion {
                value,
                matched: expander.matched,
                unmatched: expander.unmatched,
            }),
            Err(reason) => Err(ExpandError::new(word, reason)),
        }
    }

    /// Expand and split into words as BuildKit's ProcessWords does (used for ENV/LABEL/ARG-style
    /// splitting and heredoc detection).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        let mut expander = Expander::new(self, word, env);
        match expander.read_until(None, self.raw_escapes) {
            Ok((_, words)) => Ok(words),
            Err(reason) => Err(ExpandError::new(word, reason)),
        }
    }
}

/// How Go renders the end-of-input marker when it is formatted as a character.
const END_OF_INPUT: char = '\u{fffd}';
/// Go's text scanner silently drops this at the very start of its input.
const BYTE_ORDER_MARK: char = '\u{feff}';
const MISSING_BRACE: &str = "syntax error: missing '}'";
/// Go grows its stacks on demand, ours are fixed; nesting beyond this (far past anything a real
/// Dockerfile needs) is refused rather than risking a stack overflow.
const MAX_NESTING: usize = 100;

fn spell(operator: Option<char>) -> String {
    operator.unwrap_or(END_OF_INPUT).to_string()
}

fn unsupported_modifier(spelled: &str) -> String {
    format!("unsupported modifier ({spelled}) in substitution")
}

/// Collects the words of one scan. BuildKit shares a single text buffer between the top-level
/// scan and the nested scans of `${name<op>word}` operands and clears it whenever a scan starts,
/// so unsplit text gathered before such an operand is lost from the words. The buffer is passed
/// in from the expander so that quirk (observable in `process_words`) is reproduced.
#[derive(Default)]
struct WordSplitter {
    words: Vec<String>,
    in_word: bool,
}

impl WordSplitter {
    fn push_splittable(&mut self, buffer: &mut String, ch: char) {
        if !ch.is_whitespace() {
            self.push_verbatim(buffer, ch);
        } else if self.in_word && !buffer.is_empty() {
            self.words.push(std::mem::take(buffer));
            self.in_word = false;
        }
    }

    fn push_verbatim(&mut self, buffer: &mut String, ch: char) {
        buffer.push(ch);
        self.in_word = true;
    }

    fn push_splittable_str(&mut self, buffer: &mut String, text: &str) {
        text.chars().for_each(|ch| self.push_splittable(buffer, ch));
    }

    fn push_verbatim_str(&mut self, buffer: &mut String, text: &str) {
        buffer.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self, buffer: &mut String) -> Vec<String> {
        if !buffer.is_empty() {
            self.words.push(std::mem::take(buffer));
        }
        self.words
    }
}

/// The state of one expansion: a cursor over the word plus what lookups found.
struct Expander<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    input: Vec<char>,
    position: usize,
    raw_escapes: bool,
    nesting: usize,
    words_buffer: String,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> Expander<'a> {
    fn new(lexer: &'a Lexer, word: &str, env: &'a dyn Env) -> Self {
        let skip = usize::from(word.starts_with(BYTE_ORDER_MARK));
        Self {
            lexer,
            env,
            input: word.chars().skip(skip).collect(),
            position: 0,
            raw_escapes: lexer.raw_escapes,
            nesting: 0,
            words_buffer: String::new(),
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.input.get(self.position).copied()
    }

    fn advance(&mut self) -> Option<char> {
        let ch = self.peek();
        self.position += usize::from(ch.is_some());
        ch
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = self.env.get(name);
        let seen = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        seen.insert(name.to_owned());
        value
    }

    /// Reads up to `stop` (consumed) or the end of input, returning the text and its words.
    /// `raw_escapes` applies to this scan and everything nested in it, then is restored.
    fn read_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        if self.nesting == MAX_NESTING {
            return Err(format!(
                "substitutions nested more than {MAX_NESTING} levels deep"
            ));
        }
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        self.nesting += 1;
        let outcome = self.read_until_with_current_escapes(stop);
        self.nesting -= 1;
        self.raw_escapes = saved;
        outcome
    }

    fn read_until_with_current_escapes(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), String> {
        let mut text = String::new();
        let mut splitter = WordSplitter::default();
        self.words_buffer.clear();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.position += 1;
                return Ok((text, splitter.finish(&mut self.words_buffer)));
            }
            if let Some(expanded) = self.read_special(ch)? {
                text.push_str(&expanded);
                // Only substitution results are split; quoted text and heredoc markers
                // (including the blanks after `<<`) stay glued to the current word.
                if ch == '$' {
                    splitter.push_splittable_str(&mut self.words_buffer, &expanded);
                } else {
                    splitter.push_verbatim_str(&mut self.words_buffer, &expanded);
                }
                continue;
            }
            self.position += 1;
            if ch != self.lexer.escape {
                splitter.push_splittable(&mut self.words_buffer, ch);
                text.push(ch);
                continue;
            }
            if self.raw_escapes {
                splitter.push_verbatim(&mut self.words_buffer, ch);
                text.push(ch);
            }
            // An escape with nothing after it vanishes; inside `${...}` the scan then fails
            // below as unterminated.
            let Some(escaped) = self.advance() else { break };
            splitter.push_verbatim(&mut self.words_buffer, escaped);
            text.push(escaped);
        }
        match stop {
            Some(stop) => Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            )),
            None => Ok((text, splitter.finish(&mut self.words_buffer))),
        }
    }

    /// Handles a character that starts a construct, or returns `None` for ordinary ones.
    fn read_special(&mut self, ch: char) -> Result<Option<String>, String> {
        let quotes = !self.lexer.skip_process_quotes;
        Ok(Some(match ch {
            '$' => self.expand_dollar()?,
            '<' => self.read_heredoc_marker(),
            '\'' if quotes => self.read_single_quoted()?,
            '"' if quotes => self.read_double_quoted()?,
            _ => return Ok(None),
        }))
    }

    fn read_heredoc_marker(&mut self) -> String {
        self.position += 1;
        if self.peek() != Some('<') {
            return "<".to_owned();
        }
        self.position += 1;
        let mut marker = "<<".to_owned();
        while let Some(blank @ (' ' | '\t' | '\r')) = self.peek() {
            marker.push(blank);
            self.position += 1;
        }
        marker
    }

    fn read_single_quoted(&mut self) -> Result<String, String> {
        let mut text = String::new();
        let open = self.advance();
        if self.lexer.raw_quotes {
            text.extend(open);
        }
        loop {
            match self.advance() {
                None => {
                    return Err("unexpected end of statement while looking for matching \
                                single-quote"
                        .to_owned());
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        text.push('\'');
                    }
                    return Ok(text);
                }
                Some(ch) => text.push(ch),
            }
        }
    }

    fn read_double_quoted(&mut self) -> Result<String, String> {
        let mut text = String::new();
        let open = self.advance();
        if self.lexer.raw_quotes {
            text.extend(open);
        }
        loop {
            let mut ch = match self.peek() {
                None => {
                    return Err("unexpected end of statement while looking for matching \
                                double-quote"
                        .to_owned());
                }
                Some('"') => {
                    self.position += 1;
                    if self.lexer.raw_quotes {
                        text.push('"');
                    }
                    return Ok(text);
                }
                Some('$') => {
                    let expanded = self.expand_dollar()?;
                    text.push_str(&expanded);
                    continue;
                }
                Some(ch) => ch,
            };
            self.position += 1;
            if ch == self.lexer.escape {
                if self.raw_escapes {
                    text.push(ch);
                }
                // Inside double quotes the escape only protects `"`, `$` and itself; before
                // anything else it is literal (and, with raw escapes, therefore doubled).
                match self.peek() {
                    None => continue,
                    Some(next) if next == '"' || next == '$' || next == self.lexer.escape => {
                        ch = next;
                        self.position += 1;
                    }
                    Some(_) => {}
                }
            }
            text.push(ch);
        }
    }

    fn expand_dollar(&mut self) -> Result<String, String> {
        self.position += 1;
        let skip_unset = self.lexer.skip_unset_env;
        if self.peek() != Some('{') {
            let name = self.read_name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.position += 1;
        match self.peek() {
            None => return Err(MISSING_BRACE.to_owned()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_owned()),
            Some(_) => {}
        }
        let name = self.read_name();
        match self.advance() {
            Some('}') => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some('/') => self.expand_replacement(&name),
            Some(':') => {
                // Whatever follows the colon is taken as the operator, valid or not.
                let operator = self.advance();
                self.expand_modifier(&name, operator, true)
            }
            Some(operator @ ('+' | '-' | '?' | '#' | '%')) => {
                self.expand_modifier(&name, Some(operator), false)
            }
            // BuildKit names the end of input as a replacement character here; saying
            // what is missing helps more.
            None => Err("syntax error: missing '}'".to_string()),
            other => Err(unsupported_modifier(&spell(other))),
        }
    }

    /// `${name<op>word}` and `${name:<op>word}`; the word is read before the operator is
    /// validated, which is why unset variables under `skip_unset_env` never fail here.
    fn expand_modifier(
        &mut self,
        name: &str,
        operator: Option<char>,
        null_is_unset: bool,
    ) -> Result<String, String> {
        let colon = if null_is_unset { ":" } else { "" };
        let spelled = format!("{colon}{}", spell(operator));
        let is_trim = matches!(operator, Some('#' | '%'));
        if null_is_unset && is_trim {
            return Err(unsupported_modifier(&spelled));
        }
        // Trim patterns keep their escapes so the pattern compiler can see `\*` and `\?`.
        let word = match self.read_until(Some('}'), is_trim) {
            Ok((word, _)) => word,
            Err(_) if self.peek().is_none() => return Err(MISSING_BRACE.to_owned()),
            Err(reason) => return Err(reason),
        };
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            return Ok(format!("${{{name}{spelled}{word}}}"));
        }
        let is_set = value.is_some();
        let value = value.unwrap_or_default();
        let is_null = !is_set || (null_is_unset && value.is_empty());
        let complaint = |default: &str| {
            let message = if word.is_empty() {
                default
            } else {
                word.as_str()
            };
            Err(format!("{name}: {message}"))
        };
        match operator {
            Some('-') => Ok(if is_null { word.clone() } else { value }),
            Some('+') => Ok(if is_null { String::new() } else { word.clone() }),
            Some('?') if !is_set => complaint("is not allowed to be unset"),
            Some('?') if is_null => complaint("is not allowed to be empty"),
            Some('?') => Ok(value),
            Some(trim @ ('#' | '%')) => {
                let (pattern, longest) = match word.strip_prefix(trim) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                if trim == '%' {
                    trim_suffix(&value, pattern, longest)
                } else {
                    trim_prefix(&value, pattern, longest)
                }
            }
            _ => Err(unsupported_modifier(&spelled)),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn expand_replacement(&mut self, name: &str) -> Result<String, String> {
        let replace_all = self.peek() == Some('/');
        self.position += usize::from(replace_all);
        let pattern = match self.read_until(Some('/'), true) {
            Ok((pattern, _)) => pattern,
            Err(_) if self.peek().is_none() => {
                return Err("syntax error: missing '/' in ${}".to_owned());
            }
            Err(reason) => return Err(reason),
        };
        let replacement = match self.read_until(Some('}'), true) {
            Ok((replacement, _)) => replacement,
            Err(_) if self.peek().is_none() => return Err(MISSING_BRACE.to_owned()),
            Err(reason) => return Err(reason),
        };
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            // BuildKit writes a single slash back even for the replace-all form.
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let text: Vec<char> = value.unwrap_or_default().chars().collect();
        let matcher =
            Pattern::compile(&pattern, true).map_err(|e| invalid_pattern(&pattern, &e))?;
        Ok(if replace_all {
            matcher.replace_all(&text, &replacement)
        } else {
            matcher.replace_first(&text, &replacement)
        })
    }

    /// A variable name, a run of digits (positional parameter) or one special parameter.
    fn read_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_name_digit(ch) {
                while let Some(digit) = self.peek().filter(|&next| is_name_digit(next)) {
                    name.push(digit);
                    self.position += 1;
                }
                return name;
            }
            if name.is_empty() && is_special_parameter(ch) {
                self.position += 1;
                return ch.to_string();
            }
            if !(is_name_letter(ch) || is_name_digit(ch) || ch == '_') {
                break;
            }
            name.push(ch);
            self.position += 1;
        }
        name
    }
}

/// Go's `unicode.IsLetter`, approximated outside ASCII by the Unicode Alphabetic property.
fn is_name_letter(ch: char) -> bool {
    ch.is_ascii_alphabetic() || (!ch.is_ascii() && ch.is_alphabetic())
}

/// Go's `unicode.IsDigit`, approximated outside ASCII by the Unicode Numeric property.
fn is_name_digit(ch: char) -> bool {
    ch.is_ascii_digit() || (!ch.is_ascii() && ch.is_numeric())
}

fn is_special_parameter(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Quotes `text` the way Go's `%q` verb does, so messages and dumps read as BuildKit's.
pub fn go_quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' | '\\' => quoted.extend(['\\', ch]),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            _ if is_go_printable(ch) => quoted.push(ch),
            _ if ch < ' ' || ch == '\u{7f}' => {
                quoted.push_str(&format!("\\x{:02x}", u32::from(ch)))
            }
            _ if u32::from(ch) < 0x10000 => quoted.push_str(&format!("\\u{:04x}", u32::from(ch))),
            _ => quoted.push_str(&format!("\\U{:08x}", u32::from(ch))),
        }
    }
    quoted.push('"');
    quoted
}

/// Go's `strconv.IsPrint` without its tables: controls, separators other than the space,
/// format characters, private use and noncharacters are unprintable.
fn is_go_printable(ch: char) -> bool {
    let hidden = matches!(u32::from(ch),
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f
        | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0xfffe..=0xffff | 0x110bd | 0x110cd
        | 0x13430..=0x1343f | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001
        | 0xe0020..=0xe007f | 0xf0000..=0x10ffff);
    !(hidden || ch.is_control() || (ch.is_whitespace() && ch != ' '))
}

// ---------------------------------------------------------------------------------------------
// Glob patterns for `#`, `%` and `/`.
//
// BuildKit compiles these patterns to Go regular expressions, and this section reproduces what
// those expressions do: `*` is `.*` (lazy for the shortest `#`/`%` forms), `?` is `.`, so neither
// matches a newline; `\` may only protect `*`, `?` and `\` (and is silently dropped before `}`
// and `/`); brackets and every other character are literal; the match chosen is the one a
// backtracking engine finds first at the leftmost start.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GlobToken {
    Literal(char),
    AnyChar,
    AnyRun,
}

struct Pattern {
    tokens: Vec<GlobToken>,
    longest: bool,
}

fn invalid_pattern(pattern: &str, reason: &str) -> String {
    format!("invalid pattern ({pattern}) in substitution: {reason}")
}

impl Pattern {
    fn compile(source: &str, longest: bool) -> Result<Self, String> {
        let mut chars = source
            .strip_prefix(BYTE_ORDER_MARK)
            .unwrap_or(source)
            .chars()
            .peekable();
        let mut tokens = Vec::new();
        while let Some(ch) = chars.next() {
            tokens.push(match ch {
                '*' => GlobToken::AnyRun,
                '?' => GlobToken::AnyChar,
                '\\' if matches!(chars.peek(), Some('}' | '/')) => continue,
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '?' | '\\')) => GlobToken::Literal(escaped),
                    other => {
                        return Err(format!("invalid escape '\\{}'", spell(other)));
                    }
                },
                _ => GlobToken::Literal(ch),
            });
        }
        Ok(Self { tokens, longest })
    }

    /// For every start offset in `text`, where the preferred match starting there ends.
    ///
    /// Without alternation or captures, the backtracking preference from a given token and
    /// offset does not depend on how it was reached, so the table can be filled token by token
    /// from the end: linear in pattern times text, with no recursion to overflow.
    fn match_ends(&self, text: &[char]) -> Vec<Option<usize>> {
        let mut ends: Vec<Option<usize>> = (0..=text.len()).map(Some).collect();
        for token in self.tokens.iter().rev() {
            let mut row = vec![None; text.len() + 1];
            match *token {
                GlobToken::Literal(expected) => {
                    for (offset, &ch) in text.iter().enumerate() {
                        row[offset] = ends[offset + 1].filter(|_| ch == expected);
                    }
                }
                GlobToken::AnyChar => {
                    for (offset, &ch) in text.iter().enumerate() {
                        row[offset] = ends[offset + 1].filter(|_| ch != '\n');
                    }
                }
                GlobToken::AnyRun => {
                    // `choice` is the continuation offset a run starting here prefers: the
                    // farthest viable one when greedy, the nearest when lazy.
                    let mut choice: Option<usize> = None;
                    for offset in (0..=text.len()).rev() {
                        if text.get(offset).is_none_or(|&ch| ch == '\n') {
                            choice = None;
                        }
                        if ends[offset].is_some() && (choice.is_none() || !self.longest) {
                            choice = Some(offset);
                        }
                        row[offset] = choice.and_then(|next| ends[next]);
                    }
                }
            }
            ends = row;
        }
        ends
    }

    fn leftmost(ends: &[Option<usize>], from: usize) -> Option<(usize, usize)> {
        ends.iter()
            .enumerate()
            .skip(from)
            .find_map(|(start, end)| end.map(|end| (start, end)))
    }

    fn replace_first(&self, text: &[char], replacement: &str) -> String {
        let Some((start, end)) = Self::leftmost(&self.match_ends(text), 0) else {
            return text.iter().collect();
        };
        let mut replaced: String = text[..start].iter().collect();
        replaced.push_str(replacement);
        replaced.extend(&text[end..]);
        replaced
    }

    /// Go's `ReplaceAllString`: an empty match right after a previous match is skipped, and
    /// `$` references in the replacement are expanded.
    fn replace_all(&self, text: &[char], replacement: &str) -> String {
        let ends = self.match_ends(text);
        let template: Vec<char> = replacement.chars().collect();
        let mut replaced = String::new();
        let (mut search, mut last_end) = (0, 0);
        while search <= text.len() {
            let Some((start, end)) = Self::leftmost(&ends, search) else {
                break;
            };
            replaced.extend(&text[last_end..start]);
            if end > last_end || start == 0 {
                expand_template(&mut replaced, &template, &text[start..end]);
            }
            last_end = end;
            search = if search < end { end } else { search + 1 };
        }
        replaced.extend(&text[last_end..]);
        replaced
    }
}

/// Expands a Go regexp replacement template. The compiled pattern has no groups, so `$0` or
/// `${0}` yields the match, `$$` a dollar, any other well-formed reference nothing, and a
/// malformed one stays literal.
fn expand_template(out: &mut String, template: &[char], matched: &[char]) {
    let mut index = 0;
    while let Some(&ch) = template.get(index) {
        index += 1;
        if ch != '$' {
            out.push(ch);
            continue;
        }
        if template.get(index) == Some(&'$') {
            out.push('$');
            index += 1;
            continue;
        }
        let braced = template.get(index) == Some(&'{');
        let start = index + usize::from(braced);
        let length = template[start.min(template.len())..]
            .iter()
            .take_while(|&&next| is_name_letter(next) || is_name_digit(next) || next == '_')
            .count();
        let closed = !braced || template.get(start + length) == Some(&'}');
        if length == 0 || !closed {
            out.push('$');
            continue;
        }
        if template[start..start + length] == ['0'] {
            out.extend(matched);
        }
        index = start + length + usize::from(braced);
    }
}

fn trim_prefix(value: &str, pattern: &str, longest: bool) -> Result<String, String> {
    let matcher = Pattern::compile(pattern, longest).map_err(|e| invalid_pattern(pattern, &e))?;
    let text: Vec<char> = value.chars().collect();
    Ok(match matcher.match_ends(&text).first().copied().flatten() {
        Some(end) => text[end..].iter().collect(),
        None => value.to_owned(),
    })
}

/// Suffix trimming runs the prefix matcher over the reversed value and pattern, as BuildKit
/// does; errors therefore quote the reversed pattern.
fn trim_suffix(value: &str, pattern: &str, longest: bool) -> Result<String, String> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reversed, &reverse_pattern(pattern), longest)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern while keeping each `\x` pair in order.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<&[char]> = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let width = if chars[index] == '\\' && index + 1 < chars.len() {
            2
        } else {
            1
        };
        units.push(&chars[index..index + width]);
        index += width;
    }
    units.iter().rev().flat_map(|unit| unit.iter()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DQ: &str = "unexpected end of statement while looking for matching double-quote";
    const SQ: &str = "unexpected end of statement while looking for matching single-quote";
    const BAD: &str = "syntax error: bad substitution";
    const BRACE: &str = "syntax error: missing '}'";
    const NONE: &[&str] = &[];
    const BASE: &[&str] = &["PWD=/home", "SHELL=bash", "NULL=", "KOREAN=한국어"];
    const XY: &[&str] = &["F=xxyy"];
    const SP: &[&str] = &["SP=x  y"];
    const AB: &[&str] = &["F=ab"];

    /// Mode letters: `` ` `` backtick escape, `q` raw quotes, `e` raw escapes, `s` skip unset
    /// variables, `p` skip quote processing.
    type Text = &'static str;
    type Entries = &'static [&'static str];
    type WordCase = (Text, Text, Entries, Result<Text, Text>);
    type WordsCase = (Text, Text, Entries, Result<&'static [Text], Text>);

    #[rustfmt::skip]
    const WORD_CASES: &[WordCase] = &[
        // Quotes and escapes.
        ("", "hello", NONE, Ok("hello")),
        ("", "he'll'o", NONE, Ok("hello")),
        ("", r#"he"ll"o"#, NONE, Ok("hello")),
        ("", "'a  b'", NONE, Ok("a  b")),
        ("", r#""a'b""#, NONE, Ok("a'b")),
        ("", r#"'a"b'"#, NONE, Ok(r#"a"b"#)),
        ("", r"a\ b", NONE, Ok("a b")),
        ("", r"a\\b", NONE, Ok(r"a\b")),
        ("", r"a\tb", NONE, Ok("atb")),
        ("", r#""a\tb""#, NONE, Ok(r"a\tb")),
        ("", r#""a\\b""#, NONE, Ok(r"a\b")),
        ("", r#""a\"b""#, NONE, Ok(r#"a"b"#)),
        ("", r#""a\$PWD""#, BASE, Ok("a$PWD")),
        ("", r"'a\b'", NONE, Ok(r"a\b")),
        ("", r"'it'\''s'", NONE, Ok("it's")),
        ("", r"a\'b", NONE, Ok("a'b")),
        ("", r"end\", NONE, Ok("end")),
        ("", r"end\\", NONE, Ok(r"end\")),
        ("", r#""""#, NONE, Ok("")),
        ("", "'$PWD'", BASE, Ok("$PWD")),
        ("", r#""$PWD""#, BASE, Ok("/home")),
        ("", r#""'$PWD'""#, BASE, Ok("'/home'")),
        ("", "a\nb", NONE, Ok("a\nb")),
        ("", r#""x"#, NONE, Err(DQ)),
        ("", r#""x\"#, NONE, Err(DQ)),
        ("", r#""x\""#, NONE, Err(DQ)),
        ("", "'x", NONE, Err(SQ)),
        ("", r"a\'b'", NONE, Err(SQ)),
        ("", r"'x\'", NONE, Ok(r"x\")),
        // Plain references, positional and special parameters.
        ("", "$PWD", BASE, Ok("/home")),
        ("", "${PWD}x", BASE, Ok("/homex")),
        ("", "$PWDx", BASE, Ok("")),
        ("", "$PWD.x", BASE, Ok("/home.x")),
        ("", "$", NONE, Ok("$")),
        ("", "a$", NONE, Ok("a$")),
        ("", "$.x", NONE, Ok("$.x")),
        ("", "$ x", NONE, Ok("$ x")),
        ("", r"\$PWD", BASE, Ok("$PWD")),
        ("", r"\\$PWD", BASE, Ok(r"\/home")),
        ("", "$KOREAN!", BASE, Ok("한국어!")),
        ("", "${한}", &["한=k"], Ok("k")),
        ("", "$_a1-", &["_a1=v"], Ok("v-")),
        ("", "${PWD}}", BASE, Ok("/home}")),
        ("", "$1x", NONE, Ok("x")),
        ("", "$123", &["123=n"], Ok("n")),
        ("", "$0a", NONE, Ok("a")),
        ("", "$@x", NONE, Ok("x")),
        ("", "$$", NONE, Ok("")),
        ("", "$*$#$?$-$!", NONE, Ok("")),
        ("", "${#}", NONE, Ok("")),
        ("", "${1:-one}", NONE, Ok("one")),
        ("", "${@:+at}", NONE, Ok("")),
        ("", "${-:-dash}", NONE, Ok("dash")),
        ("", "\u{feff}$PWD", BASE, Ok("/home")),
        ("", "a\u{feff}b", NONE, Ok("a\u{feff}b")),
        // Malformed braces and operators.
        ("", "${", NONE, Err(BRACE)),
        ("", "${PWD", BASE, Err(BRACE)),
        ("", "${}", NONE, Err(BAD)),
        ("", "${:}", NONE, Err(BAD)),
        ("", "${:-x}", NONE, Err(BAD)),
        ("", "${{PWD}", NONE, Err(BAD)),
        ("", "${.}", NONE, Err("unsupported modifier (.) in substitution")),
        ("", "${ }", NONE, Err("unsupported modifier ( ) in substitution")),
        ("", "${#PWD}", BASE, Err("unsupported modifier (P) in substitution")),
        ("", "${PWD=x}", BASE, Err("unsupported modifier (=) in substitution")),
        ("", "${U:=x}", NONE, Err("unsupported modifier (:=) in substitution")),
        ("", "${U:", NONE, Err(BRACE)),
        ("", "${PWD:}", BASE, Err(BRACE)),
        ("", "${PWD:}}", BASE, Err("unsupported modifier (:}) in substitution")),
        ("", "${U:-x", NONE, Err(BRACE)),
        ("", "${U:-'x}", NONE, Err(BRACE)),
        ("", "${U:-${.}}", NONE, Err("unsupported modifier (.) in substitution")),
        ("", "${X:#a}", NONE, Err("unsupported modifier (:#) in substitution")),
        ("", "${X:%%a}", NONE, Err("unsupported modifier (:%) in substitution")),
        // Defaults and alternatives.
        ("", "${NULL:-d}", BASE, Ok("d")),
        ("", "${NULL-d}", BASE, Ok("")),
        ("", "${U-d}", NONE, Ok("d")),
        ("", "${PWD:-d}", BASE, Ok("/home")),
        ("", "${NULL:+a}", BASE, Ok("")),
        ("", "${NULL+a}", BASE, Ok("a")),
        ("", "${U+a}", NONE, Ok("")),
        ("", "${PWD:+a}", BASE, Ok("a")),
        ("", "${U:-$PWD}", BASE, Ok("/home")),
        ("", "${U:-${NULL:-in}}", BASE, Ok("in")),
        ("", "${PWD:+${SHELL}!}", BASE, Ok("bash!")),
        ("", "${U:-a b}", NONE, Ok("a b")),
        ("", "${U:-'a}b'}", NONE, Ok("a}b")),
        ("", r#"${U:-"}"}"#, NONE, Ok("}")),
        ("", r"${U:-a\}b}", NONE, Ok("a}b")),
        ("", r"${U:-\$PWD}", BASE, Ok("$PWD")),
        ("", "${U:-{x}y", NONE, Ok("{xy")),
        ("", r#""${U:-a b}""#, NONE, Ok("a b")),
        // Required values.
        ("", "${U?}", NONE, Err("U: is not allowed to be unset")),
        ("", "${U:?}", NONE, Err("U: is not allowed to be unset")),
        ("", "${NULL:?}", BASE, Err("NULL: is not allowed to be empty")),
        ("", "${NULL?}", BASE, Ok("")),
        ("", "${U?need $PWD}", BASE, Err("U: need /home")),
        ("", "${NULL:?must set}", BASE, Err("NULL: must set")),
        ("", "${PWD:?x}", BASE, Ok("/home")),
        ("", "a${U:-${V?gone}}", NONE, Err("V: gone")),
        // Prefix and suffix trimming.
        ("", "${F#x}", XY, Ok("xyy")),
        ("", "${F##*x}", XY, Ok("yy")),
        ("", "${F#*x}", XY, Ok("xyy")),
        ("", "${F#*x*y}", XY, Ok("y")),
        ("", "${F%y}", XY, Ok("xxy")),
        ("", "${F%%y*}", XY, Ok("xx")),
        ("", "${F%*y}", XY, Ok("xxy")),
        ("", "${F%x*}", XY, Ok("x")),
        ("", "${F#z}", XY, Ok("xxyy")),
        ("", "${F#}", XY, Ok("xxyy")),
        ("", "${F##}", XY, Ok("xxyy")),
        ("", "${F#?}", XY, Ok("xyy")),
        ("", "${F#*}", XY, Ok("xxyy")),
        ("", "${F##*}", XY, Ok("")),
        ("", "${F%%*}", XY, Ok("")),
        ("", "${U#x}", NONE, Ok("")),
        ("", r"${F#\*}", &["F=*a"], Ok("a")),
        ("", r"${F%\}}", &["F=a}"], Ok("a")),
        ("", r"${F#\\}", &[r"F=\x"], Ok("x")),
        ("", r"${F#\a}", AB, Err(r"invalid pattern (\a) in substitution: invalid escape '\a'")),
        ("", r"${F%a\b}", AB, Err(r"invalid pattern (\ba) in substitution: invalid escape '\b'")),
        ("", r"${F#a\}", &["F=ab"], Err(BRACE)),
        ("", "${F#[a]}", &["F=[a]b"], Ok("b")),
        ("", "${F#a.c}", &["F=abc"], Ok("abc")),
        ("", r#"${F#"*"}"#, &["F=*a"], Ok("*a")),
        ("", "${F#'#'}", &["F=#x"], Ok("#x")),
        ("", "${F##$P}", &["F=xaxb", "P=x*"], Ok("")),
        ("", "${F#$P}", &["F=xaxb", "P=x*"], Ok("axb")),
        ("", "${F##*}", &["F=a\nb"], Ok("\nb")),
        ("", "${F#?}", &["F=\nb"], Ok("\nb")),
        ("", "${KOREAN#한}", BASE, Ok("국어")),
        ("", "${KOREAN%?}", BASE, Ok("한국")),
        ("", "${F#\u{feff}a}", &["F=ab"], Ok("b")),
        // Replacement.
        ("", "${F/x/-}", XY, Ok("-xyy")),
        ("", "${F//x/-}", XY, Ok("--yy")),
        ("", "${F//x}", XY, Err("syntax error: missing '/' in ${}")),
        ("", "${F/x/-", XY, Err(BRACE)),
        ("", "${F//?/.}", &["F=ab"], Ok("..")),
        ("", "${F/*/z}", &["F=ab"], Ok("z")),
        ("", "${F//*/z}", &["F=ab"], Ok("z")),
        ("", "${F/b*/X}", &["F=abcb"], Ok("aX")),
        ("", "${F//a/$R}", &["F=banana", "R=$0$0"], Ok("baanaanaa")),
        ("", "${F/a/$R}", &["F=banana", "R=$0$0"], Ok("b$0$0nana")),
        ("", "${F//a/$R}", &["F=aa", "R=<${0}|$1|$$|$>"], Ok("<a||$|$><a||$|$>")),
        ("", "${F//$N/.}", &["F=ab", "N="], Ok(".a.b.")),
        ("", "${F/$N/.}", &["F=ab", "N="], Ok(".ab")),
        ("", r"${F//\//\/}", &["F=/a/b"], Ok(r"\/a\/b")),
        ("", "${F/#a/z}", &["F=x#ab"], Ok("xzb")),
        ("", r"${F/a\*/z}", &["F=a*b"], Ok("zb")),
        ("", "${F/[/z}", &["F=a[b"], Ok("azb")),
        ("", "${U/a/b}", NONE, Ok("")),
        ("", "${F/*/z}", &["F=a\nb"], Ok("z\nb")),
        ("", r"${F/\x/y}", AB, Err(r"invalid pattern (\x) in substitution: invalid escape '\x'")),
        ("", "${F/'/'/_}", &["F=a/b"], Ok("a_b")),
        ("", "${F//b/$PWD}", &["F=abc", "PWD=/h"], Ok("a/hc")),
        // Backtick as the escape character.
        ("`", "a`$PWD", BASE, Ok("a$PWD")),
        ("`", r"C:\path\x", NONE, Ok(r"C:\path\x")),
        ("`", r#""a`"b""#, NONE, Ok(r#"a"b"#)),
        ("`", r#""a\tb""#, NONE, Ok(r"a\tb")),
        ("`", "a``b", NONE, Ok("a`b")),
        ("`", "end`", NONE, Ok("end")),
        ("`", r#""x`$PWD""#, BASE, Ok("x$PWD")),
        ("`", r#""x\$PWD""#, BASE, Ok(r"x\/home")),
        ("`", "a` b", NONE, Ok("a b")),
        ("`", "${U:-a`}b}", NONE, Ok("a}b")),
        ("`", r"${F#\\}", &[r"F=\x"], Ok("x")),
        ("`", "${F#`*}", &["F=*a"], Ok("*a")),
        // Raw quotes and raw escapes.
        ("q", r#"'a'"b""#, NONE, Ok(r#"'a'"b""#)),
        ("q", r#""$PWD""#, BASE, Ok(r#""/home""#)),
        ("q", r#"${U:-"d"}"#, NONE, Ok(r#""d""#)),
        ("q", r#"'"'"#, NONE, Ok(r#"'"'"#)),
        ("e", r"a\ b", NONE, Ok(r"a\ b")),
        ("e", r"a\", NONE, Ok(r"a\")),
        ("e", r#""a\"b""#, NONE, Ok(r#"a\"b"#)),
        ("e", r#""a\tb""#, NONE, Ok(r"a\\tb")),
        ("e", r"${U:-a\b}", NONE, Ok("ab")),
        ("e", r"\$PWD", BASE, Ok(r"\$PWD")),
        ("qe", r#""a\"b" 'c'"#, NONE, Ok(r#""a\"b" 'c'"#)),
        // Unset variables left as written.
        ("s", "$U", NONE, Ok("$U")),
        ("s", "${U}", NONE, Ok("${U}")),
        ("s", "${U:-x}", NONE, Ok("${U:-x}")),
        ("s", "${U//a/b}", NONE, Ok("${U/a/b}")),
        ("s", "${U:=x}", NONE, Ok("${U:=x}")),
        ("s", "$PWD$U", BASE, Ok("/home$U")),
        ("s", "${U:?m}", NONE, Ok("${U:?m}")),
        ("s", "${NULL:-d}", BASE, Ok("d")),
        ("s", r#"${U:-"q"}"#, NONE, Ok("${U:-q}")),
        ("s", "${PWD:=x}", BASE, Err("unsupported modifier (:=) in substitution")),
        ("s", "${U:#x}", NONE, Err("unsupported modifier (:#) in substitution")),
        ("s", "$1", NONE, Ok("$1")),
        ("qs", r#""$U""#, NONE, Ok(r#""$U""#)),
        // Quotes as ordinary characters.
        ("p", "'$PWD'", BASE, Ok("'/home'")),
        ("p", r#""a b""#, NONE, Ok(r#""a b""#)),
        ("p", "it's", NONE, Ok("it's")),
        ("p", r"\'", NONE, Ok("'")),
    ];

    #[rustfmt::skip]
    const WORDS_CASES: &[WordsCase] = &[
        ("", "a b  c", NONE, Ok(&["a", "b", "c"])),
        ("", "  lead trail  ", NONE, Ok(&["lead", "trail"])),
        ("", "a\tb\nc", NONE, Ok(&["a", "b", "c"])),
        ("", "a\u{a0}b", NONE, Ok(&["a", "b"])),
        ("", r#""a b" c"#, NONE, Ok(&["a b", "c"])),
        ("", r"a\ b", NONE, Ok(&["a b"])),
        ("", "$SP", SP, Ok(&["x", "y"])),
        ("", r#""$SP""#, SP, Ok(&["x  y"])),
        ("", "a${SP}b", SP, Ok(&["ax", "yb"])),
        ("", "a'${SP}'b", SP, Ok(&["a${SP}b"])),
        ("", r#""""#, NONE, Ok(&[])),
        ("", r#"a "" b"#, NONE, Ok(&["a", "b"])),
        ("", "''x", NONE, Ok(&["x"])),
        ("", r#"'a'"b"c"#, NONE, Ok(&["abc"])),
        ("", "$1 $@ x", NONE, Ok(&["x"])),
        ("", "${U:-a b}", NONE, Ok(&["a", "b"])),
        ("", "x ${U:-a}", NONE, Ok(&["x", "a"])),
        // BuildKit clears its shared word buffer when a nested word starts, losing "x".
        ("", "x${U:-a}", NONE, Ok(&["a"])),
        ("", r#"x"${U:-a}""#, NONE, Ok(&["a"])),
        ("", "<<EOF", NONE, Ok(&["<<EOF"])),
        ("", "cat << EOF", NONE, Ok(&["cat", "<< EOF"])),
        ("", "a<b <c", NONE, Ok(&["a<b", "<c"])),
        ("", r#"<<-"EOF""#, NONE, Ok(&["<<-EOF"])),
        ("q", r#"<<-"EOF""#, NONE, Ok(&[r#"<<-"EOF""#])),
        ("qes", r#"RUN <<"A" <<\B $X"#, NONE, Ok(&["RUN", r#"<<"A""#, r"<<\B", "$X"])),
        ("", r#"a "b"#, NONE, Err(DQ)),
    ];

    fn env_of(entries: &[&str]) -> Vec<(String, String)> {
        let pair = |entry: &&str| {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            (key.to_owned(), value.to_owned())
        };
        entries.iter().map(pair).collect()
    }

    fn lexer_for(mode: &str) -> Lexer {
        let mut lexer = Lexer::new(if mode.contains('`') { '`' } else { '\\' });
        lexer.raw_quotes = mode.contains('q');
        lexer.raw_escapes = mode.contains('e');
        lexer.skip_unset_env = mode.contains('s');
        lexer.skip_process_quotes = mode.contains('p');
        lexer
    }

    fn check(lexer: &Lexer, input: &str, env: &[&str], expected: Result<&str, &str>) {
        let outcome = lexer.process_word(input, &env_of(env));
        let outcome = outcome
            .map(|expansion| expansion.value)
            .map_err(|error| error.reason);
        assert_eq!(
            outcome.as_deref().map_err(String::as_str),
            expected,
            "{input:?} {lexer:?}"
        );
    }

    #[test]
    fn words_expand_like_buildkit() {
        for &(mode, input, env, expected) in WORD_CASES {
            check(&lexer_for(mode), input, env, expected);
        }
    }

    #[test]
    fn words_split_like_buildkit() {
        for &(mode, input, env, expected) in WORDS_CASES {
            let outcome = lexer_for(mode).process_words(input, &env_of(env));
            let outcome = outcome.map_err(|error| error.reason);
            let expected = expected.map(|words| words.iter().map(|w| w.to_string()).collect());
            assert_eq!(
                outcome,
                expected.map_err(str::to_owned),
                "{input:?} in mode {mode:?}"
            );
        }
    }

    #[test]
    fn lookups_are_recorded() {
        #[rustfmt::skip]
        let cases: &[(&str, &[&str], &str, &str)] = &[
            ("x", &["D=d"], "", ""),
            ("x ${UNUSED}", &["D=d"], "", "UNUSED"),
            ("${FOO} $BAR ${BAZ:-z}", &["FOO=1"], "FOO", "BAR BAZ"),
            ("$1 $@ $", NONE, "", "1 @"),
            ("${A:-$B}", &["A=a"], "A", "B"),
            (r#"'$Q' "$R""#, &["R=r"], "R", ""),
            ("${FOO#$BAR}", &["FOO=xxyy", "BAR=x"], "BAR FOO", ""),
            ("${FOO-a} ${BAR-b} ${BAZ-c}", &["FOO=x", "BAR="], "BAR FOO", "BAZ"),
            ("${X/$N/$R}", &["X=ab", "N=a"], "N X", "R"),
            (r"\$ESCAPED", NONE, "", ""),
        ];
        let names = |list: &str| list.split_whitespace().map(str::to_owned).collect();
        for &(input, env, matched, unmatched) in cases {
            let expansion = Lexer::new('\\')
                .process_word(input, &env_of(env))
                .expect(input);
            assert_eq!(expansion.matched, names(matched), "{input:?}");
            assert_eq!(expansion.unmatched, names(unmatched), "{input:?}");
        }
    }

    #[test]
    fn errors_carry_buildkit_wrapping() {
        let error = Lexer::new('\\')
            .process_word("he${PWD", &NoEnv)
            .unwrap_err();
        let expected = "failed to process \"he${PWD\": syntax error: missing '}'";
        assert_eq!(error.to_string(), expected);
        let error = Lexer::new('\\').process_words("\"x\t", &NoEnv).unwrap_err();
        assert_eq!(error.message, format!(r#"failed to process "\"x\t": {DQ}"#));
        assert_eq!(
            go_quote("\u{1}\u{7f}é\u{a0}\u{200b}\u{10ffff}"),
            r#""\x01\x7fé\u00a0\u200b\U0010ffff""#
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let nested = |depth: usize| format!("{}x{}", "${a:-\"".repeat(depth), "\"}".repeat(depth));
        let lexer = Lexer::new('\\');
        let value = lexer.process_word(&nested(99), &NoEnv).map(|e| e.value);
        assert_eq!(value, Ok("x".to_owned()));
        let too_deep = "substitutions nested more than 100 levels deep";
        assert_eq!(
            lexer
                .process_word(&nested(5000), &NoEnv)
                .unwrap_err()
                .reason,
            too_deep
        );
        let unclosed = "${a:-".repeat(5000);
        assert_eq!(
            lexer.process_words(&unclosed, &NoEnv).unwrap_err().reason,
            too_deep
        );
    }

    #[test]
    fn environments_resolve_names() {
        let pairs = env_of(&["A=1", "B=", "A=2"]);
        assert_eq!(Env::get(&pairs, "A"), Some("2".to_owned()));
        assert_eq!(Env::get(pairs.as_slice(), "B"), Some(String::new()));
        let map: HashMap<String, String> = pairs.iter().cloned().collect();
        let tree: BTreeMap<String, String> = pairs.iter().cloned().collect();
        assert_eq!(Env::get(&map, "A"), Some("2".to_owned()));
        assert_eq!(Env::get(&tree, "C"), None);
        assert_eq!(NoEnv.get("A"), None);
    }

    /// Runs BuildKit's own case files when a checkout is present (never in CI).
    #[test]
    fn buildkit_case_files_pass() {
        let directory = std::path::Path::new("/tmp/bk/frontend/dockerfile/shell");
        if !directory.is_dir() {
            return;
        }
        let read = |name: &str| std::fs::read_to_string(directory.join(name)).expect(name);
        let lexer = Lexer::new('\\');
        let (mut failures, mut ran) = (Vec::new(), 0);
        let env = env_of(&["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
        for line in read("envVarTest")
            .lines()
            .filter(|line| !line.starts_with('#'))
        {
            let fields: Vec<&str> = line.trim().split('|').map(str::trim).collect();
            let [platform, source, expected] = fields[..] else {
                continue;
            };
            if platform == "W" {
                continue;
            }
            ran += 1;
            match (lexer.process_word(source, &env), expected) {
                (Err(_), "error") => {}
                (Ok(expansion), _) if expansion.value == expected => {}
                (outcome, _) => failures.push(format!("{source:?}: {outcome:?} != {expected:?}")),
            }
        }
        let mut entries: Vec<String> = Vec::new();
        for line in read("wordsTest")
            .lines()
            .filter(|line| !line.starts_with('#'))
        {
            if let Some(entry) = line.strip_prefix("ENV ") {
                entries.push(entry.trim_start_matches(' ').to_owned());
                continue;
            }
            let Some((source, expected)) = line.split_once('|') else {
                continue;
            };
            let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
            ran += 1;
            let env = env_of(&entries.iter().map(String::as_str).collect::<Vec<_>>());
            let words = lexer
                .process_words(source.trim(), &env)
                .unwrap_or_else(|_| vec!["error".into()]);
            if words != expected {
                failures.push(format!("{source:?}: {words:?} != {expected:?}"));
            }
        }
        // 228 Unix cases in envVarTest plus 24 in wordsTest at the time of writing.
        assert!(
            ran >= 250 && failures.is_empty(),
            "{ran} cases run, failed: {failures:#?}"
        );
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let alphabet: Vec<char> = "${}:-+?#%/\\'\"`ab1 \n<*[é".chars().collect();
        let env = env_of(&["a=ab*", "b=", "ab=x y", "1=$0"]);
        let lexers = [
            lexer_for(""),
            lexer_for("`"),
            lexer_for("qes"),
            lexer_for("p"),
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..4000 {
            let length = next() % 24;
            let input: String = (0..length)
                .map(|_| alphabet[next() as usize % alphabet.len()])
                .collect();
            for lexer in &lexers {
                let word = lexer.process_word(&input, &env);
                let words = lexer.process_words(&input, &env);
                assert_eq!(word.err(), words.err(), "{input:?}");
            }
        }
    }
}
