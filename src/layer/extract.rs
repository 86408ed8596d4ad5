//! Applies one uncompressed layer tar onto a directory, the way containerd and Docker apply
//! image layers, without ever touching anything outside that directory.
//!
//! Behaviour, entry by entry and in tar order:
//! - Names are normalized lexically: `.` components and leading `/` are dropped and `..` is
//!   resolved against the components before it, clamped at the root (`../x`, `/x` and
//!   `a/../../x` all mean `x`), as containerd does. An entry naming the root itself is skipped.
//! - The parent directory is resolved inside the root with directory descriptors (see the
//!   `resolve` submodule): symlinks in parents are followed as if chrooted into the root;
//!   missing parents are created with mode 0755. The last component is never followed.
//! - `.wh.NAME` removes `NAME` (recursively) from that directory; `.wh..wh..opq` removes
//!   every entry of that directory not created by this same layer; other `.wh..wh.` names
//!   are AUFS metadata and skipped; whiteouts are never created. A whiteout whose `NAME` is
//!   empty, `.` or `..`, or any parent component starting with `.wh.`, is refused.
//! - Whatever exists at an entry's path is removed first (a symlink is replaced, never
//!   written through), except a directory being replaced by a directory, which is kept with
//!   its contents and gets the new metadata.
//! - Hard link targets are resolved inside the root like any path, must exist and must not
//!   be directories.
//! - Devices and fifos are made only with [`ExtractOptions::devices`]; when the kernel refuses
//!   (`EPERM`, as in a user namespace) they are skipped and counted.
//! - Metadata order: owner (with [`ExtractOptions::same_owner`]), xattrs (with
//!   [`ExtractOptions::xattrs`]; after the owner, since `chown` drops `security.capability`;
//!   `trusted.*` is never set), mode (after the owner, since `chown` clears setuid and
//!   setgid), then times without following symlinks. Directory times are set at the very end,
//!   in reverse order, once nothing more is written into them.

mod resolve;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use resolve::{Created, Resolution, Root};

/// What [`apply_layer`] may do besides creating files, directories and links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractOptions {
    /// Give entries the owner and group recorded in the tar (needs privileges).
    pub same_owner: bool,
    /// Create character and block devices and fifos (skipped otherwise).
    pub devices: bool,
    /// Set the extended attributes recorded as PAX `SCHILY.xattr.*` records.
    pub xattrs: bool,
    /// Write whiteouts the way overlayfs stores them instead of applying them: `.wh.NAME`
    /// becomes a character device 0:0 called `NAME` and `.wh..wh..opq` the xattr
    /// `trusted.overlay.opaque=y` on its directory. For unpacking one layer into an empty
    /// directory that is then used as an overlay lower layer (needs root).
    pub overlay_whiteouts: bool,
}

/// Counts of what [`apply_layer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractStats {
    /// Tar members read (extension headers such as PAX or GNU long names not counted).
    pub entries: u64,
    /// Bytes of regular file contents written.
    pub bytes: u64,
    /// Members read but not applied: devices and fifos not permitted, entries naming the
    /// root, PAX global headers and AUFS metadata.
    pub skipped: u64,
}

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The extraction root could not be opened as a directory.
    #[error("failed to open extraction root `{}`", path.display())]
    OpenRoot {
        /// The root given by the caller.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The tar stream could not be read.
    #[error("failed to read layer tar")]
    Read {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A header field of an entry could not be parsed.
    #[error("invalid header for entry `{path}`")]
    Header {
        /// The entry's name as found in the tar.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry is refused by construction (an escaping whiteout, a hard link to a
    /// directory, a name with a NUL byte, ...).
    #[error("invalid entry `{path}`: {reason}")]
    Invalid {
        /// The entry's name as found in the tar.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry has a tar type this extractor does not apply.
    #[error("unsupported type `{kind}` of entry `{path}`")]
    UnsupportedType {
        /// The entry's name as found in the tar.
        path: String,
        /// The tar type flag.
        kind: char,
    },
    /// A file system operation on an entry failed.
    #[error("failed to {op} `{path}`")]
    Entry {
        /// What was being done (`create directory`, `write file`, ...).
        op: &'static str,
        /// The entry's name as found in the tar.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A hard link could not be made.
    #[error("failed to create hard link `{path}` to `{target}`")]
    HardLink {
        /// The entry's name as found in the tar.
        path: String,
        /// The link target as found in the tar.
        target: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An extended attribute could not be set.
    #[error("failed to set xattr `{key}` on `{path}`")]
    Xattr {
        /// The entry's name as found in the tar.
        path: String,
        /// The attribute name.
        key: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Applies one uncompressed layer tar onto `root` with OCI whiteouts; no entry can create,
/// change or delete anything outside `root`, whatever its names and links say.
///
/// `root` must be an existing directory. On error the root is left partly applied.
pub fn apply_layer(
    root: &Path,
    tar: impl Read,
    options: &ExtractOptions,
) -> Result<ExtractStats, ExtractError> {
    apply_layer_with(root, tar, options, Resolution::Auto)
}

/// [`apply_layer`] with the resolution strategy chosen (the tests force the manual walk).
fn apply_layer_with(
    root: &Path,
    tar: impl Read,
    options: &ExtractOptions,
    resolution: Resolution,
) -> Result<ExtractStats, ExtractError> {
    let root_dir = Root::open(root, resolution).map_err(|source| ExtractError::OpenRoot {
        path: root.to_path_buf(),
        source,
    })?;
    let mut applier = Applier {
        root: root_dir,
        options,
        created: Created::default(),
        dirs: Vec::new(),
        stats: ExtractStats::default(),
        buffer: vec![0; COPY_BUFFER],
    };
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|source| ExtractError::Read { source })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| ExtractError::Read { source })?;
        applier.stats.entries += 1;
        applier.apply(&mut entry)?;
    }
    applier.finish_dirs()?;
    Ok(applier.stats)
}

/// A directory whose times are set once the whole layer is written.
struct DirTimes {
    components: Vec<Vec<u8>>,
    dev: u64,
    ino: u64,
    times: Timestamps,
    display: String,
}

/// The state of one layer application.
struct Applier<'o> {
    root: Root,
    options: &'o ExtractOptions,
    created: Created,
    dirs: Vec<DirTimes>,
    stats: ExtractStats,
    /// Reused for file contents: larger reads than `io::copy`'s 8 KiB mean fewer calls into
    /// the decompressor and fewer writes.
    buffer: Vec<u8>,
}

/// Metadata read from an entry before its contents are consumed.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    times: Timestamps,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Size of the buffer used to copy file contents.
const COPY_BUFFER: usize = 256 * 1024;
/// Prefix of whiteout names.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of whiteout names with a special meaning (opaque markers, AUFS metadata).
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// Name of the opaque directory marker.
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
/// The xattr overlayfs marks opaque directories with.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// PAX record prefix carrying extended attributes.
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Splits `name` into normal components: `.` and empty ones dropped, `..` removing the one
/// before it and clamped at the root.
fn normalize(name: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for part in name.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    out
}

/// Parses a PAX time (`seconds[.fraction]`, possibly negative) into a timespec.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, digit) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(digit - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(if !negative {
        Timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        }
    } else if nanos == 0 {
        Timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        }
    } else {
        Timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - nanos,
        }
    })
}

/// Builds a C string from a name component (components never contain `/`).
fn c_name(path: &str, bytes: &[u8]) -> Result<CString, ExtractError> {
    CString::new(bytes).map_err(|_| ExtractError::Invalid {
        path: path.to_owned(),
        reason: "name contains a NUL byte",
    })
}

/// Whether an xattr error is tolerated (the attribute is then silently not set): the file
/// system lacks xattrs (`ENOTSUP`, ignored by containerd too), a `security.*` attribute is
/// not permitted to this process (`EPERM`, as Docker ignores it), or a `user.*` attribute on
/// a file type the kernel never lets carry one (containerd's rule). Anything else fails the
/// entry, so a layer's capabilities are not lost silently when they could have been set.
fn xattr_error_tolerated(key: &str, errno: Errno, file_type: FileType) -> bool {
    if errno == Errno::NOTSUP {
        return true;
    }
    if errno != Errno::PERM {
        return false;
    }
    key.starts_with("security.")
        || (key.starts_with("user.")
            && !matches!(file_type, FileType::RegularFile | FileType::Directory))
}

impl Applier<'_> {
    /// Applies one tar member.
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ExtractError> {
        let raw: Vec<u8> = entry.path_bytes().into_owned();
        let path = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            self.stats.skipped += 1;
            return Ok(());
        }
        let components = normalize(&raw);
        let Some((&name, parents)) = components.split_last() else {
            self.stats.skipped += 1;
            return Ok(());
        };
        if parents.iter().any(|p| p.starts_with(WHITEOUT_PREFIX)) {
            return Err(ExtractError::Invalid {
                path,
                reason: "a parent directory is a whiteout",
            });
        }
        if name == WHITEOUT_OPAQUE && self.options.overlay_whiteouts {
            let dir = self.parent(&path, parents)?;
            // The parent may be an `O_PATH` descriptor, which carries no xattrs.
            let dir = rustix::fs::openat(
                dir.as_fd(),
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| entry_error("open directory", &path, e.into()))?;
            return rustix::fs::fsetxattr(
                dir.as_fd(),
                OVERLAY_OPAQUE_XATTR,
                b"y",
                XattrFlags::empty(),
            )
            .map_err(|e| entry_error("mark directory opaque", &path, e.into()));
        }
        if name == WHITEOUT_OPAQUE {
            let dir = self.parent(&path, parents)?;
            return resolve::make_opaque(dir.as_fd(), &self.created)
                .map_err(|source| entry_error("apply opaque whiteout", &path, source));
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            self.stats.skipped += 1;
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if matches!(hidden, b"" | b"." | b"..") {
                return Err(ExtractError::Invalid {
                    path,
                    reason: "whiteout escapes its directory",
                });
            }
            let hidden = c_name(&path, hidden)?;
            let dir = self.parent(&path, parents)?;
            if self.options.overlay_whiteouts {
                resolve::remove_all(dir.as_fd(), &hidden)
                    .map_err(|source| entry_error("apply whiteout", &path, source))?;
                return rustix::fs::mknodat(
                    dir.as_fd(),
                    hidden.as_c_str(),
                    FileType::CharacterDevice,
                    Mode::empty(),
                    0,
                )
                .map_err(|e| entry_error("create overlay whiteout", &path, e.into()));
            }
            return resolve::remove_all(dir.as_fd(), &hidden)
                .map_err(|source| entry_error("apply whiteout", &path, source));
        }
        let is_node = matches!(kind, EntryType::Char | EntryType::Block | EntryType::Fifo);
        if is_node && !self.options.devices {
            self.stats.skipped += 1;
            return Ok(());
        }
        let meta = self.read_meta(&path, entry)?;
        let name = c_name(&path, name)?;
        let dir = self.parent(&path, parents)?;
        let dir = dir.as_fd();
        let file_type = match kind {
            EntryType::Directory => {
                self.make_dir(&path, dir, &name)?;
                FileType::Directory
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.replace(&path, dir, &name)?;
                let file = self.write_file(&path, dir, &name, entry)?;
                self.created
                    .record(dir, &name)
                    .map_err(|e| entry_error("stat", &path, e))?;
                return self.apply_file_meta(&path, &file, &meta);
            }
            EntryType::Symlink => {
                let target = link_target(&path, entry)?;
                self.replace(&path, dir, &name)?;
                rustix::fs::symlinkat(target.as_ref(), dir, &name)
                    .map_err(|e| entry_error("create symlink", &path, e.into()))?;
                FileType::Symlink
            }
            EntryType::Link => self.hard_link(&path, dir, &name, entry)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                match self.make_node(&path, dir, &name, kind, entry)? {
                    Some(file_type) => file_type,
                    None => {
                        self.stats.skipped += 1;
                        return Ok(());
                    }
                }
            }
            other => {
                return Err(ExtractError::UnsupportedType {
                    path,
                    kind: char::from(other.as_byte()),
                });
            }
        };
        self.created
            .record(dir, &name)
            .map_err(|e| entry_error("stat", &path, e))?;
        self.apply_meta(&path, dir, &name, file_type, &meta, parents)
    }

    /// Opens the parent directory of an entry, creating missing directories.
    fn parent(&mut self, path: &str, parents: &[&[u8]]) -> Result<OwnedFd, ExtractError> {
        self.root
            .open_dir(parents, Some(&mut self.created))
            .map_err(|source| entry_error("resolve parent directory of", path, source))
    }

    /// Reads mode, owner, times and xattrs of an entry.
    fn read_meta<R: Read>(
        &self,
        path: &str,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<Meta, ExtractError> {
        let header_error = |source| ExtractError::Header {
            path: path.to_owned(),
            source,
        };
        let header = entry.header();
        let mode = header.mode().map_err(header_error)? & 0o7777;
        let uid = header.uid().map_err(header_error)?;
        let gid = header.gid().map_err(header_error)?;
        let header_mtime = header.mtime().map_err(header_error)?;
        let mut mtime = Timespec {
            tv_sec: i64::try_from(header_mtime).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        // GNU headers may carry an access time; zero means none was recorded.
        let gnu_atime = header
            .as_gnu()
            .and_then(|gnu| gnu.atime().ok())
            .filter(|s| *s != 0);
        let mut atime = gnu_atime
            .and_then(|secs| i64::try_from(secs).ok())
            .map(|secs| Timespec {
                tv_sec: secs,
                tv_nsec: 0,
            });
        let mut xattrs = Vec::new();
        if let Some(records) = entry.pax_extensions().map_err(header_error)? {
            for record in records {
                let record = record.map_err(header_error)?;
                match record.key() {
                    Ok("mtime") => {
                        if let Some(t) = parse_pax_time(record.value_bytes()) {
                            mtime = t;
                        }
                    }
                    Ok("atime") => atime = parse_pax_time(record.value_bytes()).or(atime),
                    Ok(key) => {
                        if let Some(attr) = key.strip_prefix(PAX_XATTR_PREFIX) {
                            xattrs.push((attr.to_owned(), record.value_bytes().to_vec()));
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        // Like containerd, the access time is the later of the recorded one and the mtime.
        let atime = match atime {
            Some(a) if (a.tv_sec, a.tv_nsec) > (mtime.tv_sec, mtime.tv_nsec) => a,
            _ => mtime,
        };
        let times = Timestamps {
            last_access: atime,
            last_modification: mtime,
        };
        Ok(Meta {
            mode,
            uid,
            gid,
            times,
            xattrs,
        })
    }

    /// Removes whatever is at `name` in `dir`.
    fn replace(&self, path: &str, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), ExtractError> {
        resolve::remove_all(dir, name).map_err(|e| entry_error("remove existing", path, e))
    }

    /// Creates a directory, or keeps an existing one (its contents merge with this layer).
    fn make_dir(&self, path: &str, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), ExtractError> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => return Ok(()),
            Ok(_) => self.replace(path, dir, name)?,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(entry_error("inspect", path, e.into())),
        }
        rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
            .map_err(|e| entry_error("create directory", path, e.into()))
    }

    /// Creates a regular file (never through an existing link) and writes its contents.
    fn write_file<R: Read>(
        &mut self,
        path: &str,
        dir: BorrowedFd<'_>,
        name: &CStr,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<File, ExtractError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| entry_error("create file", path, e.into()))?;
        let mut file = File::from(fd);
        let expected = entry.size();
        let written = copy_contents(entry, &mut file, &mut self.buffer)
            .map_err(|e| entry_error("write file", path, e))?;
        // A truncated stream ends the entry early without an error of its own.
        if written != expected {
            let short = io::Error::new(io::ErrorKind::UnexpectedEof, "layer tar ended inside it");
            return Err(entry_error("write file", path, short));
        }
        self.stats.bytes += written;
        Ok(file)
    }

    /// Makes a hard link after checking its target; returns the target's type.
    fn hard_link<R: Read>(
        &mut self,
        path: &str,
        dir: BorrowedFd<'_>,
        name: &CStr,
        entry: &tar::Entry<'_, R>,
    ) -> Result<FileType, ExtractError> {
        let target_raw = link_target(path, entry)?;
        let target = String::from_utf8_lossy(&target_raw).into_owned();
        let link_error = |source| ExtractError::HardLink {
            path: path.to_owned(),
            target: target.clone(),
            source,
        };
        let components = normalize(&target_raw);
        let Some((&target_name, target_parents)) = components.split_last() else {
            return Err(link_error(Errno::ISDIR.into()));
        };
        let target_name = c_name(path, target_name)?;
        let target_dir = self
            .root
            .open_dir(target_parents, None)
            .map_err(link_error)?;
        let target_st = rustix::fs::statat(&target_dir, &target_name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| link_error(e.into()))?;
        let file_type = FileType::from_raw_mode(target_st.st_mode);
        if file_type == FileType::Directory {
            return Err(ExtractError::Invalid {
                path: path.to_owned(),
                reason: "hard link target is a directory",
            });
        }
        // The link may already be there (the same layer applied twice, or `a` linked to
        // `a`): removing it first would remove the target itself.
        let existing = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok();
        if existing.is_some_and(|st| (st.st_dev, st.st_ino) == (target_st.st_dev, target_st.st_ino))
        {
            return Ok(file_type);
        }
        self.replace(path, dir, name)?;
        rustix::fs::linkat(&target_dir, &target_name, dir, name, AtFlags::empty())
            .map_err(|e| link_error(e.into()))?;
        Ok(file_type)
    }

    /// Makes a device or fifo; `None` when the kernel does not permit it.
    fn make_node<R: Read>(
        &self,
        path: &str,
        dir: BorrowedFd<'_>,
        name: &CStr,
        kind: EntryType,
        entry: &tar::Entry<'_, R>,
    ) -> Result<Option<FileType>, ExtractError> {
        let header = entry.header();
        let header_error = |source| ExtractError::Header {
            path: path.to_owned(),
            source,
        };
        let file_type = match kind {
            EntryType::Char => FileType::CharacterDevice,
            EntryType::Block => FileType::BlockDevice,
            _ => FileType::Fifo,
        };
        // Writers often leave the device fields of fifos blank; they mean nothing there.
        let (major, minor) = if file_type == FileType::Fifo {
            (0, 0)
        } else {
            let major = header.device_major().map_err(header_error)?.unwrap_or(0);
            let minor = header.device_minor().map_err(header_error)?.unwrap_or(0);
            (major, minor)
        };
        self.replace(path, dir, name)?;
        let dev = rustix::fs::makedev(major, minor);
        match rustix::fs::mknodat(dir, name, file_type, Mode::from_raw_mode(0o600), dev) {
            Ok(()) => Ok(Some(file_type)),
            // Not permitted here (no CAP_MKNOD, a user namespace): skipped like containerd.
            Err(Errno::PERM) => Ok(None),
            Err(e) => Err(entry_error("create device node", path, e.into())),
        }
    }

    /// Owner, xattrs, mode and times of a regular file just written, through its descriptor.
    fn apply_file_meta(&self, path: &str, file: &File, meta: &Meta) -> Result<(), ExtractError> {
        if self.options.same_owner {
            let (uid, gid) = ids(path, meta)?;
            rustix::fs::fchown(file, Some(uid), Some(gid))
                .map_err(|e| entry_error("set owner of", path, e.into()))?;
        }
        if self.options.xattrs {
            for (key, value) in &meta.xattrs {
                if key.starts_with("trusted.") {
                    continue;
                }
                let result = rustix::fs::fsetxattr(file, key.as_str(), value, XattrFlags::empty());
                result.or_else(|errno| tolerate_xattr(path, key, errno, FileType::RegularFile))?;
            }
        }
        rustix::fs::fchmod(file, Mode::from_raw_mode(meta.mode))
            .map_err(|e| entry_error("set mode of", path, e.into()))?;
        rustix::fs::futimens(file, &meta.times)
            .map_err(|e| entry_error("set times of", path, e.into()))
    }

    /// Owner, xattrs, mode and times of anything but a new regular file, by name in its
    /// directory and never following a symlink.
    fn apply_meta(
        &mut self,
        path: &str,
        dir: BorrowedFd<'_>,
        name: &CStr,
        file_type: FileType,
        meta: &Meta,
        parents: &[&[u8]],
    ) -> Result<(), ExtractError> {
        if self.options.same_owner {
            let (uid, gid) = ids(path, meta)?;
            rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| entry_error("set owner of", path, e.into()))?;
        }
        if self.options.xattrs && !meta.xattrs.is_empty() {
            // No descriptor can be opened for writing xattrs on symlinks or devices, so
            // name the entry through our own directory descriptor; the last component is
            // not followed by `lsetxattr`.
            let mut target = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            target.extend_from_slice(name.to_bytes());
            for (key, value) in &meta.xattrs {
                if key.starts_with("trusted.") {
                    continue;
                }
                let result = rustix::fs::lsetxattr(
                    target.as_slice(),
                    key.as_str(),
                    value,
                    XattrFlags::empty(),
                );
                result.or_else(|errno| tolerate_xattr(path, key, errno, file_type))?;
            }
        }
        // Symlink modes mean nothing on Linux and cannot be changed.
        if file_type != FileType::Symlink {
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(|e| entry_error("set mode of", path, e.into()))?;
        }
        if file_type == FileType::Directory {
            let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| entry_error("inspect", path, e.into()))?;
            let mut components: Vec<Vec<u8>> = parents.iter().map(|p| p.to_vec()).collect();
            components.push(name.to_bytes().to_vec());
            self.dirs.push(DirTimes {
                components,
                dev: st.st_dev,
                ino: st.st_ino,
                times: meta.times.clone(),
                display: path.to_owned(),
            });
            return Ok(());
        }
        rustix::fs::utimensat(dir, name, &meta.times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| entry_error("set times of", path, e.into()))
    }

    /// Sets the recorded times of the layer's directories, last first, skipping those that
    /// a later entry removed or replaced.
    fn finish_dirs(&mut self) -> Result<(), ExtractError> {
        for dir in self.dirs.iter().rev() {
            let Some((last, parents)) = dir.components.split_last() else {
                continue;
            };
            let parents: Vec<&[u8]> = parents.iter().map(Vec::as_slice).collect();
            let parent = match self.root.open_dir(&parents, None) {
                Ok(fd) => fd,
                Err(e) if matches!(e.raw_os_error(), Some(code) if is_gone(code)) => continue,
                Err(e) => return Err(entry_error("resolve parent directory of", &dir.display, e)),
            };
            let name = c_name(&dir.display, last)?;
            match rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if (st.st_dev, st.st_ino) == (dir.dev, dir.ino) => {}
                Ok(_) | Err(Errno::NOENT) => continue,
                Err(e) => return Err(entry_error("inspect", &dir.display, e.into())),
            }
            rustix::fs::utimensat(&parent, &name, &dir.times, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| entry_error("set times of", &dir.display, e.into()))?;
        }
        Ok(())
    }
}

/// Copies all of `from` into `to` through `buffer`; returns the number of bytes copied.
fn copy_contents(from: &mut impl Read, to: &mut File, buffer: &mut [u8]) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match from.read(buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        io::Write::write_all(to, &buffer[..n])?;
        total += n as u64;
    }
}

/// Whether an error code means a path no longer leads to a directory.
fn is_gone(code: i32) -> bool {
    code == Errno::NOENT.raw_os_error() || code == Errno::NOTDIR.raw_os_error()
}

/// The link target of a symlink or hard link entry.
fn link_target<'e, R: Read>(
    path: &str,
    entry: &'e tar::Entry<'_, R>,
) -> Result<Cow<'e, [u8]>, ExtractError> {
    match entry.link_name_bytes() {
        Some(target) if !target.is_empty() => Ok(target),
        _ => Err(ExtractError::Invalid {
            path: path.to_owned(),
            reason: "link without a target",
        }),
    }
}

/// The owner and group of an entry as kernel ids.
fn ids(path: &str, meta: &Meta) -> Result<(rustix::fs::Uid, rustix::fs::Gid), ExtractError> {
    let invalid = || ExtractError::Invalid {
        path: path.to_owned(),
        reason: "owner id out of range",
    };
    let uid = u32::try_from(meta.uid).map_err(|_| invalid())?;
    let gid = u32::try_from(meta.gid).map_err(|_| invalid())?;
    Ok((
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    ))
}

/// An [`ExtractError::Entry`].
fn entry_error(op: &'static str, path: &str, source: io::Error) -> ExtractError {
    ExtractError::Entry {
        op,
        path: path.to_owned(),
        source,
    }
}

/// `Ok` for a tolerated xattr error, else the [`ExtractError::Xattr`] for it.
fn tolerate_xattr(
    path: &str,
    key: &str,
    errno: Errno,
    file_type: FileType,
) -> Result<(), ExtractError> {
    if xattr_error_tolerated(key, errno, file_type) {
        Ok(())
    } else {
        Err(xattr_error(path, key, errno))
    }
}

/// An [`ExtractError::Xattr`].
fn xattr_error(path: &str, key: &str, errno: Errno) -> ExtractError {
    ExtractError::Xattr {
        path: path.to_owned(),
        key: key.to_owned(),
        source: errno.into(),
    }
}
