//! A merged read-only view of a layer stack, built from layer indexes: what a container's
//! root file system would hold, answered without extracting anything.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::layer::LayerError;
use crate::layer::index::{IndexEntry, IndexKind, LayerIndex, normalize_path};

/// Symlinks followed by one [`FsView::resolve`] at most.
pub const MAX_SYMLINK_HOPS: usize = 255;

/// Where the visible entry of a path comes from.
#[derive(Clone, Debug)]
struct Slot {
    layer: usize,
    entry: usize,
    // Hard links show their target's metadata, copied when the link's layer is pushed.
    patched: Option<Box<IndexEntry>>,
}

/// A merged read-only view of a stack of layers (lowest first), applying whiteouts and opaque
/// dirs.
///
/// Merging follows the OCI changeset rules as runtimes apply them: an upper entry replaces
/// the lower one at its path; a whiteout deletes the lower path and everything below it; an
/// opaque marker deletes everything below its directory; a non-directory replaces a
/// directory together with its contents. Whiteouts and opaque markers never affect their
/// own layer's entries. Paths are taken literally: an entry whose parent is missing or is a
/// symlink in the view is still found at its own path by [`FsView::lookup`].
#[derive(Clone, Debug, Default)]
pub struct FsView {
    layers: Vec<Arc<LayerIndex>>,
    merged: BTreeMap<String, Slot>,
}

impl FsView {
    /// A view of `layers`, lowest first.
    pub fn new(layers: Vec<Arc<LayerIndex>>) -> FsView {
        let mut view = FsView::default();
        for layer in layers {
            view.push(layer);
        }
        view
    }

    /// Stacks `layer` on top.
    pub fn push(&mut self, layer: Arc<LayerIndex>) {
        let upper = self.layers.len();
        self.layers.push(Arc::clone(&layer));
        // Deletions first, before this layer's own entries are in: they apply to the lower
        // layers only, whatever their place in the tar.
        for entry in &layer.entries {
            match entry.kind {
                IndexKind::Whiteout => self.remove(&entry.path, true),
                IndexKind::OpaqueDir => self.remove(&entry.path, false),
                _ => {}
            }
        }
        for (position, entry) in layer.entries.iter().enumerate() {
            match entry.kind {
                IndexKind::Whiteout | IndexKind::OpaqueDir => continue,
                IndexKind::Dir => {}
                // A file, link or device where a directory was replaces it with its contents,
                // as extraction does: lower entries and ones earlier in this tar alike.
                _ => self.remove(&entry.path, false),
            }
            let patched = match (entry.kind, &entry.link_target) {
                (IndexKind::HardLink, Some(target)) => self.lookup(target).map(|target| {
                    Box::new(IndexEntry {
                        path: entry.path.clone(),
                        kind: IndexKind::HardLink,
                        link_target: entry.link_target.clone(),
                        ..target.clone()
                    })
                }),
                _ => None,
            };
            let slot = Slot {
                layer: upper,
                entry: position,
                patched,
            };
            self.merged.insert(entry.path.clone(), slot);
        }
    }

    /// Removes the entries below `path` (and at `path` if `itself`).
    fn remove(&mut self, path: &str, itself: bool) {
        if itself {
            self.merged.remove(path);
        }
        let doomed: Vec<String> = self
            .merged
            .range(subtree(path))
            .map(|(key, _)| key.clone())
            .collect();
        for key in doomed {
            self.merged.remove(&key);
        }
    }

    fn entry_of<'a>(&'a self, slot: &'a Slot) -> Option<&'a IndexEntry> {
        match &slot.patched {
            Some(patched) => Some(patched),
            None => self.layers.get(slot.layer)?.entries.get(slot.entry),
        }
    }

    /// The entry at `path` (relative or absolute, normalized; symlinks in the final component
    /// NOT followed).
    ///
    /// Normalization is lexical (`a/../b` is `b`); use [`FsView::resolve`] to follow
    /// symlinks in parent components.
    pub fn lookup(&self, path: &str) -> Option<&IndexEntry> {
        self.entry_of(self.merged.get(&normalize_path(path))?)
    }

    /// Resolves `path` inside the root following symlinks in every component (like chroot
    /// would, `..` clamped at `/`), returning the resolved relative path and the entry if it
    /// exists; at most 255 symlink hops.
    ///
    /// Absolute symlink targets restart at the root, relative ones at the link's directory.
    /// A trailing `/` or `/.` makes the final component count as a directory to enter, so
    /// a final symlink is followed then. A missing component ends nothing: the rest of the
    /// path is appended literally and the entry is `None`.
    pub fn resolve(
        &self,
        path: &str,
        follow_final: bool,
    ) -> Result<(String, Option<&IndexEntry>), LayerError> {
        let follow_final = follow_final || path.ends_with('/');
        // Components still to walk, the next one last.
        let mut pending: Vec<&str> = path.split('/').rev().collect();
        let mut resolved = String::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component {
                "" | "." => continue,
                ".." => {
                    // `resolved` holds no symlinks, so its parent is the real parent.
                    resolved.truncate(resolved.rfind('/').unwrap_or(0));
                    continue;
                }
                _ => {}
            }
            let candidate = join(&resolved, component);
            let is_last = pending.is_empty();
            let link = self
                .merged
                .get(&candidate)
                .and_then(|slot| self.entry_of(slot))
                .filter(|entry| entry.kind == IndexKind::Symlink && (!is_last || follow_final));
            match link {
                Some(link) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(LayerError::SymlinkLoop {
                            path: path.to_string(),
                        });
                    }
                    let target = link.link_target.as_deref().unwrap_or_default();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    pending.extend(target.split('/').rev());
                }
                None => resolved = candidate,
            }
        }
        let entry = self
            .merged
            .get(&resolved)
            .and_then(|slot| self.entry_of(slot));
        Ok((resolved, entry))
    }

    /// The content of a small file captured while indexing (`etc/passwd`, `etc/group`),
    /// resolved through symlinks.
    ///
    /// `None` when the path does not resolve to a regular file (or hard link) whose content
    /// was captured by the layer providing it.
    pub fn small_file(&self, path: &str) -> Option<&[u8]> {
        let (resolved, entry) = self.resolve(path, true).ok()?;
        let slot = self.merged.get(&resolved)?;
        let content_path = match entry?.kind {
            IndexKind::File => resolved,
            // The content is the target's, captured in the layer holding the target.
            IndexKind::HardLink => entry?.link_target.clone()?,
            _ => return None,
        };
        let own = self.layers.get(slot.layer)?.small_files.get(&content_path);
        let found = own.or_else(|| {
            let target = self.merged.get(&content_path)?;
            self.layers
                .get(target.layer)?
                .small_files
                .get(&content_path)
        });
        found.map(Vec::as_slice)
    }

    /// Direct children of a directory.
    ///
    /// The path is taken literally (normalized, symlinks not followed), and children are
    /// sorted by name. Entries found deeper without their own parent entry are not listed.
    pub fn list_dir(&self, path: &str) -> Vec<&IndexEntry> {
        let dir = normalize_path(path);
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut children = Vec::new();
        let mut cursor = Bound::Included(prefix.clone());
        while let Some((key, slot)) = self.merged.range((cursor, Bound::Unbounded)).next() {
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            match rest.find('/') {
                // Deeper: skip that child's whole subtree, which ends before `<child>0`.
                Some(end) => cursor = Bound::Included(format!("{prefix}{}0", &rest[..end])),
                None => {
                    // `rest` is empty only for the root entry itself.
                    if !rest.is_empty() {
                        children.extend(self.entry_of(slot));
                    }
                    cursor = Bound::Excluded(key.clone());
                }
            }
        }
        children
    }
}

/// The key range holding every path strictly below `path` (everything but the root for the
/// root): `<path>/` up to, not including, `<path>0`, since `0` follows `/` in byte order.
fn subtree(path: &str) -> (Bound<String>, Bound<String>) {
    if path.is_empty() {
        (Bound::Excluded(String::new()), Bound::Unbounded)
    } else {
        (
            Bound::Included(format!("{path}/")),
            Bound::Excluded(format!("{path}0")),
        )
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
