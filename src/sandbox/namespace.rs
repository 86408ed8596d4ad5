//! The `namespace` backend: each step in new mount, PID, IPC and UTS namespaces (and a new
//! network namespace for `--network=none`), on an overlay of the stage's unpacked layers.
//!
//! Processes, all of them this binary:
//! - the builder writes a `Payload` (JSON) to `__sandbox namespace` and streams its output;
//! - that helper unshares the namespaces, sets a parent-death signal and starts
//!   `__sandbox init`, the first process of the new PID namespace, passing the payload on;
//! - init mounts the overlay root (layers as lower directories, a fresh upper directory),
//!   `/proc`, a minimal `/dev`, a read-only `/sys`, the step's `/etc` files and `--mount`s,
//!   pivots into the root and becomes the step's program (PID 1).
//!
//! When PID 1 exits the kernel kills everything else in its PID namespace, and when the helper
//! exits the mount namespace goes away with every mount in it: a step can leave no process
//! and no mount behind, whatever it does, and a killed builder takes its steps with it
//! (parent-death signals). The layer is the upper directory (`upper.rs`).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use rustix::fs::{FileType, Gid, Mode, OFlags, ResolveFlags, Uid};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::process::Signal;
use rustix::thread::UnshareFlags;
use serde::{Deserialize, Serialize};

use super::exec::{ExecRequest, exec_step};
use super::process::{self, HELPER_COMMAND};
use super::unpack::{unpacked_layers, unpacked_root};
use super::upper::snapshot_upper;
use super::{Backend, Isolation, MountSource, Network, SandboxError, Step, StepResult};
use crate::store::Store;

const BACKEND: &str = "namespace";

/// The overlay mount data is limited to one page; longer layer lists need fewer layers.
const MOUNT_DATA_LIMIT: usize = 4000;

/// Runs steps in namespaces over overlay roots.
pub struct NamespaceBackend {
    _private: (),
}

impl NamespaceBackend {
    /// The backend; [`probe`] says whether it can work here.
    pub fn new() -> NamespaceBackend {
        NamespaceBackend { _private: () }
    }
}

impl Default for NamespaceBackend {
    fn default() -> Self {
        NamespaceBackend::new()
    }
}

/// Whether namespaces and overlay mounts are permitted: starts a helper that unshares and
/// mounts an overlay on a scratch directory of the store.
pub fn probe(store: &Store) -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        // FIXME: without root this backend is refused; fixed: a user namespace with the
        // caller's subordinate ids (newuidmap) and overlay's `userxattr`.
        return Err("not running as root (rootless namespaces are not supported yet)".into());
    }
    let dir = store.temp_dir().map_err(|e| e.to_string())?;
    for name in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir(dir.path().join(name)).map_err(|e| e.to_string())?;
    }
    let error_file = dir.path().join("error");
    let payload = serde_json::to_vec(&ProbeRequest {
        dir: dir.path().to_path_buf(),
        error_file: error_file.clone(),
    })
    .map_err(|e| e.to_string())?;
    let mut sink = |_: &str| {};
    match process::run_helper(BACKEND, "probe-namespace", &payload, &error_file, &mut sink) {
        Ok((exit, _)) if exit.success() => Ok(()),
        Ok((exit, tail)) => Err(format!("probe {exit}: {}", tail.join(" "))),
        Err(SandboxError::Setup { message, .. }) => Err(message),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Serialize, Deserialize)]
struct ProbeRequest {
    dir: PathBuf,
    error_file: PathBuf,
}

/// Everything init needs, with every host path resolved.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// The directory holding the unpacked layers; `lowers` are names inside it.
    layers_root: PathBuf,
    /// Lower layer names, topmost first; empty for a stage with no layers.
    lowers: Vec<String>,
    /// The step's private directory (upper, work, merged, etc files, mount staging).
    step_dir: PathBuf,
    /// Where setup failures are written.
    error_file: PathBuf,
    /// Where init records the mount points it had to create.
    created_file: PathBuf,
    network: Network,
    hostname: String,
    mounts: Vec<super::RunMount>,
    exec: ExecRequest,
}

impl Backend for NamespaceBackend {
    fn isolation(&self) -> Isolation {
        Isolation::Namespace
    }

    fn run(&mut self, step: Step<'_>) -> Result<StepResult, SandboxError> {
        let setup = |message: String| SandboxError::Setup {
            backend: BACKEND,
            message,
        };
        let prepare_started = std::time::Instant::now();
        let (dirs, _) = unpacked_layers(step.store, step.layers)?;
        let prepare_time = prepare_started.elapsed();
        let temp = step.store.temp_dir().map_err(|e| setup(e.to_string()))?;
        let step_dir = temp.path().to_path_buf();
        for name in ["upper", "work", "merged", "lower", "etc", "mnt"] {
            std::fs::create_dir(step_dir.join(name))
                .map_err(|e| setup(format!("create `{}`: {e}", step_dir.join(name).display())))?;
        }
        let etc = &step.spec.etc;
        for (name, content) in [
            ("hosts", &etc.hosts),
            ("resolv.conf", &etc.resolv_conf),
            ("hostname", &etc.hostname),
        ] {
            let path = step_dir.join("etc").join(name);
            std::fs::write(&path, content)
                .map_err(|e| setup(format!("write `{}`: {e}", path.display())))?;
        }
        let layers_root = unpacked_root(step.store);
        let lowers = dirs
            .iter()
            .rev()
            .map(|d| {
                d.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let error_file = step_dir.join("error");
        let created_file = step_dir.join("created");
        let payload = Payload {
            layers_root,
            lowers,
            step_dir: step_dir.clone(),
            error_file: error_file.clone(),
            created_file: created_file.clone(),
            network: step.spec.network,
            hostname: step.spec.hostname.clone(),
            mounts: step.spec.mounts.clone(),
            exec: ExecRequest::from_spec(step.spec, None),
        };
        let bytes = serde_json::to_vec(&payload).map_err(|e| setup(e.to_string()))?;
        drop(payload);
        let (exit, tail) =
            process::run_helper(BACKEND, "namespace", &bytes, &error_file, step.output)?;
        drop(bytes);
        if !exit.success() {
            return Ok(StepResult {
                exit,
                tail,
                entries: Vec::new(),
                keep: None,
                snapshot_time: std::time::Duration::ZERO,
                prepare_time,
            });
        }
        let snapshot_started = std::time::Instant::now();
        let created: Vec<String> = match std::fs::read(&created_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| setup(e.to_string()))?,
            Err(e) => return Err(setup(format!("read the step's mount points: {e}"))),
        };
        let entries = snapshot_upper(&step_dir.join("upper"), &created, step.view, step.epoch)?;
        Ok(StepResult {
            exit,
            tail,
            entries,
            keep: Some(temp),
            snapshot_time: snapshot_started.elapsed(),
            prepare_time,
        })
    }
}

/// `__sandbox probe-namespace`: unshare and mount an overlay, then exit.
pub fn probe_main() -> ExitCode {
    let request: ProbeRequest = match read_payload() {
        Ok(request) => request,
        Err(message) => return fail_unreported(&message),
    };
    let run = || -> Result<(), String> {
        unshare(UnshareFlags::NEWNS | UnshareFlags::NEWPID | UnshareFlags::NEWIPC)?;
        rustix::mount::mount_change(
            "/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )
        .map_err(|e| format!("make mounts private: {e}"))?;
        let dir = &request.dir;
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            dir.join("lower").display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        mount_overlay(&dir.join("merged"), &data)
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            process::report_setup_error(&request.error_file, &message);
            ExitCode::FAILURE
        }
    }
}

/// `__sandbox namespace`: unshare, then run init as the new PID namespace's first process.
pub fn namespace_main() -> ExitCode {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        return fail_unreported(&format!("read the step: {e}"));
    }
    let payload: Payload = match serde_json::from_slice(&bytes) {
        Ok(payload) => payload,
        Err(e) => return fail_unreported(&format!("parse the step: {e}")),
    };
    let error_file = payload.error_file.clone();
    let fail = |message: String| {
        process::report_setup_error(&error_file, &message);
        ExitCode::FAILURE
    };
    let mut flags =
        UnshareFlags::NEWNS | UnshareFlags::NEWPID | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS;
    if payload.network == Network::None {
        // Init brings the new namespace's loopback up.
        flags |= UnshareFlags::NEWNET;
    }
    if let Err(message) = unshare(flags) {
        return fail(message);
    }
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(Signal::KILL)) {
        return fail(format!("set the parent-death signal: {e}"));
    }
    let program = match process::helper_program() {
        Ok(program) => program,
        Err(e) => return fail(format!("find this program: {e}")),
    };
    let mut child = match Command::new(&program)
        .arg(HELPER_COMMAND)
        .arg("init")
        .stdin(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return fail(format!("start the step's first process: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&bytes);
    }
    bytes.fill(0);
    let status = match child.wait() {
        Ok(status) => status,
        Err(e) => return fail(format!("wait for the step: {e}")),
    };
    if let Some(code) = status.code() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    if let Some(signal) = status.signal() {
        // Die the same way, so the builder sees the signal rather than an exit code.
        if let Some(signal) = Signal::from_named_raw(signal) {
            let _ = rustix::process::kill_process(rustix::process::getpid(), signal);
        }
        return ExitCode::from((128 + signal).clamp(0, 255) as u8);
    }
    ExitCode::FAILURE
}

/// `__sandbox init`: mounts, pivot_root, then the step's program.
pub fn init_main() -> ExitCode {
    let payload: Payload = match read_payload() {
        Ok(payload) => payload,
        Err(message) => return fail_unreported(&message),
    };
    // Kept open across pivot_root, so failures after it still reach the builder; an empty
    // error file means nothing failed.
    let mut error = match File::create(&payload.error_file) {
        Ok(file) => file,
        Err(e) => return fail_unreported(&format!("create the error file: {e}")),
    };
    let message = match set_up(&payload) {
        Ok(()) => exec_step(&payload.exec),
        Err(message) => message,
    };
    let _ = error.write_all(message.as_bytes());
    ExitCode::FAILURE
}

/// Reads a JSON payload from standard input and replaces standard input with `/dev/null`.
fn read_payload<T: for<'de> Deserialize<'de>>() -> Result<T, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("read the step: {e}"))?;
    let value = serde_json::from_slice(&bytes).map_err(|e| format!("parse the step: {e}"))?;
    bytes.fill(0);
    Ok(value)
}

fn fail_unreported(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "rust-image-action sandbox: {message}");
    ExitCode::from(125)
}

#[allow(unsafe_code)]
fn unshare(flags: UnshareFlags) -> Result<(), String> {
    // SAFETY: the helper processes are single-threaded and `flags` never holds
    // `UnshareFlags::FILES`, the one flag that makes unshare unsound for other threads.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(|e| format!("unshare namespaces: {e}"))
}

fn mount_overlay(target: &Path, data: &str) -> Result<(), String> {
    let data = CString::new(data).map_err(|_| "a path contains a NUL byte".to_string())?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
    .map_err(|e| format!("mount the overlay at `{}`: {e}", target.display()))
}

/// Escapes a path for overlay's option syntax (`,`, `:` and `\` are special).
fn overlay_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Everything init does before the program: the root, its special file systems, the mounts.
fn set_up(payload: &Payload) -> Result<(), String> {
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(|e| format!("make mounts private: {e}"))?;
    if payload.network == Network::None {
        loopback_up().map_err(|e| format!("bring up the loopback interface: {e}"))?;
    }
    let step = &payload.step_dir;
    let merged = step.join("merged");
    // Relative lower names keep the mount data short; they resolve against this directory.
    std::env::set_current_dir(&payload.layers_root)
        .map_err(|e| format!("enter `{}`: {e}", payload.layers_root.display()))?;
    let lowers = if payload.lowers.is_empty() {
        overlay_path(&step.join("lower").to_string_lossy())
    } else {
        payload
            .lowers
            .iter()
            .map(|l| overlay_path(l))
            .collect::<Vec<_>>()
            .join(":")
    };
    let data = format!(
        "lowerdir={lowers},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off",
        overlay_path(&step.join("upper").to_string_lossy()),
        overlay_path(&step.join("work").to_string_lossy()),
    );
    if data.len() > MOUNT_DATA_LIMIT {
        // FIXME: a stage of more than about 60 layers cannot be mounted; fixed: add lower
        // layers one by one with fsconfig's `lowerdir+` (Linux 6.8) or merge old layers.
        return Err(format!(
            "the stage has {} layers, more than one overlay mount can stack here",
            payload.lowers.len()
        ));
    }
    mount_overlay(&merged, &data)?;
    let root = Root::open(&merged)?;
    let mut created = BTreeSet::new();

    let proc_dir = root.ensure(&mut created, "proc", Kind::Dir)?;
    mount_at(
        &proc_dir,
        "proc",
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        "",
    )?;
    let dev = root.ensure(&mut created, "dev", Kind::Dir)?;
    mount_at(
        &dev,
        "tmpfs",
        "tmpfs",
        MountFlags::NOSUID | MountFlags::STRICTATIME,
        "mode=755,size=65536k",
    )?;
    populate_dev(&root)?;
    let sys = root.ensure(&mut created, "sys", Kind::Dir)?;
    let sys_flags =
        MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    if mount_at(&sys, "sysfs", "sysfs", sys_flags, "").is_err() {
        bind_at(Path::new("/sys"), &root, "sys", &sys, true, true)?;
    }
    for (name, target) in [
        ("hosts", "etc/hosts"),
        ("resolv.conf", "etc/resolv.conf"),
        ("hostname", "etc/hostname"),
    ] {
        let fd = root.ensure(&mut created, target, Kind::File)?;
        bind_at(
            &step.join("etc").join(name),
            &root,
            target,
            &fd,
            false,
            false,
        )?;
    }
    for (number, mount) in payload.mounts.iter().enumerate() {
        let staging = step.join("mnt").join(number.to_string());
        std::fs::create_dir(&staging)
            .map_err(|e| format!("create `{}`: {e}", staging.display()))?;
        attach(&root, &mut created, mount, &staging)?;
    }
    let created: Vec<&String> = created.iter().collect();
    let list = serde_json::to_vec(&created).map_err(|e| e.to_string())?;
    std::fs::write(&payload.created_file, list)
        .map_err(|e| format!("write `{}`: {e}", payload.created_file.display()))?;
    rustix::system::sethostname(payload.hostname.as_bytes())
        .map_err(|e| format!("set the host name: {e}"))?;
    std::env::set_current_dir(&merged).map_err(|e| format!("enter the root: {e}"))?;
    rustix::process::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH)
        .map_err(|e| format!("detach the old root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("enter the new root: {e}"))?;
    let null = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("open /dev/null: {e}"))?;
    rustix::stdio::dup2_stdin(&null).map_err(|e| format!("replace standard input: {e}"))?;
    Ok(())
}

/// Sets `IFF_UP` on `lo` (always interface 1 in a new network namespace) with one rtnetlink
/// `RTM_NEWLINK` request, as `ip link set lo up` would, and waits for the kernel's answer.
fn loopback_up() -> Result<(), String> {
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, netlink};
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const NLMSG_ERROR: u16 = 2;
    const IFF_UP: u32 = 1;
    let socket = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)
        .map_err(|e| format!("open an rtnetlink socket: {e}"))?;
    // struct nlmsghdr (len, type, flags, seq, pid) then struct ifinfomsg (family, pad,
    // type, index, flags, change), native endian as the kernel reads them.
    let mut message = Vec::with_capacity(32);
    message.extend_from_slice(&32u32.to_ne_bytes());
    message.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    message.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    message.extend_from_slice(&1u32.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(&[0u8, 0u8]);
    message.extend_from_slice(&0u16.to_ne_bytes());
    message.extend_from_slice(&1i32.to_ne_bytes());
    message.extend_from_slice(&IFF_UP.to_ne_bytes());
    message.extend_from_slice(&IFF_UP.to_ne_bytes());
    let kernel = netlink::SocketAddrNetlink::new(0, 0);
    rustix::net::sendto(&socket, &message, SendFlags::empty(), &kernel)
        .map_err(|e| format!("send the request: {e}"))?;
    let mut answer = [0u8; 256];
    let (size, _) = rustix::net::recv(&socket, &mut answer[..], RecvFlags::empty())
        .map_err(|e| format!("read the answer: {e}"))?;
    if size < 20 || u16::from_ne_bytes([answer[4], answer[5]]) != NLMSG_ERROR {
        return Err("unexpected answer from the kernel".to_string());
    }
    match i32::from_ne_bytes([answer[16], answer[17], answer[18], answer[19]]) {
        0 => Ok(()),
        error => Err(std::io::Error::from_raw_os_error(-error).to_string()),
    }
}

/// Attaches one `--mount` (or secret) at its target.
fn attach(
    root: &Root,
    created: &mut BTreeSet<String>,
    mount: &super::RunMount,
    staging: &Path,
) -> Result<(), String> {
    let target = mount.target.trim_start_matches('/');
    match &mount.source {
        MountSource::HostPath(path) => {
            let kind = if path.is_dir() { Kind::Dir } else { Kind::File };
            let fd = root.ensure(created, target, kind)?;
            bind_at(path, root, target, &fd, mount.read_only, false)
        }
        MountSource::Scratch(path) if mount.read_only || !path.is_dir() => {
            let kind = if path.is_dir() { Kind::Dir } else { Kind::File };
            let fd = root.ensure(created, target, kind)?;
            bind_at(path, root, target, &fd, true, false)
        }
        MountSource::Scratch(path) => {
            // Writable: an overlay whose upper layer is thrown away with the step.
            let merged = overlay_in(staging, &overlay_path(&path.to_string_lossy()))?;
            let fd = root.ensure(created, target, Kind::Dir)?;
            bind_at(&merged, root, target, &fd, false, false)
        }
        MountSource::Layers { dirs, subpath } => {
            let lowers = if dirs.is_empty() {
                let empty = staging.join("empty");
                std::fs::create_dir(&empty).map_err(|e| e.to_string())?;
                overlay_path(&empty.to_string_lossy())
            } else {
                dirs.iter()
                    .rev()
                    .map(|d| overlay_path(&d.to_string_lossy()))
                    .collect::<Vec<_>>()
                    .join(":")
            };
            let merged = overlay_in(staging, &lowers)?;
            let tree = Root::open(&merged)?;
            let source = tree.open_existing(subpath)?;
            let source_path = fd_path(&source);
            let kind = if Path::new(&source_path).is_dir() {
                Kind::Dir
            } else {
                Kind::File
            };
            let fd = root.ensure(created, target, kind)?;
            bind_at(
                Path::new(&source_path),
                root,
                target,
                &fd,
                mount.read_only,
                false,
            )
        }
        MountSource::Tmpfs { size } => {
            let fd = root.ensure(created, target, Kind::Dir)?;
            let data = match size {
                Some(size) => format!("mode=1777,size={size}"),
                None => "mode=1777".to_string(),
            };
            mount_at(
                &fd,
                "tmpfs",
                "tmpfs",
                MountFlags::NOSUID | MountFlags::NODEV,
                &data,
            )
        }
        MountSource::Secret {
            bytes,
            mode,
            uid,
            gid,
        } => {
            // The bytes go to a tmpfs private to this mount namespace, never to a disk.
            mount_path(
                staging,
                "tmpfs",
                "tmpfs",
                MountFlags::NOSUID | MountFlags::NODEV,
                "mode=700,size=1m",
            )?;
            let file = staging.join("secret");
            std::fs::write(&file, bytes).map_err(|e| format!("write the secret: {e}"))?;
            rustix::fs::chown(&file, Some(Uid::from_raw(*uid)), Some(Gid::from_raw(*gid)))
                .map_err(|e| format!("chown the secret: {e}"))?;
            rustix::fs::chmod(&file, Mode::from_raw_mode(*mode))
                .map_err(|e| format!("chmod the secret: {e}"))?;
            let fd = root.ensure(created, target, Kind::File)?;
            bind_at(&file, root, target, &fd, true, false)
        }
    }
}

/// Mounts an overlay of `lowers` with a private upper layer under `staging`.
fn overlay_in(staging: &Path, lowers: &str) -> Result<PathBuf, String> {
    let (upper, work, merged) = (
        staging.join("upper"),
        staging.join("work"),
        staging.join("merged"),
    );
    for dir in [&upper, &work, &merged] {
        std::fs::create_dir(dir).map_err(|e| format!("create `{}`: {e}", dir.display()))?;
    }
    let data = format!(
        "lowerdir={lowers},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off",
        overlay_path(&upper.to_string_lossy()),
        overlay_path(&work.to_string_lossy()),
    );
    mount_overlay(&merged, &data)?;
    Ok(merged)
}

/// The `/proc/self/fd` path of an `O_PATH` descriptor, for mounting onto exactly the
/// resolved object whatever symlinks its path had.
fn fd_path(fd: &OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn mount_at(
    fd: &OwnedFd,
    source: &str,
    fstype: &str,
    flags: MountFlags,
    data: &str,
) -> Result<(), String> {
    mount_path(Path::new(&fd_path(fd)), source, fstype, flags, data)
}

fn mount_path(
    target: &Path,
    source: &str,
    fstype: &str,
    flags: MountFlags,
    data: &str,
) -> Result<(), String> {
    let data = CString::new(data).map_err(|_| "mount data contains a NUL byte".to_string())?;
    rustix::mount::mount(source, target, fstype, flags, data.as_c_str())
        .map_err(|e| format!("mount {fstype} at `{}`: {e}", target.display()))
}

/// Binds `source` onto `path` of `root` (already opened as `fd`); a read-only bind is then
/// remounted through a fresh lookup of `path`, which lands on the new mount (the old
/// descriptor still names the directory underneath it).
fn bind_at(
    source: &Path,
    root: &Root,
    path: &str,
    fd: &OwnedFd,
    read_only: bool,
    recursive: bool,
) -> Result<(), String> {
    let target = fd_path(fd);
    let result = if recursive {
        rustix::mount::mount_bind_recursive(source, target.as_str())
    } else {
        rustix::mount::mount_bind(source, target.as_str())
    };
    result.map_err(|e| format!("bind `{}` at `/{path}`: {e}", source.display()))?;
    if read_only {
        let mounted = root.open_existing(path)?;
        let flags = MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID;
        rustix::mount::mount_remount(fd_path(&mounted).as_str(), flags, "")
            .map_err(|e| format!("make `/{path}` read-only: {e}"))?;
    }
    Ok(())
}

/// The device nodes of a minimal `/dev`, as Docker provides them.
fn populate_dev(root: &Root) -> Result<(), String> {
    let dev = root.open_existing("dev")?;
    for (name, major, minor) in super::DEVICES {
        let path = format!("{}/{name}", fd_path(&dev));
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path.as_str(),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(major, minor),
        )
        .map_err(|e| format!("create /dev/{name}: {e}"))?;
        rustix::fs::chmod(path.as_str(), Mode::from_raw_mode(0o666))
            .map_err(|e| format!("chmod /dev/{name}: {e}"))?;
    }
    let base = fd_path(&dev);
    for dir in ["pts", "shm"] {
        std::fs::create_dir(format!("{base}/{dir}"))
            .map_err(|e| format!("create /dev/{dir}: {e}"))?;
    }
    mount_path(
        Path::new(&format!("{base}/pts")),
        "devpts",
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )?;
    mount_path(
        Path::new(&format!("{base}/shm")),
        "shm",
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        "mode=1777,size=65536k",
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, format!("{base}/{link}"))
            .map_err(|e| format!("create /dev/{link}: {e}"))?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

/// The step's root, with paths resolved inside it (`RESOLVE_IN_ROOT`), so that no symlink
/// in the image can point a mount outside it.
struct Root {
    fd: OwnedFd,
}

impl Root {
    fn open(path: &Path) -> Result<Root, String> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("open `{}`: {e}", path.display()))?;
        Ok(Root { fd })
    }

    fn resolve(&self, path: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let path = if path.is_empty() { "." } else { path };
        rustix::fs::openat2(
            self.fd.as_fd(),
            path,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    fn open_existing(&self, path: &str) -> Result<OwnedFd, String> {
        self.resolve(path, OFlags::PATH)
            .map_err(|e| format!("open `/{path}` in the step's root: {e}"))
    }

    /// Opens `path` (as `O_PATH`), creating it and missing parents, and records what it
    /// created so the snapshot leaves those mount points out.
    fn ensure(
        &self,
        created: &mut BTreeSet<String>,
        path: &str,
        kind: Kind,
    ) -> Result<OwnedFd, String> {
        if let Ok(fd) = self.resolve(path, OFlags::PATH) {
            return Ok(fd);
        }
        let mut so_far = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let parent = self
                .resolve(&so_far, OFlags::PATH | OFlags::DIRECTORY)
                .map_err(|e| format!("open `/{so_far}` in the step's root: {e}"))?;
            let next = if so_far.is_empty() {
                part.to_string()
            } else {
                format!("{so_far}/{part}")
            };
            let exists =
                rustix::fs::statat(parent.as_fd(), *part, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok();
            if !exists {
                if last && kind == Kind::File {
                    rustix::fs::mknodat(
                        parent.as_fd(),
                        *part,
                        FileType::RegularFile,
                        Mode::from_raw_mode(0o644),
                        0,
                    )
                    .map_err(|e| format!("create the mount point `/{next}`: {e}"))?;
                } else {
                    rustix::fs::mkdirat(parent.as_fd(), *part, Mode::from_raw_mode(0o755))
                        .map_err(|e| format!("create the mount point `/{next}`: {e}"))?;
                }
                created.insert(next.clone());
            }
            so_far = next;
        }
        self.resolve(path, OFlags::PATH)
            .map_err(|e| format!("open the mount point `/{path}`: {e}"))
    }
}
