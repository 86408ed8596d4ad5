//! The `__sandbox MODE` entry points: what the helper processes do, dispatched on the mode.
//!
//! A helper is this binary started by [`process::run_helper`](super::process::run_helper)
//! with a JSON payload on its standard input. It runs single-threaded, before any runtime
//! exists, so it may change credentials and `chroot` for the whole process. A helper that
//! fails before the user's program runs writes the reason to the payload's error file.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rustix::fs::{Mode, OFlags};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::exec::{ExecRequest, exec_step};

/// The payload of mode `exec`: run one step's program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecPayload {
    /// What to run.
    pub request: ExecRequest,
    /// Where a failure to start the program is reported. Its directory must be writable by
    /// the step's user, since the last failures (`exec` itself) happen after the switch.
    pub error_file: PathBuf,
}

/// The payload of mode `chroot-probe`: whether `chroot` is permitted here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChrootProbePayload {
    /// An empty directory to `chroot` into; the helper creates [`CHROOT_PROBE_MARK`] in it.
    pub dir: PathBuf,
    /// Where the refusal is reported.
    pub error_file: PathBuf,
}

/// The mode that runs a step's program.
pub const MODE_EXEC: &str = "exec";

/// The mode that tries `chroot`.
pub const MODE_CHROOT_PROBE: &str = "chroot-probe";

/// The file the `chroot-probe` mode creates at the top of its new root.
pub const CHROOT_PROBE_MARK: &str = "chroot-probe-ok";

/// Runs the helper `mode`; the exit code is the helper's (a helper that `exec`s never
/// returns).
pub fn helper_main(mode: &str) -> ExitCode {
    match mode {
        MODE_EXEC => exec_mode(),
        MODE_CHROOT_PROBE => chroot_probe_mode(),
        "namespace" => super::namespace::namespace_main(),
        "init" => super::namespace::init_main(),
        "probe-namespace" => super::namespace::probe_main(),
        other => {
            #[allow(clippy::print_stderr, reason = "a helper has no other channel left")]
            {
                eprintln!("error: unknown sandbox helper mode `{other}`");
            }
            ExitCode::from(2)
        }
    }
}

/// Reads and parses the payload, or says why not on standard error (merged into the step's
/// output: there is no error file to write yet).
fn read_payload<T: DeserializeOwned>() -> Result<T, ExitCode> {
    let mut bytes = Vec::new();
    let parsed = std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice(&bytes).map_err(|e| e.to_string()));
    parsed.map_err(|e| {
        #[allow(clippy::print_stderr, reason = "a helper has no other channel left")]
        {
            eprintln!("error: failed to read the sandbox helper's request: {e}");
        }
        ExitCode::from(2)
    })
}

/// The directory of an error file, opened before anything changes the process's root or
/// credentials, and the file's name in it.
struct ErrorFile {
    dir: Option<OwnedFd>,
    name: PathBuf,
    path: PathBuf,
}

impl ErrorFile {
    fn open(path: &Path) -> ErrorFile {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        ErrorFile {
            dir: rustix::fs::open(parent, flags, Mode::empty()).ok(),
            name: path.file_name().map(PathBuf::from).unwrap_or_default(),
            path: path.to_path_buf(),
        }
    }

    /// Writes `message`; falls back to standard error when the file cannot be written.
    fn report(&self, message: &str) -> ExitCode {
        let written = self.dir.as_ref().is_some_and(|dir| {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
            rustix::fs::openat(dir, &self.name, flags, Mode::from(0o600))
                .map_err(std::io::Error::from)
                .and_then(|fd| {
                    std::io::Write::write_all(&mut std::fs::File::from(fd), message.as_bytes())
                })
                .is_ok()
        });
        if !written {
            #[allow(clippy::print_stderr, reason = "the error file is out of reach")]
            {
                eprintln!(
                    "error: {message} (and the error file `{}` could not be written)",
                    self.path.display()
                );
            }
        }
        ExitCode::from(1)
    }
}

fn exec_mode() -> ExitCode {
    let payload: ExecPayload = match read_payload() {
        Ok(payload) => payload,
        Err(code) => return code,
    };
    let error_file = ErrorFile::open(&payload.error_file);
    // The step must not read the payload's pipe (nor anything else of ours): Docker gives
    // RUN an empty standard input.
    let null = match rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
    {
        Ok(null) => null,
        Err(e) => return error_file.report(&format!("open `/dev/null`: {e}")),
    };
    if let Err(e) = rustix::stdio::dup2_stdin(&null) {
        return error_file.report(&format!("replace standard input with `/dev/null`: {e}"));
    }
    drop(null);
    let message = exec_step(&payload.request);
    error_file.report(&message)
}

fn chroot_probe_mode() -> ExitCode {
    let payload: ChrootProbePayload = match read_payload() {
        Ok(payload) => payload,
        Err(code) => return code,
    };
    let error_file = ErrorFile::open(&payload.error_file);
    if let Err(e) = rustix::process::chroot(&payload.dir) {
        return error_file.report(&format!("chroot into `{}`: {e}", payload.dir.display()));
    }
    // Proof that the new root is the directory given, for the caller to find.
    match std::fs::write(Path::new("/").join(CHROOT_PROBE_MARK), b"") {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => error_file.report(&format!("write in the new root: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_payload_round_trips_as_json() {
        let payload = ExecPayload {
            request: ExecRequest {
                args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/work".into(),
                uid: 1000,
                gid: 1000,
                groups: vec![27],
                chroot: Some(PathBuf::from("/tmp/root")),
            },
            error_file: PathBuf::from("/tmp/err/error"),
        };
        let json = serde_json::to_vec(&payload).expect("encode");
        let back: ExecPayload = serde_json::from_slice(&json).expect("decode");
        assert_eq!(back, payload);
    }

    #[test]
    fn error_file_is_written_through_the_directory_opened_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("error");
        let error_file = ErrorFile::open(&path);
        let code = error_file.report("exec: `nope`: executable file not found in $PATH");
        assert_eq!(code, ExitCode::from(1));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "exec: `nope`: executable file not found in $PATH"
        );
    }

    #[test]
    fn unknown_mode_is_refused() {
        assert_eq!(helper_main("no-such-mode"), ExitCode::from(2));
    }
}
