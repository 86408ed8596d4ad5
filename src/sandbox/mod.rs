//! Running RUN steps in isolation and capturing what they changed as layer entries.
//!
//! A [`Backend`] takes one step (a [`RunSpec`]: the command, its environment, user, mounts)
//! on a stage's layers and returns the step's changes as [`LayerEntry`]s, ready for the layer
//! writer. Three backends exist, picked by [`select`](fn@select):
//! - `namespace` (`namespace.rs`): new mount, PID, IPC and UTS namespaces; the root is an
//!   overlay of the layers unpacked once into the store; the snapshot is the overlay's upper
//!   directory (`upper.rs`), so it costs what the step changed.
//! - `container` (`container.rs`): inside a disposable container that may not mount; the
//!   stage is unpacked onto the container's own root and changes are found by comparing file
//!   metadata before and after (`rootdiff.rs`).
//! - `chroot` (`chroot.rs`): the stage unpacked into a private directory, `chroot` into it,
//!   the same metadata comparison.
//!
//! Every backend runs the command through this binary's hidden `__sandbox` entry points, so the
//! builder itself (multi-threaded) never forks: [`exec::exec_step`] is the last code that runs
//! before the user's program replaces the process.

pub mod chroot;
pub mod container;
mod dirstep;
mod emulate;
pub mod exec;
pub mod helper;
pub mod namespace;
pub mod process;
pub mod rootdiff;
pub mod select;
mod stageroot;
#[cfg(test)]
mod test_support;
pub mod unpack;
pub mod upper;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use chroot::ChrootBackend;
pub use container::ContainerBackend;
pub use select::select;

use crate::build::LayerRecord;
use crate::layer::writer::LayerEntry;
use crate::store::Store;

/// The device nodes of a minimal `/dev`, as Docker provides them: name, major, minor.
pub(crate) const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// `--isolation`: how RUN steps are isolated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// The strongest backend available here.
    #[default]
    Auto,
    /// Namespaces and an overlay root.
    Namespace,
    /// The builder's own disposable container.
    Container,
    /// `chroot` into a private copy of the stage.
    Chroot,
}

impl Isolation {
    /// The name used on the command line and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Auto => "auto",
            Isolation::Namespace => "namespace",
            Isolation::Container => "container",
            Isolation::Chroot => "chroot",
        }
    }

    /// Parses `auto|namespace|container|chroot`.
    pub fn parse(text: &str) -> Result<Isolation, String> {
        match text {
            "auto" => Ok(Isolation::Auto),
            "namespace" => Ok(Isolation::Namespace),
            "container" => Ok(Isolation::Container),
            "chroot" => Ok(Isolation::Chroot),
            other => Err(format!(
                "unknown isolation `{other}`: expected auto, namespace, container or chroot"
            )),
        }
    }
}

/// The network a step sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The host's network, as `docker build` gives by default.
    #[default]
    Host,
    /// Only a loopback interface (`RUN --network=none`).
    None,
}

/// What a step runs and as whom; everything is already resolved against the stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The program and its arguments; `args[0]` is looked up in the `PATH` of `env` inside
    /// the root when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs, the whole environment.
    pub env: Vec<String>,
    /// The absolute working directory inside the root (created when missing).
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
    /// The network.
    pub network: Network,
    /// Mounts, in the order given; later targets may be inside earlier ones.
    pub mounts: Vec<RunMount>,
    /// Contents for `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, provided for the
    /// step and never part of its layer.
    pub etc: EtcFiles,
    /// The host name (also in `/etc/hostname`).
    pub hostname: String,
}

/// The files Docker provides to every container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcFiles {
    /// `/etc/hosts`.
    pub hosts: String,
    /// `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// `/etc/hostname`.
    pub hostname: String,
}

/// One mount of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMount {
    /// The absolute path inside the root.
    pub target: String,
    /// What appears there.
    pub source: MountSource,
    /// Whether writes are refused. Writable mounts of layers or the context keep their
    /// writes only for the step; a writable cache or host directory keeps them.
    pub read_only: bool,
}

/// What a [`RunMount`] attaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSource {
    /// A directory (or file) of the host, used in place: cache directories, which persist.
    HostPath(PathBuf),
    /// A directory or file of the host whose writes are discarded after the step (the build
    /// context, a named context directory): read-only, or writable over a private copy.
    Scratch(PathBuf),
    /// A path inside the merged tree of some layers (another stage, an image): `layers` are
    /// directories of layers unpacked with [`unpack::unpacked_layers`], lowest first.
    Layers {
        /// Unpacked layer directories, lowest first.
        dirs: Vec<PathBuf>,
        /// The path inside their tree, relative, `/`-separated (empty for the root).
        subpath: String,
    },
    /// An empty tmpfs.
    Tmpfs {
        /// The size limit in bytes.
        size: Option<u64>,
    },
    /// A file whose bytes never touch a disk: a build secret.
    Secret {
        /// The secret's bytes (never logged: `RunMount`'s `Debug` is only used in tests).
        #[serde(with = "secret_bytes")]
        bytes: Vec<u8>,
        /// The file's mode.
        mode: u32,
        /// Its owner.
        uid: u32,
        /// Its group.
        gid: u32,
    },
}

/// Secrets travel to the sandbox as base64 inside the JSON on a pipe.
mod secret_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// How a step's process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// Whether the step succeeded.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// One step handed to a backend.
pub struct Step<'a> {
    /// The content store (layer blobs, unpacked layers, temporary directories).
    pub store: &'a Store,
    /// The stage's layers, lowest first; their blobs are in the store.
    pub layers: &'a [LayerRecord],
    /// The merged view of `layers` (the builder keeps it; rebuilding it costs time in
    /// proportion to the base).
    pub view: &'a crate::layer::index::FsView,
    /// What to run.
    pub spec: &'a RunSpec,
    /// SOURCE_DATE_EPOCH: times written into the layer are clamped to it.
    pub epoch: Option<i64>,
    /// Receives each line the step prints (stdout and stderr merged), without the newline.
    pub output: &'a mut dyn FnMut(&str),
}

/// What a step did.
pub struct StepResult {
    /// How the process ended.
    pub exit: Exit,
    /// The last lines of output, for the error message of a failed step.
    pub tail: Vec<String>,
    /// The step's changes; empty when it failed. File sources point into `keep`.
    pub entries: Vec<LayerEntry>,
    /// Keeps the files `entries` read from alive until the layer is written.
    pub keep: Option<tempfile::TempDir>,
    /// How long finding the changes took (not the command, not writing the layer).
    pub snapshot_time: std::time::Duration,
    /// How long preparing the root took (unpacking layers not unpacked before).
    pub prepare_time: std::time::Duration,
}

/// Why a step could not be run (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The sandbox could not be set up.
    #[error("failed to set up the {backend} sandbox: {message}")]
    Setup {
        /// The backend's name.
        backend: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The step's changes could not be read.
    #[error("failed to snapshot the step's changes: {0}")]
    Snapshot(String),
    /// A layer could not be unpacked.
    #[error("failed to unpack layer {digest}: {message}")]
    Unpack {
        /// The layer's digest.
        digest: String,
        /// What went wrong.
        message: String,
    },
    /// The backend asked for is not usable here.
    #[error("{0}")]
    Unavailable(String),
}

/// A way of running steps.
pub trait Backend {
    /// Which backend this is.
    fn isolation(&self) -> Isolation;
    /// Runs one step and captures its changes.
    fn run(&mut self, step: Step<'_>) -> Result<StepResult, SandboxError>;
}

/// Extra state the builder passes when it needs a backend.
#[derive(Clone, Debug, Default)]
pub struct SelectOptions {
    /// What `--isolation` asked for.
    pub isolation: Isolation,
    /// Host paths the container backend must never touch besides the mounted ones (the
    /// store, the context, outputs).
    pub protected: Vec<PathBuf>,
    /// Environment overrides for detection (tests); `None` reads the process environment.
    pub env: Option<BTreeMap<String, String>>,
}
#[cfg(test)]
mod tests;
