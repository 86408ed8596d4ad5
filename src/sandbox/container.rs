//! The `container` backend: RUN steps on the file system of the builder's own disposable
//! container, where nothing may be mounted.
//!
//! The Action runs in a container of its own image; a GitHub runner gives it no privilege to
//! mount or create namespaces. So the stage is unpacked onto the container's root itself
//! (`/`), the step runs there as a plain child process, and its changes are found by
//! comparing file metadata before and after ([`rootdiff`](super::rootdiff)). Between steps the
//! root is kept when the next step's layers extend what is unpacked, and wiped otherwise
//! (`stageroot.rs`).
//!
//! What must survive: the builder's own files (`RIA_CONTAINER_KEEP`, colon-separated, by
//! default `/ria`; the running executable in any case), the store, the paths the builder
//! names ([`SelectOptions::protected`]) and every mount point (`/proc`, `/sys`, `/dev`, the
//! workspace, and `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`, which the engine
//! provides and which therefore stay the container's own and never reach a layer). A layer
//! that would delete one of them fails the step.
//!
//! Limits: no isolation from the builder (same PID space, network and host name, so
//! `RUN --network=none` fails the step); mounts are emulated (`emulate.rs`),
//! so a secret is written to the container's disk for the step's duration. Since it
//! overwrites `/`, the backend refuses to start unless [`ContainerBackend::detect`] sees the
//! builder's own image or an explicit request inside a container. Wiping `/` leaves only the
//! protected paths, so the builder's binary must not need anything else of its image (a
//! static binary under `/ria`).

use std::path::{Path, PathBuf};

use super::dirstep::{DirStep, run_dir_step};
use super::stageroot::StageRoot;
use super::{Backend, Isolation, SandboxError, SelectOptions, Step, StepResult};
use crate::store::Store;

const BACKEND: &str = "container";

/// The files the engine mounts into every container and a layer never holds.
pub const ENGINE_FILES: [&str; 3] = ["etc/hosts", "etc/resolv.conf", "etc/hostname"];

/// The environment variable the builder's image sets.
pub const MARKER_VARIABLE: &str = "RIA_CONTAINER";

/// The environment variable listing the builder's own paths (colon-separated).
pub const KEEP_VARIABLE: &str = "RIA_CONTAINER_KEEP";

/// Files container engines create in every container.
const CONTAINER_MARKERS: [&str; 2] = ["/.dockerenv", "/run/.containerenv"];

/// Where the builder's image installs it.
pub const DEFAULT_KEEP: &str = "/ria";

/// Runs steps on a container's own root; see the module documentation.
pub struct ContainerBackend {
    stage: StageRoot,
    helper: Option<PathBuf>,
}

impl ContainerBackend {
    /// Whether this backend may run here: the builder's image (`RIA_CONTAINER=1`) or
    /// `--isolation container`, and in both cases evidence of a container. The error says
    /// why not.
    pub fn detect(options: &SelectOptions) -> Result<(), String> {
        detect_reason(options).map(|_| ())
    }

    /// The backend on this container's root `/`, after [`ContainerBackend::detect`].
    pub fn new(store: &Store, options: &SelectOptions) -> Result<ContainerBackend, SandboxError> {
        ContainerBackend::with_root(Path::new("/"), store, options)
    }

    /// The backend on `root`: tests use a directory; `/` needs [`ContainerBackend::detect`]
    /// to pass.
    pub fn with_root(
        root: &Path,
        store: &Store,
        options: &SelectOptions,
    ) -> Result<ContainerBackend, SandboxError> {
        let canonical = std::fs::canonicalize(root).map_err(|e| SandboxError::Setup {
            backend: BACKEND,
            message: format!("failed to resolve the root `{}`: {e}", root.display()),
        })?;
        if canonical == Path::new("/") {
            ContainerBackend::detect(options).map_err(|why| {
                SandboxError::Unavailable(format!("the container backend may not run here: {why}"))
            })?;
        }
        let mut protected = keep_paths(options);
        protected.push(store.root().to_path_buf());
        // The engines' own markers (Docker's is a plain file, not a mount): what
        // `detect` looks for next time.
        protected.extend(CONTAINER_MARKERS.iter().map(PathBuf::from));
        // The running program, wherever it is installed: every step re-executes it.
        protected.extend(std::env::current_exe().ok());
        protected.extend(options.protected.iter().cloned());
        Ok(ContainerBackend {
            stage: StageRoot::new(BACKEND, &canonical, &protected)?,
            helper: None,
        })
    }

    /// Uses `program` as the helper instead of this program (tests run the built binary).
    pub fn with_helper(mut self, program: PathBuf) -> ContainerBackend {
        self.helper = Some(program);
        self
    }

    /// The root steps run on.
    pub fn root(&self) -> &Path {
        self.stage.root()
    }
}

impl Backend for ContainerBackend {
    fn isolation(&self) -> Isolation {
        Isolation::Container
    }

    fn run(&mut self, step: Step<'_>) -> Result<StepResult, SandboxError> {
        let layers = step.layers;
        let prepare_started = std::time::Instant::now();
        self.stage.prepare(step.store, layers)?;
        let prepare_time = prepare_started.elapsed();
        let root = self.stage.root().to_path_buf();
        let mut skip = self.stage.protected_now()?;
        skip.extend(ENGINE_FILES.iter().map(|file| root.join(file)));
        let run = DirStep {
            backend: BACKEND,
            root: &root,
            // Only a test root needs it: on `/`, the step simply runs in place.
            chroot: root != Path::new("/"),
            skip,
            extra: Vec::new(),
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

/// A variable from the options' overrides or the process environment.
fn variable(options: &SelectOptions, name: &str) -> Option<String> {
    match &options.env {
        Some(env) => env.get(name).cloned(),
        None => std::env::var(name).ok(),
    }
}

/// The builder's own paths: `RIA_CONTAINER_KEEP` or `/ria`.
fn keep_paths(options: &SelectOptions) -> Vec<PathBuf> {
    let value = variable(options, KEEP_VARIABLE).unwrap_or_else(|| DEFAULT_KEEP.to_string());
    value
        .split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// Why the backend may run here (for the selection's log line), or why not.
pub(crate) fn detect_reason(options: &SelectOptions) -> Result<String, String> {
    let marked = variable(options, MARKER_VARIABLE).as_deref() == Some("1");
    let explicit = options.isolation == Isolation::Container;
    decide(marked, explicit, container_evidence().as_deref())
}

/// The rule of [`ContainerBackend::detect`] on its inputs.
///
/// The marker is required even with `--isolation container`: this backend deletes
/// everything on the root file system but the builder's own files and the mounts, and a
/// development container, a CI job's container or a machine that is itself a container
/// all look like containers. Only an image made for it (the Action's sets the marker)
/// says the root is disposable.
fn decide(marked: bool, explicit: bool, evidence: Option<&str>) -> Result<String, String> {
    if !marked {
        let asked = if explicit {
            "`--isolation container` was given but "
        } else {
            ""
        };
        return Err(format!(
            "{asked}{MARKER_VARIABLE}=1 is not set: this backend deletes everything on the root \
             file system except the builder's own files and mounts, so it runs only in a \
             disposable container made for it (the builder's own image sets the variable)"
        ));
    }
    let asked = if explicit {
        format!("{MARKER_VARIABLE}=1 and --isolation container")
    } else {
        format!("{MARKER_VARIABLE}=1")
    };
    match evidence {
        Some(evidence) => Ok(format!("{asked} in a container: {evidence}")),
        None => Err(format!(
            "{asked}, but there is no sign of a container (no `/.dockerenv`, no \
             `/run/.containerenv`, no `container=` in the environment of PID 1): on a host this \
             backend would overwrite the host's root file system"
        )),
    }
}

/// What shows that this process runs in a container, if anything does.
fn container_evidence() -> Option<String> {
    for marker in CONTAINER_MARKERS {
        if Path::new(marker).exists() {
            return Some(format!("`{marker}` exists"));
        }
    }
    let environ = std::fs::read("/proc/1/environ").ok()?;
    environ
        .split(|b| *b == 0)
        .find(|pair| pair.starts_with(b"container="))
        .map(|pair| format!("PID 1 has `{}`", String::from_utf8_lossy(pair)))
}

#[cfg(test)]
#[path = "container_tests.rs"]
mod tests;
