//! Source trees COPY and ADD read from: the build context directory (filtered by
//! `.dockerignore`) or a directory holding files taken from another stage.
//!
//! Every path is resolved inside the tree's root as if it were chrooted there: `..`
//! stops at the root and symlink targets, absolute or relative, are resolved within
//! it, so no source can reach a file outside the tree.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::ignore::IgnorePatterns;

/// Symlinks followed while resolving one path, at most (Linux's own limit is 40).
const MAX_SYMLINKS: usize = 255;

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source does not exist in the tree.
    #[error("`{path}` not found in {tree}")]
    NotFound {
        /// The path as given.
        path: String,
        /// Which tree was searched.
        tree: String,
    },
    /// Symlinks loop or nest too deep.
    #[error("too many levels of symbolic links resolving `{path}`")]
    SymlinkLoop {
        /// The path as given.
        path: String,
    },
    /// A wildcard pattern that is not well formed.
    #[error("invalid wildcard pattern `{pattern}`")]
    Pattern {
        /// The pattern as given.
        pattern: String,
    },
    /// Reading the tree failed.
    #[error("failed to read `{}`", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The kind of a file found in a source tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A regular file of this many bytes.
    File(u64),
    /// A directory.
    Dir,
    /// A symbolic link with this target, copied as a link.
    Symlink(String),
    /// A device, fifo or socket: copied as what it is where that is possible.
    Special,
}

/// One file found in a source tree, with the metadata a layer records.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path relative to the tree root, `/`-separated.
    pub path: String,
    /// Where its content is on disk.
    pub disk_path: PathBuf,
    /// What it is.
    pub kind: SourceKind,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    /// Owner as recorded by the tree (the context's real owners are not used).
    pub uid: u64,
    /// Group as recorded by the tree.
    pub gid: u64,
    /// Modification time, seconds.
    pub mtime: i64,
}

/// Owner and time overrides for files of a tree whose metadata comes from elsewhere
/// (a stage's layers), keyed by tree path.
pub type MetadataOverrides = BTreeMap<String, (u32, u64, u64, i64)>;

/// A directory tree sources are read from.
pub struct SourceTree {
    root: PathBuf,
    name: String,
    ignore: Option<IgnorePatterns>,
    overrides: MetadataOverrides,
}

impl SourceTree {
    /// The build context at `root`, filtered by `ignore`. Files are owned by 0:0.
    pub fn context(root: &Path, ignore: Option<IgnorePatterns>) -> SourceTree {
        SourceTree {
            root: root.to_path_buf(),
            name: "the build context".to_string(),
            ignore,
            overrides: MetadataOverrides::new(),
        }
    }

    /// A tree of files taken from a stage or image, keeping the owners, modes and
    /// times recorded in `overrides`.
    pub fn taken_from(root: &Path, name: String, overrides: MetadataOverrides) -> SourceTree {
        SourceTree {
            root: root.to_path_buf(),
            name,
            ignore: None,
            overrides,
        }
    }

    /// What the tree is, for messages (`the build context`, ``stage `build` ``).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn is_ignored(&self, path: &str) -> bool {
        self.ignore
            .as_ref()
            .is_some_and(|ignore| !path.is_empty() && ignore.is_excluded(path))
    }

    /// Resolves `path` inside the tree, following symlinks in every component but
    /// the last unless `follow_final`; returns the resolved relative path.
    pub fn resolve(&self, path: &str, follow_final: bool) -> Result<String, SourceError> {
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: Vec<String> = components(path).into_iter().rev().collect();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            if component == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(component);
            let is_final = pending.is_empty();
            if is_final && !follow_final {
                break;
            }
            let disk = self.root.join(resolved.join("/"));
            let Ok(metadata) = std::fs::symlink_metadata(&disk) else {
                continue;
            };
            if !metadata.file_type().is_symlink() {
                continue;
            }
            hops += 1;
            if hops > MAX_SYMLINKS {
                return Err(SourceError::SymlinkLoop {
                    path: path.to_string(),
                });
            }
            let target = std::fs::read_link(&disk).map_err(io_error(&disk))?;
            let target = target.to_string_lossy();
            resolved.pop();
            if target.starts_with('/') {
                resolved.clear();
            }
            pending.extend(components(&target).into_iter().rev());
        }
        Ok(resolved.join("/"))
    }

    /// The paths a COPY source names: itself, or every match of a wildcard pattern.
    ///
    /// A pattern matching nothing gives an empty list, as in BuildKit; a plain path
    /// that does not exist (or is ignored) is an error.
    pub fn matches(&self, source: &str) -> Result<Vec<String>, SourceError> {
        let parts = components(source);
        if !parts.iter().any(|p| has_wildcards(p)) {
            let resolved = self.resolve(source, true)?;
            if self.is_ignored(&resolved) || !self.root.join(&resolved).exists() {
                return Err(SourceError::NotFound {
                    path: source.to_string(),
                    tree: self.name.clone(),
                });
            }
            return Ok(vec![resolved]);
        }
        let mut candidates = vec![String::new()];
        for part in parts {
            let mut next = Vec::new();
            for base in candidates {
                if part == ".." || !has_wildcards(&part) {
                    let joined = if base.is_empty() {
                        part.clone()
                    } else {
                        format!("{base}/{part}")
                    };
                    // A candidate that cannot be resolved (a symlink loop) matches nothing.
                    if let Ok(resolved) = self.resolve(&joined, true) {
                        if self.root.join(&resolved).exists() {
                            next.push(resolved);
                        }
                    }
                    continue;
                }
                let dir = self.root.join(&base);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for name in names {
                    let matched = crate::ignore::glob_match(&part, &name).map_err(|_| {
                        SourceError::Pattern {
                            pattern: source.to_string(),
                        }
                    })?;
                    if matched {
                        let joined = if base.is_empty() {
                            name
                        } else {
                            format!("{base}/{name}")
                        };
                        if let Ok(resolved) = self.resolve(&joined, true) {
                            next.push(resolved);
                        }
                    }
                }
            }
            candidates = next;
        }
        candidates.retain(|c| !self.is_ignored(c));
        candidates.dedup();
        Ok(candidates)
    }

    /// Reads one file's metadata without following a final symlink.
    pub fn stat(&self, path: &str) -> Result<SourceFile, SourceError> {
        let disk_path = self.root.join(path);
        let metadata = std::fs::symlink_metadata(&disk_path).map_err(io_error(&disk_path))?;
        let file_type = metadata.file_type();
        let kind = if file_type.is_symlink() {
            let target = std::fs::read_link(&disk_path).map_err(io_error(&disk_path))?;
            SourceKind::Symlink(target.to_string_lossy().into_owned())
        } else if file_type.is_dir() {
            SourceKind::Dir
        } else if file_type.is_file() {
            SourceKind::File(metadata.len())
        } else {
            SourceKind::Special
        };
        let (mode, uid, gid, mtime) = match self.overrides.get(path) {
            Some(&meta) => meta,
            None => (metadata.mode() & 0o7777, 0, 0, metadata.mtime()),
        };
        Ok(SourceFile {
            path: path.to_string(),
            disk_path,
            kind,
            mode,
            uid,
            gid,
            mtime,
        })
    }

    /// Every file below directory `dir` (not `dir` itself), parents before children,
    /// skipping ignored paths but descending where an exception may re-include some.
    pub fn walk(&self, dir: &str) -> Result<Vec<SourceFile>, SourceError> {
        let mut out = Vec::new();
        self.walk_into(dir, &mut out)?;
        Ok(out)
    }

    fn walk_into(&self, dir: &str, out: &mut Vec<SourceFile>) -> Result<(), SourceError> {
        let disk = self.root.join(dir);
        let entries = std::fs::read_dir(&disk).map_err(io_error(&disk))?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let path = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            let file = self.stat(&path)?;
            let is_dir = file.kind == SourceKind::Dir;
            if self.is_ignored(&path) {
                let descend = is_dir
                    && self
                        .ignore
                        .as_ref()
                        .is_some_and(|i| i.may_include_below(&path));
                if descend {
                    // Only the re-included files and their directories are kept.
                    let mut below = Vec::new();
                    self.walk_into(&path, &mut below)?;
                    if !below.is_empty() {
                        out.push(file);
                        out.extend(below);
                    }
                }
                continue;
            }
            out.push(file);
            if is_dir {
                self.walk_into(&path, out)?;
            }
        }
        Ok(())
    }
}

/// Splits a path into its components, dropping empty ones and `.`.
pub fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

/// True when a path component holds `*`, `?` or `[` not escaped by a backslash.
pub fn has_wildcards(component: &str) -> bool {
    let mut chars = component.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, SourceTree) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for file in [
            "a.txt",
            "b.txt",
            "src/main.go",
            "src/util/x.go",
            "docs/readme.md",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, file).expect("write");
        }
        std::os::unix::fs::symlink("/src", root.join("abs-link")).expect("symlink");
        std::os::unix::fs::symlink("../../../../etc", root.join("escape")).expect("symlink");
        std::os::unix::fs::symlink("loop", root.join("loop")).expect("symlink");
        let ignore = IgnorePatterns::parse("docs\n*.md\n").ok();
        let tree = SourceTree::context(root, ignore);
        (dir, tree)
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let (_dir, tree) = tree();
        assert_eq!(
            tree.resolve("abs-link/main.go", true).ok().as_deref(),
            Some("src/main.go")
        );
        assert_eq!(
            tree.resolve("escape/passwd", true).ok().as_deref(),
            Some("etc/passwd")
        );
        assert_eq!(
            tree.resolve("../../a.txt", true).ok().as_deref(),
            Some("a.txt")
        );
        assert_eq!(
            tree.resolve("abs-link", false).ok().as_deref(),
            Some("abs-link")
        );
        assert!(matches!(
            tree.resolve("loop", true),
            Err(SourceError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn sources_never_leave_the_context() {
        let (_dir, tree) = tree();
        let error = tree.matches("escape/passwd").map(|m| m.len());
        assert!(
            matches!(error, Err(SourceError::NotFound { .. })),
            "{error:?}"
        );
        assert_eq!(
            tree.matches("../a.txt").ok(),
            Some(vec!["a.txt".to_string()])
        );
    }

    #[test]
    fn wildcards_match_per_component() {
        let (_dir, tree) = tree();
        assert_eq!(
            tree.matches("*.txt").ok(),
            Some(vec!["a.txt".into(), "b.txt".into()])
        );
        assert_eq!(
            tree.matches("src/*.go").ok(),
            Some(vec!["src/main.go".into()])
        );
        assert_eq!(
            tree.matches("*/util/?.go").ok(),
            Some(vec!["src/util/x.go".into()])
        );
        assert_eq!(tree.matches("nothing*").ok(), Some(Vec::new()));
        assert_eq!(tree.matches("[ab].txt").ok().map(|m| m.len()), Some(2));
    }

    #[test]
    fn ignored_files_are_invisible() {
        let (_dir, tree) = tree();
        assert!(matches!(
            tree.matches("docs/readme.md"),
            Err(SourceError::NotFound { .. })
        ));
        let walked: Vec<String> = tree
            .walk("")
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert!(!walked.iter().any(|p| p.starts_with("docs")), "{walked:?}");
        assert!(walked.contains(&"src/util/x.go".to_string()));
    }
}
