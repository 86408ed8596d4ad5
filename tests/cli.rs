//! The `check` command as a user runs it: output lines and exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rust-image-action"))
        .arg("check")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn temp_dockerfile(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ria-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("Dockerfile");
    std::fs::write(&path, text).expect("writable temp file");
    path
}

#[test]
fn example_checks_clean() {
    let output = check(&["examples/hello"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "stdout: {stdout}");
    assert_eq!(stdout, "", "the shipped example has no findings");
}

#[test]
fn error_at_line_n_is_located_and_exits_1() {
    let path = temp_dockerfile("error", "FROM alpine\nRUN true\n\nCOPY --frmo=x a b\n");
    let output = check(&["-f", path.to_str().expect("utf-8 path"), "."]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "stdout: {stdout}");
    let expected = format!("{}:4:6: error: unknown flag: --frmo", path.display());
    assert!(stdout.starts_with(&expected), "stdout: {stdout}");
    assert!(
        stdout.contains("frmo"),
        "the message names the flag: {stdout}"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap_or(Path::new("/nonexistent")));
}

#[test]
fn warnings_alone_exit_0_and_build_args_count() {
    let path = temp_dockerfile("warn", "FROM alpine\nCMD echo hi\n");
    let file = path.to_str().expect("utf-8 path");
    let output = check(&["-f", file, "--build-arg", "UNUSED=1", "."]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "stdout: {stdout}");
    assert!(stdout.contains(":2:1: warning: ") && stdout.contains("(JSONArgsRecommended)"));
    assert!(
        stdout.contains("`UNUSED` is not consumed"),
        "stdout: {stdout}"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap_or(Path::new("/nonexistent")));
}

#[test]
fn unknown_target_fails_and_missing_file_exits_2() {
    let output = check(&["--target", "nope", "examples/hello"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("target stage `nope`"));
    let output = check(&["-f", "does/not/exist", "."]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does/not/exist"),
        "stderr names the file: {stderr}"
    );
}
