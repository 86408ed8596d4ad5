//! Tests for typed instructions, on hand-built nodes shaped like BuildKit's parser output.

mod expand;
mod flags;
mod instructions;
mod run;
mod values;

use super::super::diagnostic::{Diagnostic, Position};
use super::super::node::{Heredoc, Node};
use super::{Instruction, parse_instruction};

/// Builds a node the way the parser would for one line: `keyword flags... args...`.
pub(super) struct NodeBuilder {
    node: Node,
    original: Option<String>,
}

/// Starts a node for `keyword` on line 1, column 1.
pub(super) fn node(keyword: &str) -> NodeBuilder {
    NodeBuilder {
        node: Node {
            keyword: keyword.to_string(),
            flags: Vec::new(),
            args: Vec::new(),
            inner: None,
            json: false,
            heredocs: Vec::new(),
            original: String::new(),
            comments: Vec::new(),
            start: Position::new(1, 1),
            end_line: 1,
        },
        original: None,
    }
}

impl NodeBuilder {
    /// Adds flag words (`--from=a`).
    pub(super) fn flags(mut self, flags: &[&str]) -> Self {
        self.node.flags.extend(flags.iter().map(|f| f.to_string()));
        self
    }

    /// Adds argument words.
    pub(super) fn args(mut self, args: &[&str]) -> Self {
        self.node.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Marks the arguments as a decoded JSON array.
    pub(super) fn json(mut self) -> Self {
        self.node.json = true;
        self
    }

    /// Attaches a heredoc body; the node then ends after its terminator line.
    pub(super) fn heredoc(mut self, name: &str, content: &str, expand: bool, chomp: bool) -> Self {
        self.node.heredocs.push(Heredoc {
            name: name.to_string(),
            file_descriptor: 0,
            expand,
            chomp,
            content: content.to_string(),
        });
        self.node.end_line += content.matches('\n').count() + 1;
        self
    }

    /// Sets the trigger node of an ONBUILD.
    pub(super) fn inner(mut self, inner: NodeBuilder) -> Self {
        self.node.inner = Some(Box::new(inner.build()));
        self
    }

    /// Overrides the original text (otherwise the words joined by spaces).
    pub(super) fn original(mut self, original: &str) -> Self {
        self.original = Some(original.to_string());
        self
    }

    /// Moves the instruction to `line`, `column`, spanning `lines` physical lines.
    pub(super) fn at(mut self, line: usize, column: usize, lines: usize) -> Self {
        let extra = self.node.end_line - self.node.start.line;
        self.node.start = Position::new(line, column);
        self.node.end_line = line + lines - 1 + extra;
        self
    }

    /// The finished node.
    pub(super) fn build(mut self) -> Node {
        self.node.original = self.original.take().unwrap_or_else(|| {
            let mut words = vec![self.node.keyword.clone()];
            words.extend(self.node.flags.iter().cloned());
            if let Some(inner) = &self.node.inner {
                words.push(inner.original.clone());
            }
            words.extend(self.node.args.iter().cloned());
            words.join(" ")
        });
        self.node
    }
}

/// Parses a node that must be accepted.
pub(super) fn parse_ok(builder: NodeBuilder) -> Instruction {
    let node = builder.build();
    match parse_instruction(&node) {
        Ok(instruction) => instruction,
        Err(diagnostic) => panic!("{:?} rejected: {}", node.original, diagnostic.message),
    }
}

/// Parses a node that must be rejected, returning the diagnostic.
pub(super) fn parse_err(builder: NodeBuilder) -> Diagnostic {
    let node = builder.build();
    match parse_instruction(&node) {
        Ok(instruction) => panic!("{:?} accepted as {instruction:?}", node.original),
        Err(diagnostic) => diagnostic,
    }
}

/// Asserts that `builder` parses to exactly `expected`.
pub(super) fn check(builder: NodeBuilder, expected: Instruction) {
    assert_eq!(parse_ok(builder), expected);
}

/// One `#[test]` per row: the node must be rejected with exactly the message.
macro_rules! rejects {
    ($($name:ident: $node:expr => $message:expr;)*) => {
        $(
            #[test]
            fn $name() {
                assert_eq!(super::parse_err($node).message, $message);
            }
        )*
    };
}
pub(super) use rejects;

/// A word expander for tests: `$NAME` and `${NAME}` from `vars`, `"` removed, `$BAD` fails.
pub(super) fn expander(vars: &[(&str, &str)]) -> impl FnMut(&str) -> Result<String, String> {
    let mut vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Longest names first, so `$P` does not eat the start of `$PORTS`.
    vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    move |word: &str| {
        if word.contains("$BAD") {
            return Err(format!("cannot expand {word}"));
        }
        let mut out = word.replace('"', "");
        for (name, value) in &vars {
            out = out
                .replace(&format!("${{{name}}}"), value)
                .replace(&format!("${name}"), value);
        }
        Ok(out)
    }
}
