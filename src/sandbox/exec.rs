//! The last step before the user's program: credentials, working directory, environment,
//! then `execve`. Runs only in the single-threaded `__sandbox` helper processes.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use rustix::process::{Gid, Signal, Uid};
use serde::{Deserialize, Serialize};

/// What [`exec_step`] needs: the parts of a [`RunSpec`](super::RunSpec) that apply to the
/// process itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The program and arguments.
    pub args: Vec<String>,
    /// The whole environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// The working directory, created (owned by the user) when missing.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
    /// A directory to `chroot` into first (the chroot backend).
    pub chroot: Option<PathBuf>,
}

impl ExecRequest {
    /// The request for `spec`.
    pub fn from_spec(spec: &super::RunSpec, chroot: Option<PathBuf>) -> ExecRequest {
        ExecRequest {
            args: spec.args.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            uid: spec.uid,
            gid: spec.gid,
            groups: spec.groups.clone(),
            chroot,
        }
    }
}

/// Becomes the step's program; returns only the reason it could not.
///
/// Order matters: the working directory is created while still root (as runc does), then
/// groups, group and user are dropped, then the parent-death signal is set (a credential
/// change clears it), then `execve`. A `PATH` in `env` is used to find `args[0]`.
pub fn exec_step(request: &ExecRequest) -> String {
    if let Some(root) = &request.chroot {
        if let Err(e) = rustix::process::chroot(root) {
            return format!("chroot into `{}`: {e}", root.display());
        }
        if let Err(e) = std::env::set_current_dir("/") {
            return format!("chdir to the new root: {e}");
        }
    }
    let cwd = Path::new(&request.cwd);
    if !cwd.is_dir() {
        if let Err(e) = std::fs::create_dir_all(cwd) {
            return format!("create the working directory `{}`: {e}", request.cwd);
        }
        if let Err(e) = rustix::fs::chown(
            cwd,
            Some(Uid::from_raw(request.uid)),
            Some(Gid::from_raw(request.gid)),
        ) {
            return format!("chown the working directory `{}`: {e}", request.cwd);
        }
    }
    if let Err(e) = std::env::set_current_dir(cwd) {
        return format!("chdir to `{}`: {e}", request.cwd);
    }
    let groups: Vec<Gid> = request.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = rustix::thread::set_thread_groups(&groups) {
        return format!("set the supplementary groups {:?}: {e}", request.groups);
    }
    let gid = Gid::from_raw(request.gid);
    if let Err(e) = rustix::thread::set_thread_res_gid(gid, gid, gid) {
        return format!("set group id {}: {e}", request.gid);
    }
    let uid = Uid::from_raw(request.uid);
    if let Err(e) = rustix::thread::set_thread_res_uid(uid, uid, uid) {
        return format!("set user id {}: {e}", request.uid);
    }
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(Signal::KILL)) {
        return format!("set the parent-death signal: {e}");
    }
    let Some((program, args)) = request.args.split_first() else {
        return "the command is empty".to_string();
    };
    let mut command = std::process::Command::new(program);
    command.args(args).env_clear();
    for pair in &request.env {
        let (key, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
        command.env(key, value);
    }
    let error = command.exec();
    match error.kind() {
        std::io::ErrorKind::NotFound if !program.contains('/') => {
            format!("exec: `{program}`: executable file not found in $PATH")
        }
        _ => format!("exec: `{program}`: {error}"),
    }
}
