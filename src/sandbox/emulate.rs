//! RUN mounts without mounting: what the `container` and `chroot` backends put in place of
//! `--mount` (and of `/etc/hosts`, device nodes) for the duration of a step, then take away.
//!
//! Whatever was at a target is moved aside first and put back afterwards, and every target
//! is left out of the step's changes. How each source is emulated:
//! - a cache (or any host directory kept across steps) is moved into place with `rename`
//!   when it is on the root's file system and moved back after; otherwise it is copied in
//!   and copied back. A read-only one is copied in and its writes discarded;
//! - the build context and other throw-away host trees are copied in and removed after;
//! - a path inside other layers (`--mount=from=`) is merged from the layers' unpacked
//!   directories (overlay whiteouts and opaque directories honoured) into place;
//! - a tmpfs is an empty directory (mode 1777), its size not enforced;
//! - a secret is a file written at the target with its mode and owner and deleted after the
//!   step: unlike with the namespace backend it touches the root's disk while the step runs.
//!
//! Read-only mounts therefore do not refuse writes, they discard them. A builder killed
//! during a step leaves a moved cache inside the root, where the next wipe deletes it: caches
//! are disposable.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use rustix::fs::{AtFlags, CWD, FileType, Gid, Mode, Timespec, Timestamps, UTIME_OMIT, Uid};

use super::stageroot::remove_tree;
use super::{MountSource, RunMount, SandboxError};
use crate::store::Store;

/// What to put at a target.
pub enum Content<'a> {
    /// A host directory or file whose writes persist (a cache).
    Kept {
        /// The host path.
        host: &'a Path,
        /// Whether writes are discarded instead.
        read_only: bool,
    },
    /// A host tree copied in and removed after.
    Copied(&'a Path),
    /// A path inside unpacked layer directories (overlay format), lowest first.
    Layers {
        /// The layer directories.
        dirs: &'a [PathBuf],
        /// The path inside them, relative.
        subpath: &'a str,
    },
    /// An empty directory, mode 1777.
    EmptyDir,
    /// A file with these bytes, mode and owner.
    File {
        /// The content.
        bytes: &'a [u8],
        /// The mode.
        mode: u32,
        /// The owner.
        uid: u32,
        /// The group.
        gid: u32,
    },
    /// A character device, skipped when the kernel refuses to make it.
    Device {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// One emulated mount: an absolute target inside the root and what goes there.
pub struct Provision<'a> {
    /// The absolute path inside the root.
    pub target: String,
    /// What goes there.
    pub content: Content<'a>,
}

impl<'a> Provision<'a> {
    /// The provision for a RUN mount.
    pub fn of_mount(mount: &'a RunMount) -> Provision<'a> {
        let content = match &mount.source {
            MountSource::HostPath(host) => Content::Kept {
                host,
                read_only: mount.read_only,
            },
            MountSource::Scratch(host) => Content::Copied(host),
            MountSource::Layers { dirs, subpath } => Content::Layers { dirs, subpath },
            MountSource::Tmpfs { .. } => Content::EmptyDir,
            MountSource::Secret {
                bytes,
                mode,
                uid,
                gid,
            } => Content::File {
                bytes,
                mode: *mode,
                uid: *uid,
                gid: *gid,
            },
        };
        Provision {
            target: mount.target.clone(),
            content,
        }
    }
}

/// What teardown undoes, newest first.
enum Undo {
    /// A directory created for a target: removed if still empty.
    CreatedDir(PathBuf),
    /// What was at a target, moved aside.
    Stashed { stashed: PathBuf, dest: PathBuf },
    /// Emulated content to delete.
    Remove(PathBuf),
    /// A kept host path to give back, by rename or by copying.
    GiveBack {
        dest: PathBuf,
        host: PathBuf,
        renamed: bool,
    },
}

/// The mounts of one step, in place; [`Emulated::teardown`] restores the root.
pub struct Emulated {
    backend: &'static str,
    root: PathBuf,
    dev: u64,
    stash: Option<tempfile::TempDir>,
    stash_count: usize,
    undo: Vec<Undo>,
    excluded: Vec<PathBuf>,
    touched: Vec<(PathBuf, SystemTime)>,
}

impl Emulated {
    /// Puts `provisions` in place under `root`, in order. On failure, whatever was done is
    /// undone before the error is returned.
    pub fn setup(
        backend: &'static str,
        root: &Path,
        store: &Store,
        provisions: &[Provision<'_>],
    ) -> Result<Emulated, SandboxError> {
        let dev = fs::symlink_metadata(root)
            .map_err(|e| setup_error(backend, format!("stat `{}`: {e}", root.display())))?
            .dev();
        let mut emulated = Emulated {
            backend,
            root: root.to_path_buf(),
            dev,
            stash: None,
            stash_count: 0,
            undo: Vec::new(),
            excluded: Vec::new(),
            touched: Vec::new(),
        };
        for provision in provisions {
            if let Err(message) = emulated.provide(store, provision) {
                let message = format!("emulate the mount at `{}`: {message}", provision.target);
                // The first error is the one worth reporting.
                let _ = emulated.teardown();
                return Err(setup_error(backend, message));
            }
        }
        Ok(emulated)
    }

    /// The targets, relative to the root: left out of the step's changes.
    pub fn excluded(&self) -> &[PathBuf] {
        &self.excluded
    }

    /// Removes the emulated mounts and puts back what was there; returns the directories
    /// (relative to the root) whose entries were added and removed again, with their
    /// modification time restored, for [`TreeSnapshot::ignore_ctime`].
    ///
    /// [`TreeSnapshot::ignore_ctime`]: super::rootdiff::TreeSnapshot::ignore_ctime
    pub fn teardown(mut self) -> Result<Vec<PathBuf>, SandboxError> {
        let mut first_error = None;
        while let Some(undo) = self.undo.pop() {
            if let Err(message) = self.undo_one(undo) {
                first_error.get_or_insert(message);
            }
        }
        let mut settled = Vec::new();
        for (dir, mtime) in self.touched.iter().rev() {
            let path = self.root.join(dir);
            let restored = fs::File::open(&path).and_then(|d| d.set_modified(*mtime));
            if restored.is_ok() && !dir.as_os_str().is_empty() {
                settled.push(dir.clone());
            }
        }
        match first_error {
            Some(message) => Err(setup_error(self.backend, message)),
            None => Ok(settled),
        }
    }

    fn undo_one(&self, undo: Undo) -> Result<(), String> {
        match undo {
            Undo::CreatedDir(dir) => match fs::remove_dir(&dir) {
                Err(e) if e.kind() != io::ErrorKind::DirectoryNotEmpty => {
                    Err(format!("failed to remove `{}`: {e}", dir.display()))
                }
                _ => Ok(()),
            },
            Undo::Stashed { stashed, dest } => {
                remove_tree(&dest, self.dev)?;
                fs::rename(&stashed, &dest)
                    .map_err(|e| format!("failed to put `{}` back: {e}", dest.display()))
            }
            Undo::Remove(path) => remove_tree(&path, self.dev),
            Undo::GiveBack {
                dest,
                host,
                renamed,
            } => give_back(&dest, &host, renamed, self.dev),
        }
    }

    fn provide(&mut self, store: &Store, provision: &Provision<'_>) -> Result<(), String> {
        let dest = resolve_in_root(&self.root, &provision.target)?;
        if dest == self.root {
            return Err("the target is the root itself".to_string());
        }
        self.touch_parent(&dest)?;
        self.create_parents(&dest)?;
        let exists = fs::symlink_metadata(&dest).is_ok();
        if exists && matches!(provision.content, Content::Device { .. }) {
            // The stage has its own node there; it serves as well.
            return Ok(());
        }
        if exists {
            let stashed = self.stash_path(store)?;
            fs::rename(&dest, &stashed)
                .map_err(|e| format!("failed to move `{}` aside: {e}", dest.display()))?;
            self.undo.push(Undo::Stashed {
                stashed,
                dest: dest.clone(),
            });
        }
        let relative = dest.strip_prefix(&self.root).unwrap_or(&dest).to_path_buf();
        self.excluded.push(relative);
        match provision.content {
            Content::Kept { host, read_only } => {
                if fs::symlink_metadata(host).is_err() {
                    return Err(format!("the host path `{}` does not exist", host.display()));
                }
                if read_only {
                    self.undo.push(Undo::Remove(dest.clone()));
                    return copy_tree(host, &dest);
                }
                let renamed = match fs::rename(host, &dest) {
                    Ok(()) => true,
                    Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
                        false
                    }
                    Err(e) => {
                        return Err(format!(
                            "failed to move `{}` into place: {e}",
                            host.display()
                        ));
                    }
                };
                self.undo.push(Undo::GiveBack {
                    dest: dest.clone(),
                    host: host.to_path_buf(),
                    renamed,
                });
                if renamed {
                    Ok(())
                } else {
                    copy_tree(host, &dest)
                }
            }
            Content::Copied(host) => {
                self.undo.push(Undo::Remove(dest.clone()));
                copy_tree(host, &dest)
            }
            Content::Layers { dirs, subpath } => {
                self.undo.push(Undo::Remove(dest.clone()));
                merge_layers(dirs, subpath, &dest)
            }
            Content::EmptyDir => {
                self.undo.push(Undo::Remove(dest.clone()));
                fs::create_dir(&dest)
                    .and_then(|()| fs::set_permissions(&dest, fs::Permissions::from_mode(0o1777)))
                    .map_err(|e| format!("failed to create `{}`: {e}", dest.display()))
            }
            Content::File {
                bytes,
                mode,
                uid,
                gid,
            } => {
                self.undo.push(Undo::Remove(dest.clone()));
                write_file(&dest, bytes, mode, uid, gid)
            }
            Content::Device { major, minor } => {
                let made = rustix::fs::mknodat(
                    CWD,
                    &dest,
                    FileType::CharacterDevice,
                    Mode::from(0o666),
                    rustix::fs::makedev(major, minor),
                );
                match made {
                    Ok(()) => {
                        self.undo.push(Undo::Remove(dest.clone()));
                        fs::set_permissions(&dest, fs::Permissions::from_mode(0o666))
                            .map_err(|e| format!("failed to chmod `{}`: {e}", dest.display()))
                    }
                    // Without CAP_MKNOD the step simply goes without this node.
                    Err(rustix::io::Errno::PERM) => Ok(()),
                    Err(e) => Err(format!("failed to create `{}`: {e}", dest.display())),
                }
            }
        }
    }

    /// Records the modification time of the nearest existing directory above `dest`, the
    /// one whose entries this provision changes.
    fn touch_parent(&mut self, dest: &Path) -> Result<(), String> {
        let mut parent = dest.parent().unwrap_or(&self.root);
        while fs::symlink_metadata(parent).is_err() {
            parent = parent.parent().unwrap_or(&self.root);
        }
        let mtime = fs::symlink_metadata(parent)
            .and_then(|m| m.modified())
            .map_err(|e| format!("failed to stat `{}`: {e}", parent.display()))?;
        let relative = parent
            .strip_prefix(&self.root)
            .unwrap_or(parent)
            .to_path_buf();
        self.touched.push((relative, mtime));
        Ok(())
    }

    fn create_parents(&mut self, dest: &Path) -> Result<(), String> {
        let mut missing = Vec::new();
        let mut parent = dest.parent();
        while let Some(dir) = parent {
            if fs::symlink_metadata(dir).is_ok() {
                break;
            }
            missing.push(dir.to_path_buf());
            parent = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            fs::create_dir(&dir)
                .map_err(|e| format!("failed to create `{}`: {e}", dir.display()))?;
            self.undo.push(Undo::CreatedDir(dir));
        }
        Ok(())
    }

    /// A fresh name to move a target's old content to, on the root's file system: in the
    /// store when it shares the root's file system, else in a hidden directory in the root
    /// (left out of the step's changes).
    fn stash_path(&mut self, store: &Store) -> Result<PathBuf, String> {
        if self.stash.is_none() {
            let in_store = store
                .temp_dir()
                .ok()
                .filter(|d| fs::metadata(d.path()).is_ok_and(|m| m.dev() == self.dev));
            let stash = match in_store {
                Some(dir) => dir,
                None => {
                    let dir = tempfile::Builder::new()
                        .prefix(".ria-stash-")
                        .tempdir_in(&self.root)
                        .map_err(|e| {
                            format!("failed to create a stash in `{}`: {e}", self.root.display())
                        })?;
                    let relative = dir.path().strip_prefix(&self.root).unwrap_or(dir.path());
                    self.excluded.push(relative.to_path_buf());
                    dir
                }
            };
            self.stash = Some(stash);
        }
        self.stash_count += 1;
        let stash = self.stash.as_ref().map(|d| d.path()).unwrap_or(&self.root);
        Ok(stash.join(self.stash_count.to_string()))
    }
}

fn setup_error(backend: &'static str, message: String) -> SandboxError {
    SandboxError::Setup { backend, message }
}

/// Returns a kept host path: renamed back, or copied back over the host's copy.
fn give_back(dest: &Path, host: &Path, renamed: bool, dev: u64) -> Result<(), String> {
    let present = fs::symlink_metadata(dest).is_ok();
    if renamed {
        if present {
            return fs::rename(dest, host)
                .map_err(|e| format!("failed to move `{}` back: {e}", dest.display()));
        }
        // The step deleted it; the cache starts empty next time.
        return fs::create_dir(host)
            .map_err(|e| format!("failed to recreate `{}`: {e}", host.display()));
    }
    let host_dev = fs::symlink_metadata(host).map_or(dev, |m| m.dev());
    remove_tree(host, host_dev)?;
    if present {
        copy_tree(dest, host)?;
        remove_tree(dest, dev)
    } else {
        fs::create_dir(host).map_err(|e| format!("failed to recreate `{}`: {e}", host.display()))
    }
}

/// Resolves the absolute `target` inside `root` as if `root` were `/`: symlinks are followed
/// (absolute ones from `root`), `..` never climbs above it, and missing components are taken
/// literally.
pub fn resolve_in_root(root: &Path, target: &str) -> Result<PathBuf, String> {
    let mut pending: VecDeque<OsString> = components(Path::new(target));
    let mut resolved = root.to_path_buf();
    let mut links = 0;
    while let Some(component) = pending.pop_front() {
        if component == ".." {
            if resolved != root {
                resolved.pop();
            }
            continue;
        }
        let next = resolved.join(&component);
        match fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(format!("too many levels of symbolic links in `{target}`"));
                }
                let link = fs::read_link(&next)
                    .map_err(|e| format!("failed to read `{}`: {e}", next.display()))?;
                if link.is_absolute() {
                    resolved = root.to_path_buf();
                }
                for (i, part) in components(&link).into_iter().enumerate() {
                    pending.insert(i, part);
                }
            }
            _ => resolved = next,
        }
    }
    Ok(resolved)
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn write_file(dest: &Path, bytes: &[u8], mode: u32, uid: u32, gid: u32) -> Result<(), String> {
    let failed = |e: io::Error| format!("failed to write `{}`: {e}", dest.display());
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    rustix::fs::fchown(&file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        .map_err(|e| failed(e.into()))?;
    // After the owner: chown clears setuid and setgid.
    file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
        .map_err(failed)
}

/// Copies the tree (or single file, link or node) at `src` to the new path `dst`, keeping
/// modes, owners (when permitted) and modification times; sockets are skipped.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(src)
        .map_err(|e| format!("failed to stat `{}`: {e}", src.display()))?;
    copy_node(src, &meta, dst)?;
    if meta.is_dir() {
        let children =
            fs::read_dir(src).map_err(|e| format!("failed to read `{}`: {e}", src.display()))?;
        for child in children {
            let child = child.map_err(|e| format!("failed to read `{}`: {e}", src.display()))?;
            copy_tree(&child.path(), &dst.join(child.file_name()))?;
        }
    }
    copy_meta(&meta, dst)
}

/// Creates `dst` as the same kind of node as `src` (an empty directory for a directory).
fn copy_node(src: &Path, meta: &fs::Metadata, dst: &Path) -> Result<(), String> {
    let failed = |e: io::Error| format!("failed to copy `{}`: {e}", src.display());
    let file_type = meta.file_type();
    if file_type.is_dir() {
        fs::create_dir(dst).map_err(failed)
    } else if file_type.is_symlink() {
        let link = fs::read_link(src).map_err(failed)?;
        std::os::unix::fs::symlink(link, dst).map_err(failed)
    } else if file_type.is_file() {
        fs::copy(src, dst).map(|_| ()).map_err(failed)
    } else if file_type.is_socket() {
        Ok(())
    } else {
        let kind = if file_type.is_fifo() {
            FileType::Fifo
        } else if file_type.is_block_device() {
            FileType::BlockDevice
        } else {
            FileType::CharacterDevice
        };
        let mode = Mode::from(meta.mode() & 0o7777);
        match rustix::fs::mknodat(CWD, dst, kind, mode, meta.rdev() as rustix::fs::Dev) {
            Err(rustix::io::Errno::PERM) => Ok(()),
            made => made.map_err(|e| failed(e.into())),
        }
    }
}

/// Owner, then mode (chown clears setuid), then times, without following a symlink.
fn copy_meta(meta: &fs::Metadata, dst: &Path) -> Result<(), String> {
    let failed =
        |e: rustix::io::Errno| format!("failed to copy metadata to `{}`: {e}", dst.display());
    if meta.file_type().is_socket() {
        return Ok(());
    }
    if rustix::process::geteuid().is_root() {
        rustix::fs::chownat(
            CWD,
            dst,
            Some(Uid::from_raw(meta.uid())),
            Some(Gid::from_raw(meta.gid())),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(failed)?;
    }
    if !meta.file_type().is_symlink() {
        rustix::fs::chmodat(CWD, dst, Mode::from(meta.mode() & 0o7777), AtFlags::empty())
            .map_err(failed)?;
    }
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    };
    rustix::fs::utimensat(CWD, dst, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(failed)
}

/// Whether `meta` is an overlay whiteout: a character device 0:0.
fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the overlay directory `path` hides what the layers below have there.
fn is_opaque(path: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut value = [0u8; 1];
            matches!(rustix::fs::lgetxattr(path, *name, &mut value[..]), Ok(1) if value[0] == b'y')
        })
}

/// Builds at `dest` what `subpath` is in the merged tree of the overlay-format layer
/// directories `dirs` (lowest first).
///
/// FIXME: `subpath` is joined to each layer lexically, so a symlink among its components is
/// not followed through the merged tree; fixed means resolving it against the merged view
/// the way the namespace backend's overlay does.
fn merge_layers(dirs: &[PathBuf], subpath: &str, dest: &Path) -> Result<(), String> {
    let mut present = false;
    for dir in dirs {
        let src = dir.join(subpath.trim_start_matches('/'));
        let Ok(meta) = fs::symlink_metadata(&src) else {
            continue;
        };
        if is_whiteout(&meta) {
            remove_tree(dest, fs::symlink_metadata(dest).map_or(0, |m| m.dev()))?;
            present = false;
            continue;
        }
        overlay_copy(&src, &meta, dest)?;
        present = true;
    }
    if present {
        Ok(())
    } else {
        Err(format!("`{subpath}` does not exist in the mounted layers"))
    }
}

/// Copies one overlay layer's `src` over `dst`: whiteouts delete, opaque directories replace,
/// other directories merge.
fn overlay_copy(src: &Path, meta: &fs::Metadata, dst: &Path) -> Result<(), String> {
    let existing = fs::symlink_metadata(dst).ok();
    let dst_dev = existing.as_ref().map_or(0, |m| m.dev());
    if !meta.is_dir() {
        if existing.is_some() {
            remove_tree(dst, dst_dev)?;
        }
        copy_node(src, meta, dst)?;
        return copy_meta(meta, dst);
    }
    match &existing {
        Some(m) if m.is_dir() && !is_opaque(src) => {}
        Some(_) => {
            remove_tree(dst, dst_dev)?;
            copy_node(src, meta, dst)?;
        }
        None => copy_node(src, meta, dst)?,
    }
    let children =
        fs::read_dir(src).map_err(|e| format!("failed to read `{}`: {e}", src.display()))?;
    for child in children {
        let child = child.map_err(|e| format!("failed to read `{}`: {e}", src.display()))?;
        let path = child.path();
        let child_meta = fs::symlink_metadata(&path)
            .map_err(|e| format!("failed to stat `{}`: {e}", path.display()))?;
        let target = dst.join(child.file_name());
        if is_whiteout(&child_meta) {
            let dev = fs::symlink_metadata(&target).map_or(0, |m| m.dev());
            remove_tree(&target, dev)?;
        } else {
            overlay_copy(&path, &child_meta, &target)?;
        }
    }
    copy_meta(meta, dst)
}

#[cfg(test)]
#[path = "emulate_tests.rs"]
mod tests;
