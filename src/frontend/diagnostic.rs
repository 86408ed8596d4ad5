//! Located diagnostics: what the frontend reports instead of printing.

use std::fmt;

use serde::Serialize;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The build could still run, but the Dockerfile is probably not what its author meant.
    Warning,
    /// The Dockerfile cannot be built.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A position in the Dockerfile: 1-based line and column (column counts characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Position {
    /// A position at `line`, `column` (both 1-based).
    pub fn new(line: usize, column: usize) -> Self {
        Position { line, column }
    }
}

/// One finding about a Dockerfile, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the problem starts.
    pub position: Position,
    /// The last line the problem covers (an instruction may span several lines).
    pub end_line: usize,
    /// The rule name for warnings that come from a check (BuildKit's names), if any.
    pub rule: Option<&'static str>,
    /// Lowercase message naming the problem, without a final period.
    pub message: String,
}

impl Diagnostic {
    /// An error at `position`.
    pub fn error(position: Position, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            position,
            end_line: position.line,
            rule: None,
            message: message.into(),
        }
    }

    /// A warning from the check `rule` at `position`.
    pub fn warning(position: Position, rule: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            position,
            end_line: position.line,
            rule: Some(rule),
            message: message.into(),
        }
    }

    /// The same diagnostic covering lines up to `end_line`.
    pub fn through_line(mut self, end_line: usize) -> Self {
        self.end_line = end_line.max(self.position.line);
        self
    }

    /// Renders `FILE:LINE:COL: severity: message`, the form `check` prints.
    pub fn render(&self, file: &str) -> String {
        let rule = match self.rule {
            Some(rule) => format!(" ({rule})"),
            None => String::new(),
        };
        format!(
            "{file}:{}:{}: {}: {}{rule}",
            self.position.line, self.position.column, self.severity, self.message
        )
    }
}

/// True when any diagnostic in `diagnostics` is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.severity == Severity::Error)
}
