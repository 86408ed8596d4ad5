//! Dockerfile text to raw nodes: directives, continuations, comments and heredocs.
//!
//! This follows BuildKit's parser line for line in behaviour: a logical line is
//! built from physical lines joined at the escape character, comment lines and blank
//! lines inside a continuation are skipped, and heredoc bodies are read after the
//! line that opens them. It never touches the file system and never prints.

use super::diagnostic::{Diagnostic, Position};
use super::expand::{Lexer, NoEnv};
use super::line_parsers::{parse_arguments, split_blanks, split_flags};
use super::node::{Heredoc, Node};

/// The parser directives BuildKit knows; any other `# key=value` ends the directives.
const DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

/// A parser directive found at the top of the file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Directive {
    /// The directive's name, lowercased (`syntax`, `escape`, `check`).
    pub name: String,
    /// Its value as written, surrounding blanks removed.
    pub value: String,
    /// The line it is on.
    pub line: usize,
}

/// What parsing a whole Dockerfile produced.
#[derive(Clone, Debug, Default)]
pub struct Ast {
    /// The instructions in file order.
    pub nodes: Vec<Node>,
    /// The parser directives in effect.
    pub directives: Vec<Directive>,
    /// The escape character in effect after the directives.
    pub escape: char,
    /// Errors and warnings met while parsing.
    pub diagnostics: Vec<Diagnostic>,
}

/// One physical line: its text without the line break, and its 1-based number.
struct Line<'a> {
    text: &'a str,
    raw: &'a str,
    number: usize,
}

/// Splits text into physical lines; each `raw` keeps its `\n`.
fn physical_lines(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut rest = text;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let raw = &rest[..end];
        lines.push(Line {
            text: raw.trim_end_matches(['\r', '\n']),
            raw,
            number,
        });
        rest = &rest[end..];
    }
    lines
}

fn is_comment(text: &str) -> bool {
    text.trim_start().starts_with('#')
}

/// Recognises parser directives until the first line that is not one.
struct DirectiveScanner {
    done: bool,
    found: Vec<Directive>,
}

impl DirectiveScanner {
    /// Looks at one line; returns the directive it holds, or an error for a repeat.
    fn scan(&mut self, text: &str, line: usize) -> Result<Option<&Directive>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(body) = text.strip_prefix('#') else {
            self.done = true;
            return Ok(None);
        };
        let Some((name, value)) = split_directive(body.trim_start()) else {
            self.done = true;
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        if !DIRECTIVES.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.found.iter().any(|d| d.name == name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        self.found.push(Directive { name, value, line });
        Ok(self.found.last())
    }
}

/// Matches `name = value` with a name of letters and digits starting with a letter.
fn split_directive(text: &str) -> Option<(&str, String)> {
    let name_end = text
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(text.len());
    let name = &text[..name_end];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = text[name_end..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value.to_string()))
}

/// Removes a trailing escape character (and blanks after it) that continues the line.
///
/// An escape character preceded by another escape character is literal, as in
/// BuildKit, so `RUN echo \\` ends the instruction.
fn strip_continuation(text: &str, escape: char) -> Option<&str> {
    let trimmed = text.trim_end_matches([' ', '\t']);
    let before = trimmed.strip_suffix(escape)?;
    if before.ends_with(escape) {
        return None;
    }
    Some(before)
}

/// Parses a Dockerfile into nodes plus diagnostics.
pub fn parse(text: &str) -> Ast {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = physical_lines(text);
    let mut parser = Parser {
        escape: '\\',
        directives: DirectiveScanner {
            done: false,
            found: Vec::new(),
        },
        diagnostics: Vec::new(),
    };
    let nodes = parser.run(&lines);
    if nodes.is_empty() && !super::diagnostic::has_errors(&parser.diagnostics) {
        let line = lines.len().max(1);
        parser.diagnostics.push(Diagnostic::error(
            Position::new(line, 1),
            "file with no instructions",
        ));
    }
    Ast {
        nodes,
        directives: parser.directives.found,
        escape: parser.escape,
        diagnostics: parser.diagnostics,
    }
}

struct Parser {
    escape: char,
    directives: DirectiveScanner,
    diagnostics: Vec<Diagnostic>,
}

impl Parser {
    fn run(&mut self, lines: &[Line<'_>]) -> Vec<Node> {
        let mut nodes = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        let mut index = 0;
        while index < lines.len() {
            let line = &lines[index];
            index += 1;
            let text = line.text.trim_start();
            if is_comment(text) {
                let comment = text[1..].trim();
                if comment.is_empty() {
                    comments.clear();
                } else {
                    comments.push(comment.to_string());
                }
            }
            if self.scan_directive(text, line.number) {
                comments.pop();
                continue;
            }
            if is_comment(text) {
                continue;
            }
            let column = line.text[..line.text.len() - text.len()].chars().count() + 1;
            let start = Position::new(line.number, column);
            let (mut logical, mut end) = match strip_continuation(text, self.escape) {
                None if text.is_empty() => continue,
                None => (text.to_string(), true),
                Some(head) => (head.to_string(), false),
            };
            let mut end_line = line.number;
            let mut empty_continuation = false;
            while !end && index < lines.len() {
                let next = &lines[index];
                index += 1;
                end_line = next.number;
                // Directives are long over once an instruction has started, but the
                // scanner still sees the line, as BuildKit's does.
                self.scan_directive(next.text, next.number);
                if is_comment(next.text) {
                    continue;
                }
                if next.text.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                match strip_continuation(next.text, self.escape) {
                    Some(head) => logical.push_str(head),
                    None => {
                        logical.push_str(next.text);
                        end = true;
                    }
                }
            }
            if empty_continuation {
                self.diagnostics.push(Diagnostic::warning(
                    Position::new(end_line, 1),
                    "NoEmptyContinuation",
                    "empty continuation line found: empty continuation lines will become \
                     errors in a future release",
                ));
            }
            let mut node = match self.node_from_line(&logical, start) {
                Ok(node) => node,
                Err(message) => {
                    self.diagnostics
                        .push(Diagnostic::error(start, message).through_line(end_line));
                    comments.clear();
                    continue;
                }
            };
            if can_contain_heredoc(&node) && logical.contains("<<") {
                match self.read_heredocs(&logical, lines, &mut index) {
                    Ok((heredocs, last)) => {
                        node.heredocs = heredocs;
                        end_line = last.unwrap_or(end_line);
                    }
                    Err(message) => {
                        self.diagnostics
                            .push(Diagnostic::error(start, message).through_line(lines.len()));
                        return nodes;
                    }
                }
            }
            node.end_line = end_line;
            node.comments = std::mem::take(&mut comments);
            nodes.push(node);
        }
        nodes
    }

    /// Feeds a line to the directive scanner; true when it was a directive.
    fn scan_directive(&mut self, text: &str, line: usize) -> bool {
        match self.directives.scan(text, line) {
            Ok(Some(directive)) => {
                if directive.name != "escape" {
                    return true;
                }
                match directive.value.as_str() {
                    "\\" => self.escape = '\\',
                    "`" => self.escape = '`',
                    other => {
                        let message =
                            format!("invalid escape token '{other}' does not match ` or \\");
                        self.diagnostics
                            .push(Diagnostic::error(Position::new(line, 1), message));
                        return false;
                    }
                }
                true
            }
            Ok(None) => false,
            Err(message) => {
                self.diagnostics
                    .push(Diagnostic::error(Position::new(line, 1), message));
                false
            }
        }
    }

    /// Builds one node from a logical line: keyword, flags, then the line parser.
    fn node_from_line(&self, line: &str, start: Position) -> Result<Node, String> {
        let trimmed = line.trim();
        let mut parts = split_blanks(trimmed, Some(2)).into_iter();
        let keyword = parts.next().unwrap_or_default();
        let (flags, rest) = match parts.next() {
            Some(rest) => split_flags(&rest, self.escape),
            None => (Vec::new(), String::new()),
        };
        let escape = self.escape;
        let mut inner = |text: &str| self.node_from_line(text, start);
        let parsed = parse_arguments(&keyword, rest.trim(), escape, &mut inner)?;
        Ok(Node {
            keyword,
            flags,
            args: parsed.args,
            inner: parsed.inner,
            json: parsed.json,
            heredocs: Vec::new(),
            original: line.to_string(),
            comments: Vec::new(),
            start,
            end_line: start.line,
        })
    }

    /// Reads the bodies of the heredocs that `line` opens, advancing `index`.
    ///
    /// Returns the heredocs and the number of the last line consumed.
    fn read_heredocs(
        &self,
        line: &str,
        lines: &[Line<'_>],
        index: &mut usize,
    ) -> Result<(Vec<Heredoc>, Option<usize>), String> {
        let mut heredocs = heredocs_in_line(line)?;
        let mut last = None;
        for heredoc in &mut heredocs {
            let mut terminated = false;
            while *index < lines.len() {
                let body = &lines[*index];
                *index += 1;
                last = Some(body.number);
                let candidate = if heredoc.chomp {
                    body.text.trim_start_matches('\t')
                } else {
                    body.text
                };
                if candidate == heredoc.name {
                    terminated = true;
                    break;
                }
                heredoc.content.push_str(body.raw);
            }
            if !terminated {
                return Err("unterminated heredoc".to_string());
            }
        }
        Ok((heredocs, last))
    }
}

/// RUN, COPY and ADD in shell form can open heredocs, also as ONBUILD triggers.
fn can_contain_heredoc(node: &Node) -> bool {
    let node = match (&node.inner, node.command().as_str()) {
        (Some(inner), "onbuild") => inner,
        _ => node,
    };
    matches!(node.command().as_str(), "run" | "copy" | "add") && !node.json
}

/// Finds the heredoc openers (`<<EOF`, `<<-"EOF"`, `3<<EOF`) among a line's words.
///
/// Words are cut as the shell would, keeping quotes and escapes, so a quoted `"<<EOF"`
/// argument is one word that does not start with `<<`.
pub fn heredocs_in_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut lexer = Lexer::new('\\');
    lexer.raw_quotes = true;
    lexer.raw_escapes = true;
    lexer.skip_unset_env = true;
    // BuildKit ignores lexing errors here: a line it cannot cut has no heredocs.
    let words = lexer.process_words(line, &NoEnv).unwrap_or_default();
    let mut heredocs = Vec::new();
    for word in words {
        if let Some(heredoc) = parse_heredoc(&word)? {
            heredocs.push(heredoc);
        }
    }
    Ok(heredocs)
}

/// Parses one word as a heredoc opener, if it is one.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, after),
    };
    let rest = after.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let file_descriptor = if digits == 0 {
        0
    } else {
        word[..digits].parse().unwrap_or(0)
    };
    let mut lexer = Lexer::new('\\');
    lexer.skip_unset_env = true;
    let words = lexer.process_words(rest, &NoEnv).map_err(|e| e.message)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    lexer.raw_quotes = true;
    let raw = lexer.process_words(rest, &NoEnv).map_err(|e| e.message)?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        name: name.clone(),
        file_descriptor,
        expand: quotes(name) == quotes(&raw[0]),
        chomp,
        content: String::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(text: &str) -> Vec<String> {
        parse(text)
            .nodes
            .iter()
            .map(|n| n.original.clone())
            .collect()
    }

    #[test]
    fn continuation_skips_comments_and_blank_lines() {
        let ast = parse("RUN a \\\n# note\n\n  b\nCMD x\n");
        assert_eq!(
            keywords("RUN a \\\n# note\n\n  b\nCMD x\n"),
            ["RUN a   b", "CMD x"]
        );
        assert_eq!(ast.nodes[0].end_line, 4);
        assert_eq!(ast.diagnostics.len(), 1);
        assert_eq!(ast.diagnostics[0].rule, Some("NoEmptyContinuation"));
    }

    #[test]
    fn double_escape_is_not_a_continuation() {
        assert_eq!(keywords("RUN echo \\\\\nCMD x"), ["RUN echo \\\\", "CMD x"]);
    }

    #[test]
    fn continuation_at_end_of_file() {
        assert_eq!(keywords("FROM a\nRUN b \\"), ["FROM a", "RUN b "]);
    }

    #[test]
    fn escape_directive_switches_to_backtick() {
        let ast = parse("# escape=`\nFROM a\nRUN b `\n c\n");
        assert_eq!(ast.escape, '`');
        assert_eq!(ast.nodes[1].original, "RUN b  c");
    }

    #[test]
    fn directives_end_at_first_other_line() {
        let ast = parse("# syntax=docker/dockerfile:1\n# hello\n# escape=`\nFROM a\n");
        assert_eq!(ast.escape, '\\');
        assert_eq!(ast.directives.len(), 1);
    }

    #[test]
    fn repeated_directive_is_an_error() {
        let ast = parse("# escape=\\\n# escape=`\nFROM a\n");
        assert_eq!(ast.diagnostics[0].position, Position::new(2, 1));
    }

    #[test]
    fn heredoc_bodies_are_read() {
        let ast =
            parse("FROM a\nRUN <<EOF bash\necho hi\nEOF\nCOPY <<-'A' <<B /d/\n\tx\n\tA\ny\nB\n");
        let run = &ast.nodes[1];
        assert_eq!(run.heredocs.len(), 1);
        assert_eq!(run.heredocs[0].content, "echo hi\n");
        assert!(run.heredocs[0].expand);
        assert_eq!(run.end_line, 4);
        let copy = &ast.nodes[2];
        assert_eq!(copy.heredocs[0].name, "A");
        assert!(copy.heredocs[0].chomp && !copy.heredocs[0].expand);
        assert_eq!(copy.heredocs[0].content, "\tx\n");
        assert_eq!(copy.heredocs[1].content, "y\n");
    }

    #[test]
    fn unterminated_heredoc_is_an_error() {
        let ast = parse("FROM a\nRUN <<EOF\nhello\n");
        assert_eq!(ast.diagnostics[0].message, "unterminated heredoc");
        assert_eq!(ast.diagnostics[0].position.line, 2);
    }

    #[test]
    fn empty_file_has_no_instructions() {
        let ast = parse("# only a comment\n\n");
        assert_eq!(ast.diagnostics[0].message, "file with no instructions");
    }

    #[test]
    fn column_is_the_keyword_start() {
        let ast = parse("FROM a\n   RUN x\n");
        assert_eq!(ast.nodes[1].start, Position::new(2, 4));
    }
}
