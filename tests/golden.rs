//! Golden tests: every Dockerfile under `tests/data/{parse,errors}` against the parse
//! and diagnostics we expect, kept beside it as `NAME.golden`.
//!
//! Set `UPDATE_GOLDEN=1` to rewrite the golden files from today's output, then
//! review the diff. Files under `errors/` must produce at least one error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rust_image_action::check::check_text;
use rust_image_action::frontend::{self, parser};
use rust_image_action::plan::PlanOptions;
use rust_image_action::platform::Platform;

/// The parse of `text` as it is kept in golden files: BuildKit-style node dumps, the
/// heredoc bodies, then the `check` diagnostics.
fn render(text: &str) -> String {
    let ast = parser::parse(text);
    let mut out = String::new();
    for node in &ast.nodes {
        let _ = writeln!(out, "{}: ({})", node.start.line, node.dump());
        for heredoc in &node.heredocs {
            let _ = writeln!(
                out,
                "  heredoc {} fd={} expand={} chomp={} content={}",
                heredoc.name,
                heredoc.file_descriptor,
                heredoc.expand,
                heredoc.chomp,
                frontend::go_quote(&heredoc.content)
            );
        }
    }
    let options = PlanOptions {
        target_platform: Platform::parse("linux/amd64").expect("valid platform"),
        build_platform: Platform::parse("linux/amd64").expect("valid platform"),
        ..PlanOptions::default()
    };
    let report = check_text(text, &options);
    let _ = writeln!(out, "-- stages: {}", report.stages.join(", "));
    for diagnostic in &report.diagnostics {
        let _ = writeln!(out, "{}", diagnostic.render("Dockerfile"));
    }
    out
}

fn dockerfiles(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "Dockerfile"))
        .collect();
    files.sort();
    files
}

fn run_golden(dir: &str, must_fail: bool) {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let files = dockerfiles(dir);
    assert!(!files.is_empty(), "no Dockerfiles under tests/data/{dir}");
    let mut mismatched = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable test Dockerfile");
        let actual = render(&text);
        let golden = path.with_extension("golden");
        if must_fail {
            assert!(
                actual.contains(": error: "),
                "{} reported no error:\n{actual}",
                path.display()
            );
        } else {
            assert!(
                !actual.contains(": error: "),
                "{} reported an error:\n{actual}",
                path.display()
            );
        }
        if update {
            std::fs::write(&golden, &actual).expect("writable golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != actual {
            mismatched.push(format!(
                "--- {}\n+++ actual\n{}",
                golden.display(),
                line_diff(&expected, &actual)
            ));
        }
    }
    assert!(
        mismatched.is_empty(),
        "golden mismatches (UPDATE_GOLDEN=1 rewrites them):\n{}",
        mismatched.join("\n")
    );
}

/// A small line diff: lines only in the expected text start with `-`, only in the
/// actual with `+`.
fn line_diff(expected: &str, actual: &str) -> String {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    for line in &expected {
        if !actual.contains(line) {
            let _ = writeln!(out, "-{line}");
        }
    }
    for line in &actual {
        if !expected.contains(line) {
            let _ = writeln!(out, "+{line}");
        }
    }
    out
}

#[test]
fn parse_goldens() {
    run_golden("parse", false);
}

#[test]
fn error_goldens() {
    run_golden("errors", true);
}
