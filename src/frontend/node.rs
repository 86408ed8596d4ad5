//! The raw syntax tree: one node per instruction, as BuildKit's parser produces it.

use serde::Serialize;

use super::diagnostic::Position;

/// A heredoc attached to an instruction (`RUN <<EOF`, `COPY <<EOF /dst`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u32,
    /// False when the delimiter was quoted: the content is then taken literally.
    pub expand: bool,
    /// True for `<<-`: leading tabs are stripped from content lines and the terminator.
    pub chomp: bool,
    /// The body, every line with its newline, without the terminator line.
    pub content: String,
}

/// One instruction of a Dockerfile, before any typing or expansion.
///
/// This mirrors BuildKit's parser node: the instruction word, the `--flags` that
/// precede its arguments, and the arguments as the instruction's line parser split
/// them (JSON arrays decoded, `ENV`/`LABEL` pairs as key, value, separator triples).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The instruction word as written (`run`, `COPY`); compare lowercased.
    pub keyword: String,
    /// Flags as written before the arguments, quotes removed (`--from=build`).
    pub flags: Vec<String>,
    /// The arguments as the instruction's line parser produced them.
    pub args: Vec<String>,
    /// For `ONBUILD`, the trigger instruction.
    pub inner: Option<Box<Node>>,
    /// True when the arguments were a JSON string array (exec form).
    pub json: bool,
    /// Heredocs in the order they appear on the instruction's line.
    pub heredocs: Vec<Heredoc>,
    /// The logical line after joining continuations and dropping comment lines.
    pub original: String,
    /// Comment lines directly above the instruction, `#` and surrounding space removed.
    pub comments: Vec<String>,
    /// Where the instruction word starts.
    pub start: Position,
    /// The last line of the instruction, heredoc bodies included.
    pub end_line: usize,
}

impl Node {
    /// The instruction word lowercased (`from`, `run`, ...).
    pub fn command(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }
}

impl Node {
    /// Renders the node as BuildKit's parser dump does (`(copy ["--from=a"] "x" "y")`
    /// without the parentheses), which makes parses comparable with BuildKit's.
    pub fn dump(&self) -> String {
        use super::expand::go_quote;
        let mut out = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            out.push_str(&format!(" [{}]", flags.join(" ")));
        }
        if let Some(inner) = &self.inner {
            out.push_str(&format!(" ({})", inner.dump()));
        }
        for arg in &self.args {
            out.push(' ');
            out.push_str(&go_quote(arg));
        }
        out
    }
}
