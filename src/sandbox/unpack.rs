//! Layers unpacked once into the store, in the form overlayfs reads as lower layers.
//!
//! `unpacked/<chain id>/` holds one layer's files with its whiteouts as overlay whiteouts
//! (character devices 0:0, `trusted.overlay.opaque`). The key is the layer's chain id (its
//! diff id combined with every diff id below it, as containerd keys snapshots), because the
//! directories a layer creates implicitly take their metadata from the layers below: a layer
//! holding `tmp/x` but no `tmp` entry must not turn the base's `/tmp` (1777) into 0755 when
//! overlayfs merges directories. The same base in a later build, or another stage on it, finds
//! its layers unpacked and extracts nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Gid, Timespec, Timestamps, Uid};

use super::SandboxError;
use crate::build::LayerRecord;
use crate::layer::compress::decompressed;
use crate::layer::extract::{ExtractOptions, apply_layer};
use crate::layer::index::{FsView, IndexKind};
use crate::oci::digest::Digest;
use crate::store::Store;

/// The directory of the store holding unpacked layers.
pub fn unpacked_root(store: &Store) -> PathBuf {
    store.root().join("unpacked")
}

/// The chain ids of `layers`, lowest first.
pub fn chain_ids(layers: &[LayerRecord]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(layers.len());
    for layer in layers {
        let next = match chain.last() {
            None => layer.diff_id,
            Some(parent) => Digest::of(format!("{parent} {}", layer.diff_id).as_bytes()),
        };
        chain.push(next);
    }
    chain
}

/// What [`unpacked_layers`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Layers extracted now.
    pub extracted: usize,
    /// Layers found already unpacked.
    pub reused: usize,
}

/// Makes sure every layer of `layers` (lowest first, blobs in the store) is unpacked; returns
/// their directories, lowest first.
pub fn unpacked_layers(
    store: &Store,
    layers: &[LayerRecord],
) -> Result<(Vec<PathBuf>, UnpackStats), SandboxError> {
    let root = unpacked_root(store);
    std::fs::create_dir_all(&root).map_err(|e| SandboxError::Unpack {
        digest: String::new(),
        message: format!("create `{}`: {e}", root.display()),
    })?;
    let mut dirs = Vec::with_capacity(layers.len());
    let mut stats = UnpackStats::default();
    for (position, (layer, chain)) in layers.iter().zip(chain_ids(layers)).enumerate() {
        let dir = root.join(chain.hex());
        if dir.is_dir() {
            stats.reused += 1;
        } else {
            unpack_one(store, &layers[..position], layer, &dir)?;
            stats.extracted += 1;
        }
        dirs.push(dir);
    }
    Ok((dirs, stats))
}

/// Extracts `layer` into a private directory and renames it to `dir` once complete.
fn unpack_one(
    store: &Store,
    below: &[LayerRecord],
    layer: &LayerRecord,
    dir: &Path,
) -> Result<(), SandboxError> {
    let fail = |message: String| SandboxError::Unpack {
        digest: layer.descriptor.digest.to_string(),
        message,
    };
    let temp = store.temp_dir().map_err(|e| fail(e.to_string()))?;
    let target = temp.path().join("layer");
    std::fs::create_dir(&target)
        .map_err(|e| fail(format!("create `{}`: {e}", target.display())))?;
    let blob = store
        .open_blob(&layer.descriptor.digest)
        .map_err(|e| fail(e.to_string()))?;
    let tar = decompressed(std::io::BufReader::new(blob)).map_err(|e| fail(e.to_string()))?;
    let options = ExtractOptions {
        same_owner: true,
        devices: true,
        xattrs: true,
        overlay_whiteouts: true,
    };
    apply_layer(&target, tar, &options).map_err(|e| fail(error_chain(&e)))?;
    inherit_parent_metadata(below, layer, &target).map_err(fail)?;
    match std::fs::rename(&target, dir) {
        Ok(()) => Ok(()),
        // Another build unpacked the same chain first: its copy is as good as ours.
        Err(_) if dir.is_dir() => Ok(()),
        Err(e) => Err(fail(format!(
            "move the unpacked layer to `{}`: {e}",
            dir.display()
        ))),
    }
}

/// Gives the directories the extractor created implicitly (parents with no entry of their
/// own in the layer) the metadata the layers below have for them.
fn inherit_parent_metadata(
    below: &[LayerRecord],
    layer: &LayerRecord,
    target: &Path,
) -> Result<(), String> {
    let own: BTreeSet<&str> = layer
        .index
        .entries
        .iter()
        .filter(|e| e.kind == IndexKind::Dir)
        .map(|e| e.path.as_str())
        .collect();
    let mut implicit = BTreeSet::new();
    for entry in &layer.index.entries {
        let mut path = entry.path.as_str();
        while let Some((parent, _)) = path.rsplit_once('/') {
            if !own.contains(parent) {
                implicit.insert(parent.to_string());
            }
            path = parent;
        }
    }
    if implicit.is_empty() {
        return Ok(());
    }
    let view = FsView::new(below.iter().map(|l| Arc::clone(&l.index)).collect());
    // Deepest first, so setting a child's times does not disturb its parent's afterwards.
    for path in implicit.iter().rev() {
        let Some(lower) = view.lookup(path).filter(|e| e.kind == IndexKind::Dir) else {
            continue;
        };
        let disk = target.join(path);
        let meta = std::fs::symlink_metadata(&disk)
            .map_err(|e| format!("stat `{}`: {e}", disk.display()))?;
        if !meta.is_dir() {
            continue;
        }
        rustix::fs::chown(
            &disk,
            Some(Uid::from_raw(lower.uid as u32)),
            Some(Gid::from_raw(lower.gid as u32)),
        )
        .map_err(|e| format!("chown `{}`: {e}", disk.display()))?;
        rustix::fs::chmod(&disk, rustix::fs::Mode::from_raw_mode(lower.mode))
            .map_err(|e| format!("chmod `{}`: {e}", disk.display()))?;
        let time = Timespec {
            tv_sec: lower.mtime,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &disk,
            &Timestamps {
                last_access: time,
                last_modification: time,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| format!("set times of `{}`: {e}", disk.display()))?;
    }
    Ok(())
}

use crate::error_chain;
