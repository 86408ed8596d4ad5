//! Step outputs in the runner's `GITHUB_OUTPUT` file format, and appending to that
//! file or to `GITHUB_STEP_SUMMARY`.
//!
//! A single-line value is written `name=value`; any other as a heredoc,
//! `name<<DELIMITER`, the value, `DELIMITER`, where the delimiter is derived from a
//! SHA-256 of the value and a counter and checked not to occur in the value, so no
//! value can end its own block early or forge another output.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::action::inputs::ImageName;

/// An output that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The name has characters the runner does not take in an output name.
    #[error("output name `{0}` must be letters, digits, `_` or `-`")]
    Name(String),
}

/// The text of a `GITHUB_OUTPUT` file being built.
#[derive(Debug, Clone, Default)]
pub struct OutputFile {
    text: String,
    counter: u64,
}

impl OutputFile {
    /// An empty output file.
    pub fn new() -> OutputFile {
        OutputFile::default()
    }

    /// Adds one output.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), OutputError> {
        let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if name.is_empty() || !name.bytes().all(valid) {
            return Err(OutputError::Name(name.to_string()));
        }
        // A lone `\r` goes to a heredoc too: readers that split lines the .NET way
        // (the runner is .NET) end a line at `\r`, which would cut a `name=value`.
        if !value.contains(['\n', '\r']) {
            self.text.push_str(&format!("{name}={value}\n"));
            return Ok(());
        }
        let delimiter = self.delimiter(value, delimiter_for);
        self.text
            .push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        Ok(())
    }

    // Takes the derivation as a parameter so a test can force a collision.
    fn delimiter(&mut self, value: &str, derive: fn(&str, u64) -> String) -> String {
        loop {
            self.counter += 1;
            let candidate = derive(value, self.counter);
            if !value.contains(&candidate) {
                return candidate;
            }
        }
    }

    /// The file's text so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn delimiter_for(value: &str, counter: u64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(value.as_bytes());
    hasher.update(counter.to_be_bytes());
    let hex: String = hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("ghadelimiter_{hex}")
}

/// Appends text to a runner file such as `GITHUB_OUTPUT` or `GITHUB_STEP_SUMMARY`
/// (other steps' content stays; the runner creates the file empty for each step).
pub fn append_to(path: &Path, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().append(true).create(true).open(path)?;
    file.write_all(text.as_bytes())
}

/// What the build produced, for the outputs.
#[derive(Debug, Clone, Copy)]
pub struct BuildResult<'a> {
    /// The image name the tags belong to.
    pub image: &'a ImageName,
    /// The manifest (or index) digest, set whether or not the image was pushed.
    pub digest: &'a str,
    /// The config digest: the `imageid`.
    pub config_digest: &'a str,
    /// The computed tags (without the image name).
    pub tags: &'a [String],
    /// The version: the first tag.
    pub version: Option<&'a str>,
    /// Whether the image was pushed.
    pub pushed: bool,
}

// The `metadata` output: build-push-action's key names for what it also reports, so
// workflows reading `containerimage.digest` keep working.
#[derive(Serialize)]
struct Metadata<'a> {
    #[serde(rename = "containerimage.digest")]
    digest: &'a str,
    #[serde(rename = "containerimage.config.digest")]
    config_digest: &'a str,
    #[serde(rename = "image.name")]
    image_name: String,
    pushed: bool,
    version: Option<&'a str>,
}

/// The action's outputs in `GITHUB_OUTPUT` form: `digest`, `imageid`, `image`
/// (`name@digest`), `tags` (full references, one per line), `version` and `metadata`
/// (JSON).
pub fn render_outputs(result: &BuildResult<'_>) -> String {
    let references: Vec<String> = result
        .tags
        .iter()
        .map(|tag| format!("{}:{tag}", result.image))
        .collect();
    let metadata = Metadata {
        digest: result.digest,
        config_digest: result.config_digest,
        image_name: references.join(","),
        pushed: result.pushed,
        version: result.version,
    };
    // Serializing a struct of strings and booleans cannot fail.
    let metadata = serde_json::to_string_pretty(&metadata).unwrap_or_default();
    let values = [
        ("digest", result.digest.to_string()),
        ("imageid", result.config_digest.to_string()),
        ("image", format!("{}@{}", result.image, result.digest)),
        ("tags", references.join("\n")),
        ("version", result.version.unwrap_or_default().to_string()),
        ("metadata", metadata),
    ];
    let mut file = OutputFile::new();
    for (name, value) in values {
        file.set(name, &value)
            .expect("the fixed output names are valid");
    }
    file.text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    // Reads the file as the runner does: `name=value` when `=` comes before any `<<`,
    // else a heredoc whose lines run to a line that is exactly the delimiter.
    fn parse(text: &str) -> BTreeMap<String, String> {
        let mut outputs = BTreeMap::new();
        let mut lines = text.split('\n');
        while let Some(line) = lines.next() {
            if line.is_empty() {
                continue;
            }
            let equals = line.find('=');
            let heredoc = line.find("<<");
            match (equals, heredoc) {
                (Some(e), h) if h.is_none_or(|h| e < h) => {
                    outputs.insert(line[..e].to_string(), line[e + 1..].to_string());
                }
                (_, Some(h)) => {
                    let (name, delimiter) = (&line[..h], &line[h + 2..]);
                    let mut body = Vec::new();
                    for line in lines.by_ref() {
                        if line == delimiter {
                            break;
                        }
                        body.push(line);
                    }
                    outputs.insert(name.to_string(), body.join("\n"));
                }
                _ => panic!("unparsable line {line:?}"),
            }
        }
        outputs
    }

    #[test]
    fn values_round_trip_through_the_runner_format() {
        let tricky = [
            "plain",
            "",
            "a=b<<c",
            "two\nlines",
            "ends with newline\n",
            "\nstarts with one",
            "windows\r\nline",
            "forged\nother=value",
            "EOF\nghadelimiter_\n<<EOF",
        ];
        let mut file = OutputFile::new();
        for (index, value) in tricky.iter().enumerate() {
            file.set(&format!("out-{index}"), value).unwrap();
        }
        let parsed = parse(file.as_str());
        assert_eq!(parsed.len(), tricky.len(), "{}", file.as_str());
        for (index, value) in tricky.iter().enumerate() {
            // The runner reads lines split on `\n`; a `\r` stays in the value.
            assert_eq!(parsed[&format!("out-{index}")], *value, "value {index}");
        }
    }

    #[test]
    fn a_value_holding_the_delimiter_gets_another() {
        fn colliding(_: &str, counter: u64) -> String {
            if counter < 3 {
                "EOF".to_string()
            } else {
                format!("END{counter}")
            }
        }
        let mut file = OutputFile::new();
        assert_eq!(file.delimiter("a\nEOF\nb", colliding), "END3");
        // Without a collision the first candidate is taken, and the counter moves on.
        assert_eq!(file.delimiter("plain", colliding), "END4");
        // The real derivation differs per value and per use.
        let mut file = OutputFile::new();
        let first = file.delimiter("x", delimiter_for);
        let second = file.delimiter("x", delimiter_for);
        assert_ne!(first, second);
        assert!(
            first.starts_with("ghadelimiter_") && first.len() == 45,
            "{first}"
        );
    }

    #[test]
    fn only_plain_single_lines_use_the_short_form() {
        let mut file = OutputFile::new();
        file.set("plain", "a b=c").unwrap();
        file.set("carriage", "a\rb").unwrap();
        let text = file.as_str();
        assert!(
            text.starts_with("plain=a b=c\ncarriage<<ghadelimiter_"),
            "{text}"
        );
    }

    #[test]
    fn names_are_checked() {
        let mut file = OutputFile::new();
        let error = file.set("bad name", "x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "output name `bad name` must be letters, digits, `_` or `-`"
        );
        assert!(file.set("a=b", "x").is_err() && file.set("", "x").is_err());
        assert_eq!(file.as_str(), "");
    }

    #[test]
    fn action_outputs() {
        let image = ImageName {
            registry: "ghcr.io".into(),
            repository: "acme-corp/web-app".into(),
        };
        let tags = ["main".to_string(), "latest".to_string()];
        let digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let config = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        let result = BuildResult {
            image: &image,
            digest,
            config_digest: config,
            tags: &tags,
            version: Some("main"),
            pushed: false,
        };
        let outputs = parse(&render_outputs(&result));
        assert_eq!(outputs["digest"], digest);
        assert_eq!(outputs["imageid"], config);
        assert_eq!(
            outputs["image"],
            format!("ghcr.io/acme-corp/web-app@{digest}")
        );
        assert_eq!(
            outputs["tags"],
            "ghcr.io/acme-corp/web-app:main\nghcr.io/acme-corp/web-app:latest"
        );
        assert_eq!(outputs["version"], "main");
        let metadata: serde_json::Value = serde_json::from_str(&outputs["metadata"]).unwrap();
        assert_eq!(metadata["containerimage.digest"], digest);
        assert_eq!(metadata["containerimage.config.digest"], config);
        assert_eq!(
            metadata["image.name"],
            "ghcr.io/acme-corp/web-app:main,ghcr.io/acme-corp/web-app:latest"
        );
        assert_eq!(metadata["pushed"], false);
        assert_eq!(outputs.len(), 6);
    }

    #[test]
    fn append_keeps_earlier_content() {
        let dir = std::env::temp_dir().join(format!("action-core-outputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("output");
        std::fs::write(&path, "earlier=1\n").unwrap();
        append_to(&path, "later=2\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "earlier=1\nlater=2\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
