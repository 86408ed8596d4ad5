//! Workflow commands the runner reads from the step's output: masks, log groups and
//! file annotations, with the runner's escaping, and the [`Masker`] that registers
//! secrets before anything else is printed.

use std::collections::BTreeSet;
use std::io::{self, Write};

use crate::action::inputs::{ActionInputs, Secret};

/// Escapes a command's message: `%`, `\r` and `\n` as the runner unescapes them.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command property's value: as [`escape_data`], and also `:` and `,`,
/// which would otherwise end the value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::group::TITLE`: starts a collapsible log group.
pub fn group(title: &str) -> String {
    format!("::group::{}", escape_data(title))
}

/// `::endgroup::`: ends the current log group.
pub fn end_group() -> String {
    "::endgroup::".to_string()
}

/// `::add-mask::VALUE`: the runner replaces the value with `***` in every later line.
pub fn add_mask(value: &str) -> String {
    format!("::add-mask::{}", escape_data(value))
}

/// The severity of a file annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `::error`: fails nothing by itself, shows red.
    Error,
    /// `::warning`.
    Warning,
    /// `::notice`.
    Notice,
}

/// An annotation on a file and line, such as a Dockerfile diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAnnotation {
    /// The severity.
    pub severity: Severity,
    /// The message shown.
    pub message: String,
    /// The file, relative to the workspace, if the annotation is on one.
    pub file: Option<String>,
    /// The 1-based line.
    pub line: Option<u32>,
    /// The last line of a range.
    pub end_line: Option<u32>,
    /// The 1-based column.
    pub column: Option<u32>,
    /// The last column of a range.
    pub end_column: Option<u32>,
    /// A title shown above the message.
    pub title: Option<String>,
}

impl FileAnnotation {
    /// An annotation with a message and nothing else set.
    pub fn new(severity: Severity, message: impl Into<String>) -> FileAnnotation {
        FileAnnotation {
            severity,
            message: message.into(),
            file: None,
            line: None,
            end_line: None,
            column: None,
            end_column: None,
            title: None,
        }
    }

    /// The command line: `::error file=F,line=L,col=C,title=T::message`.
    pub fn to_command(&self) -> String {
        let name = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        };
        let mut properties = Vec::new();
        if let Some(file) = &self.file {
            properties.push(format!("file={}", escape_property(file)));
        }
        let numbers = [
            ("line", self.line),
            ("endLine", self.end_line),
            ("col", self.column),
            ("endColumn", self.end_column),
        ];
        for (key, value) in numbers {
            if let Some(value) = value {
                properties.push(format!("{key}={value}"));
            }
        }
        if let Some(title) = &self.title {
            properties.push(format!("title={}", escape_property(title)));
        }
        let message = escape_data(&self.message);
        if properties.is_empty() {
            format!("::{name}::{message}")
        } else {
            format!("::{name} {}::{message}", properties.join(","))
        }
    }
}

/// Registers secrets with the runner (`::add-mask::`) on its writer, flushing at once,
/// so a value is masked before any other output could print it.
///
/// The runner masks line by line, so a multi-line secret is registered whole and also
/// line by line; blank lines are skipped, as masking nothing would hide nothing.
pub struct Masker<W: Write> {
    out: W,
    registered: BTreeSet<String>,
}

impl<W: Write> Masker<W> {
    /// A masker writing to `out` (the step's stdout in the action).
    pub fn new(out: W) -> Masker<W> {
        Masker {
            out,
            registered: BTreeSet::new(),
        }
    }

    /// Registers a secret.
    pub fn register(&mut self, secret: &Secret) -> io::Result<()> {
        self.register_value(secret.expose())
    }

    /// Registers every secret of the inputs: `password` and each `secrets` value.
    /// Call it first thing after reading the inputs.
    pub fn register_inputs(&mut self, inputs: &ActionInputs) -> io::Result<()> {
        if let Some(password) = &inputs.password {
            self.register(password)?;
        }
        if let Some(token) = &inputs.github_token {
            self.register(token)?;
        }
        for secret in &inputs.secrets {
            self.register(&secret.value)?;
        }
        Ok(())
    }

    /// Registers a value that is secret but not wrapped, such as a registry token.
    pub fn register_value(&mut self, value: &str) -> io::Result<()> {
        let mut values = vec![value];
        if value.contains(['\n', '\r']) {
            values.extend(value.lines());
        }
        for value in values {
            let value = value.trim_end_matches('\r');
            if value.trim().is_empty() || self.registered.contains(value) {
                continue;
            }
            writeln!(self.out, "{}", add_mask(value))?;
            self.registered.insert(value.to_string());
        }
        self.out.flush()
    }

    /// Replaces every registered value in `text` with `***`, longest first, for text
    /// this crate writes where the runner does not mask (the step summary, files).
    pub fn redact(&self, text: &str) -> String {
        let mut values: Vec<&String> = self.registered.iter().collect();
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
        let mut text = text.to_string();
        for value in values {
            text = text.replace(value.as_str(), "***");
        }
        text
    }

    /// The writer, for lines that went through [`Masker::redact`].
    pub fn writer(&mut self) -> &mut W {
        &mut self.out
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let cases = [
            ("plain", "plain", "plain"),
            ("100%", "100%25", "100%25"),
            ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
            ("C:\\x,y", "C:\\x,y", "C%3A\\x%2Cy"),
            ("%0A", "%250A", "%250A"),
        ];
        for (text, data, property) in cases {
            assert_eq!(escape_data(text), data, "{text:?}");
            assert_eq!(escape_property(text), property, "{text:?}");
        }
    }

    #[test]
    fn commands() {
        assert_eq!(group("Stage 1/2: build"), "::group::Stage 1/2: build");
        assert_eq!(end_group(), "::endgroup::");
        assert_eq!(add_mask("a\nb"), "::add-mask::a%0Ab");
        let mut annotation =
            FileAnnotation::new(Severity::Error, "COPY needs a source\nand a destination");
        assert_eq!(
            annotation.to_command(),
            "::error::COPY needs a source%0Aand a destination"
        );
        annotation.file = Some("docker/Dockerfile,v2".into());
        annotation.line = Some(12);
        annotation.column = Some(5);
        annotation.title = Some("Dockerfile: syntax".into());
        assert_eq!(
            annotation.to_command(),
            "::error file=docker/Dockerfile%2Cv2,line=12,col=5,title=Dockerfile%3A syntax::\
             COPY needs a source%0Aand a destination"
        );
        let mut warning = FileAnnotation::new(Severity::Warning, "50% done");
        warning.line = Some(3);
        warning.end_line = Some(4);
        warning.end_column = Some(9);
        assert_eq!(
            warning.to_command(),
            "::warning line=3,endLine=4,endColumn=9::50%25 done"
        );
        let notice = FileAnnotation::new(Severity::Notice, "pushed");
        assert_eq!(notice.to_command(), "::notice::pushed");
    }

    #[test]
    fn masker_registers_each_line_once_before_anything_else() {
        let mut masker = Masker::new(Vec::new());
        let key = Secret::new("-----BEGIN KEY-----\r\nAAAA\n\n-----END KEY-----");
        masker.register(&key).unwrap();
        masker.register(&Secret::new("AAAA")).unwrap();
        masker.register_value("tok%en").unwrap();
        masker.register_value("   ").unwrap();
        let printed = String::from_utf8(masker.into_inner()).unwrap();
        let expected = "::add-mask::-----BEGIN KEY-----%0D%0AAAAA%0A%0A-----END KEY-----\n\
                        ::add-mask::-----BEGIN KEY-----\n\
                        ::add-mask::AAAA\n\
                        ::add-mask::-----END KEY-----\n\
                        ::add-mask::tok%25en\n";
        assert_eq!(printed, expected);
    }

    #[test]
    fn masker_registers_every_secret_input() {
        let env = [
            ("INPUT_PASSWORD", "ghs_token"),
            ("INPUT_SECRETS", "A=alpha\n\"B=beta\ngamma\""),
            ("INPUT_USERNAME", "octocat"),
        ];
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let inputs = ActionInputs::from_env(&env).unwrap();
        let mut masker = Masker::new(Vec::new());
        masker.register_inputs(&inputs).unwrap();
        let printed = String::from_utf8(masker.into_inner()).unwrap();
        let expected = "::add-mask::ghs_token\n::add-mask::alpha\n::add-mask::beta%0Agamma\n\
                        ::add-mask::beta\n::add-mask::gamma\n";
        assert_eq!(printed, expected);
    }

    #[test]
    fn redact_replaces_longest_first() {
        let mut masker = Masker::new(io::sink());
        masker.register_value("abc").unwrap();
        masker.register_value("abcdef").unwrap();
        assert_eq!(masker.redact("x abcdef y abc z"), "x *** y *** z");
        assert_eq!(masker.redact("nothing"), "nothing");
    }
}
