//! Path resolution confined to the extraction root, with directory file descriptors.
//!
//! Every directory used by the extractor is reached from the root's descriptor, one
//! component at a time, so a symlink in a layer can never lead outside the root: symlinks
//! met on the way are read and expanded here, absolute targets restart at the root and `..`
//! stops at the root, exactly as if the walk happened after `chroot(root)`. On kernels with
//! `openat2` the whole walk is first tried in one `RESOLVE_IN_ROOT` call, which gives the
//! same answer when every directory already exists; the manual walk remains the authority
//! for everything else (missing directories to create, errors to report, old kernels).

use std::cell::Cell;
use std::collections::{HashSet, VecDeque};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Longest chain of symlinks followed while resolving one path, as Linux's own limit
/// (40) is too small for some real images while an endless loop must still end.
pub(super) const MAX_SYMLINK_HOPS: usize = 255;

/// Mode of directories created implicitly for entries whose parents are missing, as
/// containerd and Docker do.
const IMPLIED_DIR_MODE: u32 = 0o755;

/// How parents are resolved: `Auto` tries `openat2` first, `Manual` always walks by hand
/// (the tests force it to cover the fallback on kernels that have `openat2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// `openat2(RESOLVE_IN_ROOT)` when the kernel has it, else the manual walk.
    Auto,
    /// The manual walk only.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "only the tests force the fallback")
    )]
    Manual,
}

/// The entries created by the layer being applied, keyed by the directory holding them
/// (device and inode) and their name, so that an opaque whiteout keeps them whatever path
/// (through symlinks or not) was used to reach them.
#[derive(Debug, Default)]
pub(super) struct Created {
    entries: HashSet<(u64, u64, Vec<u8>)>,
}

impl Created {
    /// Remembers that `name` in the directory `parent` was made by this layer.
    pub(super) fn record(&mut self, parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
        let st = rustix::fs::fstat(parent)?;
        self.entries
            .insert((st.st_dev, st.st_ino, name.to_bytes().to_vec()));
        Ok(())
    }

    /// Whether `name` in the directory with device `dev` and inode `ino` was made by this layer.
    pub(super) fn contains(&self, dev: u64, ino: u64, name: &[u8]) -> bool {
        self.entries.contains(&(dev, ino, name.to_vec()))
    }
}

/// The extraction root, held open as a directory descriptor.
#[derive(Debug)]
pub(super) struct Root {
    fd: OwnedFd,
    /// Cleared when the kernel or a seccomp filter refuses `openat2` itself.
    openat2_usable: Cell<bool>,
    /// How many resolutions `openat2` answered (the tests check both paths really run).
    openat2_hits: Cell<u64>,
}

impl Root {
    /// Opens the directory `path` (the caller's own path, trusted and followed as given).
    pub(super) fn open(path: &Path, resolution: Resolution) -> io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            openat2_usable: Cell::new(resolution == Resolution::Auto),
            openat2_hits: Cell::new(0),
        })
    }

    /// How many resolutions were answered by `openat2`.
    #[cfg(test)]
    pub(super) fn openat2_hits(&self) -> u64 {
        self.openat2_hits.get()
    }

    /// Opens (as `O_PATH`) the directory named by `components` inside the root, following
    /// symlinks within the root. With `created`, missing directories are made (mode 0755)
    /// and recorded; without it a missing one is an `ENOENT` error.
    pub(super) fn open_dir(
        &self,
        components: &[&[u8]],
        created: Option<&mut Created>,
    ) -> io::Result<OwnedFd> {
        if components.is_empty() {
            return self.fd.try_clone();
        }
        let fast = match self.openat2_usable.get() {
            true => self.try_openat2(components),
            false => None,
        };
        if let Some(fd) = fast {
            self.openat2_hits.set(self.openat2_hits.get() + 1);
            return Ok(fd);
        }
        self.walk(components, created)
    }

    /// One `openat2` call for the whole path; `None` sends the caller to the manual walk,
    /// which either creates what is missing or reports the precise error.
    fn try_openat2(&self, components: &[&[u8]]) -> Option<OwnedFd> {
        let joined = components.join(&b'/');
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rustix::fs::openat2(&self.fd, joined.as_slice(), flags, Mode::empty(), how) {
            Ok(fd) => Some(fd),
            // The call itself is unavailable (old kernel, seccomp, unknown flags): stop
            // trying it for this root.
            Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::TOOBIG) => {
                self.openat2_usable.set(false);
                None
            }
            Err(_) => None,
        }
    }

    /// The manual walk: a stack of open directories from the root, with symlink targets
    /// spliced in front of the components still to visit.
    fn walk(&self, components: &[&[u8]], mut created: Option<&mut Created>) -> io::Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut pending: VecDeque<Vec<u8>> = components.iter().map(|c| c.to_vec()).collect();
        let mut hops = 0usize;
        while let Some(component) = pending.pop_front() {
            match component.as_slice() {
                b"" | b"." => continue,
                // Popping an empty stack leaves us at the root: `..` is clamped there.
                b".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let name = CString::new(component).map_err(|_| io::Error::from(Errno::INVAL))?;
            let current = stack.last().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC;
            match rustix::fs::openat(current, name.as_c_str(), flags, Mode::empty()) {
                Ok(fd) => stack.push(fd),
                // `O_NOFOLLOW | O_DIRECTORY` refuses a symlink with ENOTDIR: look at what
                // is there and expand it ourselves.
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    let st =
                        rustix::fs::statat(current, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Err(Errno::NOTDIR.into());
                    }
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(Errno::LOOP.into());
                    }
                    let target = rustix::fs::readlinkat(current, name.as_c_str(), Vec::new())?;
                    let target = target.into_bytes();
                    if target.first() == Some(&b'/') {
                        stack.clear();
                    }
                    for part in target.split(|b| *b == b'/').rev() {
                        pending.push_front(part.to_vec());
                    }
                }
                Err(Errno::NOENT) => {
                    let Some(created) = created.as_deref_mut() else {
                        return Err(Errno::NOENT.into());
                    };
                    match rustix::fs::mkdirat(current, name.as_c_str(), Mode::from_raw_mode(0o700))
                    {
                        Ok(()) => {
                            // Set the mode explicitly so the process umask does not matter.
                            rustix::fs::chmodat(
                                current,
                                name.as_c_str(),
                                Mode::from_raw_mode(IMPLIED_DIR_MODE),
                                AtFlags::empty(),
                            )?;
                            created.record(current, name.as_c_str())?;
                        }
                        // Something appeared meanwhile: look again.
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    pending.push_front(name.into_bytes());
                }
                Err(e) => return Err(e.into()),
            }
        }
        match stack.pop() {
            Some(fd) => Ok(fd),
            None => Ok(self.fd.try_clone()?),
        }
    }
}

/// Opens `name` in `parent` as a readable directory without following a symlink.
fn open_readable_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(parent, name, flags, Mode::empty())?)
}

/// The entries of a directory (without `.` and `..`) with their types, read in full before
/// the caller changes the directory.
fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<(CString, bool)>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => {
                let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
                FileType::from_raw_mode(st.st_mode) == FileType::Directory
            }
            _ => false,
        };
        out.push((name.to_owned(), is_dir));
    }
    Ok(out)
}

/// Unlinks `name` in `dir`, a file gone already being fine.
fn unlink_quiet(dir: BorrowedFd<'_>, name: &CStr, flags: AtFlags) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, flags) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` in `parent` and, if it is a directory, everything below it, never
/// following a symlink; a missing `name` is not an error. The walk keeps one descriptor
/// per directory level instead of recursing, so deep trees cannot exhaust the stack.
pub(super) fn remove_all(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return unlink_quiet(parent, name, AtFlags::empty());
    }
    let mut stack: Vec<(OwnedFd, CString)> =
        vec![(open_readable_dir(parent, name)?, name.to_owned())];
    while let Some((dir, _)) = stack.last() {
        let mut subdir = None;
        for (child, is_dir) in list_dir(dir.as_fd())? {
            if is_dir {
                subdir = Some(child);
                break;
            }
            unlink_quiet(dir.as_fd(), &child, AtFlags::empty())?;
        }
        if let Some(child) = subdir {
            let fd = open_readable_dir(dir.as_fd(), &child)?;
            stack.push((fd, child));
        } else if let Some((dir, dir_name)) = stack.pop() {
            drop(dir);
            let holder = stack.last().map_or(parent, |(fd, _)| fd.as_fd());
            unlink_quiet(holder, &dir_name, AtFlags::REMOVEDIR)?;
        }
    }
    Ok(())
}

/// Applies an opaque whiteout to the directory `dir`: everything below it that this layer
/// did not create is removed, descending into the directories this layer did create (or
/// merged), since their lower-layer contents are hidden too.
pub(super) fn make_opaque(dir: BorrowedFd<'_>, created: &Created) -> io::Result<()> {
    let first = rustix::fs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let kept = clear_lower(first.as_fd(), created)?;
    let mut stack = vec![(first, kept.into_iter())];
    while let Some((fd, kept)) = stack.last_mut() {
        match kept.next() {
            Some(child) => {
                let child_fd = open_readable_dir(fd.as_fd(), &child)?;
                let kept = clear_lower(child_fd.as_fd(), created)?;
                stack.push((child_fd, kept.into_iter()));
            }
            None => {
                stack.pop();
            }
        }
    }
    Ok(())
}

/// Removes the entries of `dir` not created by this layer; returns the kept directories.
fn clear_lower(dir: BorrowedFd<'_>, created: &Created) -> io::Result<Vec<CString>> {
    let st = rustix::fs::fstat(dir)?;
    let mut kept = Vec::new();
    for (child, is_dir) in list_dir(dir)? {
        if created.contains(st.st_dev, st.st_ino, child.as_bytes()) {
            if is_dir {
                kept.push(child);
            }
        } else {
            remove_all(dir, &child)?;
        }
    }
    Ok(kept)
}
