//! The Dockerfile frontend: text to typed instructions plus located diagnostics.
//!
//! The pipeline inside follows BuildKit's: [`parser`] cuts the text into raw
//! [`node::Node`]s (directives, continuations, heredocs, per-instruction argument
//! splitting), [`instructions`] types them, and [`expand`] implements the shell-like
//! word expansion later stages apply. Nothing here touches the file system or prints:
//! every finding is a [`Diagnostic`] returned to the caller.

pub mod diagnostic;
pub mod expand;
pub mod instructions;
mod line_parsers;
pub mod lint;
pub mod node;
pub mod parser;

pub use diagnostic::{Diagnostic, Position, Severity};
pub use expand::go_quote;
pub use instructions::Instruction;
pub use node::{Heredoc, Node};
pub use parser::Directive;

/// One typed instruction with the raw node it came from (location, original text).
#[derive(Clone, Debug)]
pub struct Located {
    /// The typed instruction.
    pub instruction: Instruction,
    /// The node it was typed from.
    pub node: Node,
}

/// A parsed and typed Dockerfile.
#[derive(Clone, Debug, Default)]
pub struct Dockerfile {
    /// The parser directives at the top of the file.
    pub directives: Vec<Directive>,
    /// The escape character in effect (`\` or `` ` ``).
    pub escape: char,
    /// Every instruction that typed cleanly, in file order.
    pub instructions: Vec<Located>,
}

impl Dockerfile {
    /// The value of parser directive `name`, if present.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }
}

/// Parses and types `text`; instructions that fail to type are left out and reported.
///
/// The returned diagnostics are in file order. The Dockerfile is usable for planning
/// only when no diagnostic is an error.
pub fn parse(text: &str) -> (Dockerfile, Vec<Diagnostic>) {
    let ast = parser::parse(text);
    let mut diagnostics = ast.diagnostics;
    let mut located = Vec::with_capacity(ast.nodes.len());
    for node in ast.nodes {
        match instructions::parse_instruction(&node) {
            Ok(instruction) => located.push(Located { instruction, node }),
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
    }
    diagnostics.sort_by_key(|d| (d.position.line, d.position.column));
    let dockerfile = Dockerfile {
        directives: ast.directives,
        escape: ast.escape,
        instructions: located,
    };
    (dockerfile, diagnostics)
}
