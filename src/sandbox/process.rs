//! Starting the `__sandbox` helper processes and streaming their output.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Exit, SandboxError};

/// How many lines of output a failed step's error shows.
pub const TAIL_LINES: usize = 20;

/// The hidden subcommand of this binary that the helpers run as.
pub const HELPER_COMMAND: &str = "__sandbox";

/// The program re-executed as a helper: this very program through `/proc/self/exe`, which
/// stays valid when the file it was started from is replaced or deleted during a build
/// (its path would not). Tests and other embedders can point it elsewhere with
/// `RIA_SANDBOX_HELPER`.
pub fn helper_program() -> std::io::Result<std::path::PathBuf> {
    match std::env::var_os("RIA_SANDBOX_HELPER") {
        Some(path) => Ok(path.into()),
        None => Ok(std::path::PathBuf::from("/proc/self/exe")),
    }
}

/// Runs `__sandbox MODE` with `payload` on its standard input and its standard output and
/// error merged into one pipe, calling `output` for each line as it arrives.
///
/// A helper reports its own failures (before the user's program runs) by writing them to
/// `error_file` and exiting non-zero; a non-empty error file becomes a
/// [`SandboxError::Setup`].
pub fn run_helper(
    backend: &'static str,
    mode: &str,
    payload: &[u8],
    error_file: &Path,
    output: &mut dyn FnMut(&str),
) -> Result<(Exit, Vec<String>), SandboxError> {
    let program = helper_program().map_err(|e| SandboxError::Setup {
        backend,
        message: format!("find this program: {e}"),
    })?;
    run_helper_program(&program, backend, mode, payload, error_file, output)
}

/// [`run_helper`] with the helper program given: the integration tests point backends at
/// the built binary, since a test harness has no `__sandbox` entry point.
pub fn run_helper_program(
    program: &Path,
    backend: &'static str,
    mode: &str,
    payload: &[u8],
    error_file: &Path,
    output: &mut dyn FnMut(&str),
) -> Result<(Exit, Vec<String>), SandboxError> {
    let setup = |message: String| SandboxError::Setup { backend, message };
    let (reader, writer) = std::io::pipe().map_err(|e| setup(format!("create a pipe: {e}")))?;
    let writer_err = writer
        .try_clone()
        .map_err(|e| setup(format!("duplicate a pipe: {e}")))?;
    let mut child = Command::new(program)
        .arg(HELPER_COMMAND)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(writer_err)
        .spawn()
        .map_err(|e| setup(format!("start `{}`: {e}", program.display())))?;
    // The parent's copies of the write end are gone with the Command; once every helper
    // process exits, the reader sees the end of the stream.
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that dies early closes the pipe; its error file says why.
        let _ = stdin.write_all(payload);
    }
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                output(text);
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(text.to_string());
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(setup(format!("read the step's output: {e}")));
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| setup(format!("wait for the step: {e}")))?;
    match std::fs::read_to_string(error_file) {
        Ok(message) if !message.trim().is_empty() => {
            return Err(setup(message.trim_end().to_string()));
        }
        _ => {}
    }
    let exit = match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Code(-1),
    };
    Ok((exit, tail.into()))
}

/// Writes a helper's setup failure where [`run_helper`] looks for it.
pub fn report_setup_error(error_file: &Path, message: &str) {
    let _ = std::fs::write(error_file, message.as_bytes());
}
