//! The `chroot` backend: the stage unpacked into a private directory in the store, the step
//! `chroot`ed into it, its changes found by comparing metadata.
//!
//! The weakest backend, for hosts that allow `chroot` (CAP_SYS_CHROOT) but neither
//! namespaces nor the builder's own container. The directory is kept across the steps of a
//! stage and extended layer by layer (`stageroot.rs`), like the container backend's root.
//!
//! Limits, since nothing can be mounted:
//! - no PID, mount, IPC, UTS or network isolation: the step sees the host's processes,
//!   network and host name (`RUN --network=none` fails the step), and a process it leaves
//!   running keeps running;
//! - no `/proc` and no `/sys`; `/dev` holds only `null`, `zero`, `full`, `random`, `urandom`
//!   and `tty`, made with `mknod` for the step when the builder has CAP_MKNOD (and missing
//!   otherwise), unless the stage has its own;
//! - `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` are written for the step from the
//!   step's files and the stage's own put back after; none reaches the layer;
//! - mounts are emulated as in the container backend (`emulate.rs`): a secret
//!   is a file on the store's disk for the step's duration.

use std::path::{Path, PathBuf};

use super::dirstep::{DirStep, run_dir_step};
use super::emulate::{Content, Provision};
use super::helper::{CHROOT_PROBE_MARK, ChrootProbePayload, MODE_CHROOT_PROBE};
use super::process::{helper_program, run_helper_program};
use super::stageroot::StageRoot;
use super::{Backend, Isolation, SandboxError, Step, StepResult};
use crate::store::Store;

const BACKEND: &str = "chroot";

/// Runs steps `chroot`ed into a private copy of the stage; see the module documentation.
pub struct ChrootBackend {
    // Declared before `dir`, which it lives in.
    stage: StageRoot,
    dir: tempfile::TempDir,
    helper: Option<PathBuf>,
}

impl ChrootBackend {
    /// A backend with a fresh, empty directory in the store's temporary area.
    pub fn new(store: &Store) -> Result<ChrootBackend, SandboxError> {
        let setup = |message: String| SandboxError::Setup {
            backend: BACKEND,
            message,
        };
        let dir = store
            .temp_dir()
            .map_err(|e| setup(format!("create the root directory: {e}")))?;
        // The root must be searchable by every user a step may run as.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| setup(format!("chmod `{}`: {e}", dir.path().display())))?;
        Ok(ChrootBackend {
            stage: StageRoot::empty(BACKEND, dir.path())?,
            dir,
            helper: None,
        })
    }

    /// Uses `program` as the helper instead of this program (tests run the built binary).
    pub fn with_helper(mut self, program: PathBuf) -> ChrootBackend {
        self.helper = Some(program);
        self
    }

    /// The directory the stage is unpacked in.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Whether `chroot` is permitted here: tries it in a helper process.
    pub fn probe(store: &Store) -> Result<(), String> {
        let program = helper_program().map_err(|e| format!("find this program: {e}"))?;
        ChrootBackend::probe_with(&program, store)
    }

    /// [`ChrootBackend::probe`] with the helper program given.
    pub fn probe_with(program: &Path, store: &Store) -> Result<(), String> {
        let dir = store
            .temp_dir()
            .map_err(|e| format!("create a directory to chroot into: {e}"))?;
        let empty = dir.path().join("root");
        std::fs::create_dir(&empty).map_err(|e| format!("create `{}`: {e}", empty.display()))?;
        let payload = ChrootProbePayload {
            dir: empty.clone(),
            error_file: dir.path().join("error"),
        };
        let bytes = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
        let mut lines = Vec::new();
        let mut output = |line: &str| lines.push(line.to_string());
        let outcome = run_helper_program(
            program,
            BACKEND,
            MODE_CHROOT_PROBE,
            &bytes,
            &payload.error_file,
            &mut output,
        );
        let marked = payload.dir.join(CHROOT_PROBE_MARK).exists();
        match outcome {
            Ok((exit, _)) if exit.success() && marked => Ok(()),
            Ok((exit, _)) if exit.success() => Err(format!(
                "the chroot probe `{}` exited without reporting back: is it this builder?",
                program.display()
            )),
            Ok((exit, _)) => Err(format!(
                "the chroot probe ended with {exit}: {}",
                lines.join(" ")
            )),
            Err(SandboxError::Setup { message, .. }) => Err(message),
            Err(other) => Err(other.to_string()),
        }
    }
}

impl Backend for ChrootBackend {
    fn isolation(&self) -> Isolation {
        Isolation::Chroot
    }

    fn run(&mut self, step: Step<'_>) -> Result<StepResult, SandboxError> {
        let layers = step.layers;
        let prepare_started = std::time::Instant::now();
        self.stage.prepare(step.store, layers)?;
        let prepare_time = prepare_started.elapsed();
        let root = self.dir.path().to_path_buf();
        // Copied out so the provisions borrow the spec, not the step handed on below.
        let spec = step.spec;
        let etc = &spec.etc;
        let mut extra: Vec<Provision<'_>> = [
            ("/etc/hosts", &etc.hosts),
            ("/etc/resolv.conf", &etc.resolv_conf),
            ("/etc/hostname", &etc.hostname),
        ]
        .into_iter()
        .map(|(target, text)| Provision {
            target: target.to_string(),
            content: Content::File {
                bytes: text.as_bytes(),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        })
        .collect();
        extra.extend(super::DEVICES.iter().map(|(name, major, minor)| Provision {
            target: format!("/dev/{name}"),
            content: Content::Device {
                major: *major,
                minor: *minor,
            },
        }));
        let run = DirStep {
            backend: BACKEND,
            root: &root,
            chroot: true,
            skip: Vec::new(),
            extra,
            helper: self.helper.as_deref(),
        };
        let result = run_dir_step(run, step).map(|mut done| {
            done.prepare_time = prepare_time;
            done
        });
        match &result {
            Ok(done) if done.exit.success() => self.stage.stepped(layers, &done.entries),
            _ => self.stage.invalidate(),
        }
        result
    }
}
