//! One step on a plain directory root, its changes found by comparing metadata: the part of
//! the `container` and `chroot` backends that is the same for both.
//!
//! Order: scan the root, put the emulated mounts in place, run the program through the
//! `exec` helper, take the mounts away, scan again, diff. The mount targets are left out of
//! both scans' comparison, and the directories that only held them get their times back, so a
//! step that writes nothing outside its mounts has no changes.

use std::path::{Path, PathBuf};

use super::emulate::{Emulated, Provision};
use super::exec::ExecRequest;
use super::helper::{ExecPayload, MODE_EXEC};
use super::process::{helper_program, run_helper_program};
use super::rootdiff::{diff, scan};
use super::{Network, RunSpec, SandboxError, Step, StepResult};
use crate::store::Store;

/// How to run a step on a directory.
pub struct DirStep<'a> {
    /// The backend's name, for messages.
    pub backend: &'static str,
    /// The root the stage is unpacked in.
    pub root: &'a Path,
    /// Whether the program is started `chroot`ed into `root`.
    pub chroot: bool,
    /// Absolute paths never scanned (protected paths, files the engine provides).
    pub skip: Vec<PathBuf>,
    /// Emulated mounts the backend adds to the step's own (`/etc/hosts`, device nodes).
    pub extra: Vec<Provision<'a>>,
    /// The helper program; `None` for this program.
    pub helper: Option<&'a Path>,
}

/// Runs `step` as `run` says and returns its exit, output tail and changes.
pub fn run_dir_step(mut run: DirStep<'_>, step: Step<'_>) -> Result<StepResult, SandboxError> {
    let backend = run.backend;
    let setup = |message: String| SandboxError::Setup { backend, message };
    if step.spec.network == Network::None {
        return Err(setup(format!(
            "`RUN --network=none` cannot be honoured: the {backend} backend runs steps in the \
             builder's own network\nhint: use `--isolation namespace` where the builder may \
             create namespaces"
        )));
    }
    let scan_started = std::time::Instant::now();
    let mut before = scan(run.root, &run.skip)?;
    let mut snapshot_time = scan_started.elapsed();
    let mut provisions = std::mem::take(&mut run.extra);
    provisions.extend(step.spec.mounts.iter().map(Provision::of_mount));
    let emulated = Emulated::setup(backend, run.root, step.store, &provisions)?;
    let excluded: Vec<PathBuf> = emulated.excluded().to_vec();
    let ran = exec(&run, step.store, step.spec, step.output);
    let settled = emulated.teardown();
    let (exit, tail) = ran?;
    let settled = settled?;
    if !exit.success() {
        return Ok(StepResult {
            exit,
            tail,
            entries: Vec::new(),
            keep: None,
            snapshot_time,
            prepare_time: std::time::Duration::ZERO,
        });
    }
    let scan_started = std::time::Instant::now();
    let mut skip = run.skip.clone();
    skip.extend(excluded.iter().map(|p| run.root.join(p)));
    let mut after = scan(run.root, &skip)?;
    for path in &excluded {
        before.forget(path);
        after.forget(path);
    }
    after.ignore_ctime(&before, &settled);
    let entries = diff(&before, &after, run.root, step.epoch)?;
    snapshot_time += scan_started.elapsed();
    Ok(StepResult {
        exit,
        tail,
        entries,
        keep: None,
        snapshot_time,
        prepare_time: std::time::Duration::ZERO,
    })
}

/// Starts the program through the `exec` helper and streams its output.
fn exec(
    run: &DirStep<'_>,
    store: &Store,
    spec: &RunSpec,
    output: &mut dyn FnMut(&str),
) -> Result<(super::Exit, Vec<String>), SandboxError> {
    let backend = run.backend;
    let setup = |message: String| SandboxError::Setup { backend, message };
    // The last failures (a missing program) are reported after the switch to the step's
    // user, so the error file's directory is theirs.
    let error_dir = store
        .temp_dir()
        .map_err(|e| setup(format!("create a directory for the helper's errors: {e}")))?;
    std::os::unix::fs::chown(error_dir.path(), Some(spec.uid), Some(spec.gid))
        .map_err(|e| setup(format!("chown `{}`: {e}", error_dir.path().display())))?;
    let error_file = error_dir.path().join("error");
    let chroot = run.chroot.then(|| run.root.to_path_buf());
    let payload = ExecPayload {
        request: ExecRequest::from_spec(spec, chroot),
        error_file: error_file.clone(),
    };
    let payload = serde_json::to_vec(&payload)
        .map_err(|e| setup(format!("encode the helper's request: {e}")))?;
    let program = match run.helper {
        Some(program) => program.to_path_buf(),
        None => helper_program().map_err(|e| setup(format!("find this program: {e}")))?,
    };
    run_helper_program(&program, backend, MODE_EXEC, &payload, &error_file, output)
}
