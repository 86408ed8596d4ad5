//! Layers for the sandbox tests: entries written with the real layer writer into a
//! temporary store, and a busybox base made from Debian's static binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::build::LayerRecord;
use crate::layer::compress::Compression;
use crate::layer::writer::{EntryKind, FileSource, LayerEntry, LayerWriter, sort_entries};
use crate::store::Store;

/// Where the `busybox-static` package installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// A store in a fresh temporary directory.
pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("store")).expect("open store");
    (dir, store)
}

fn entry(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
    LayerEntry {
        path: path.to_string(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        xattrs: BTreeMap::new(),
    }
}

/// A regular file with `content`, mode 0644.
pub fn file(path: &str, content: &str) -> LayerEntry {
    let kind = EntryKind::File {
        source: FileSource::Bytes(content.as_bytes().to_vec()),
        size: content.len() as u64,
    };
    entry(path, kind, 0o644)
}

/// A directory, mode 0755.
pub fn dir(path: &str) -> LayerEntry {
    entry(path, EntryKind::Dir, 0o755)
}

/// A symlink.
pub fn symlink(path: &str, target: &str) -> LayerEntry {
    let kind = EntryKind::Symlink {
        target: target.to_string(),
    };
    entry(path, kind, 0o777)
}

/// A whiteout of `path`.
pub fn whiteout(path: &str) -> LayerEntry {
    entry(path, EntryKind::Whiteout, 0)
}

/// Writes `entries` (sorted here) as a gzip layer into `store`.
pub fn layer(store: &Store, mut entries: Vec<LayerEntry>) -> LayerRecord {
    sort_entries(&mut entries);
    let mut writer = LayerWriter::new(store, Compression::Gzip).expect("layer writer");
    for entry in &entries {
        writer.append(entry).expect("append entry");
    }
    let (layer, index) = writer.finish().expect("finish layer");
    LayerRecord::built(&layer, Arc::new(index))
}

/// The applets the tests' commands use.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "id", "ls", "mkdir", "rm", "chmod", "chown", "touch", "ln", "mv", "true",
    "false", "test", "stat", "printf", "sleep", "env", "pwd", "mkfifo", "rmdir",
];

/// A busybox root file system as one layer: `bin/busybox` and applet links, account files
/// (root, `app` 1000), `tmp` 1777 and empty `dev`, `proc`, `sys`, `etc`.
pub fn busybox_layer(store: &Store) -> LayerRecord {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "`{BUSYBOX}` (package busybox-static) is not installed: run `scripts/install-test-deps`"
    );
    let size = std::fs::metadata(BUSYBOX).expect("stat busybox").len();
    let mut entries = vec![
        dir("bin"),
        entry(
            "bin/busybox",
            EntryKind::File {
                source: FileSource::Path(BUSYBOX.into()),
                size,
            },
            0o755,
        ),
        dir("etc"),
        file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        ),
        file("etc/group", "root:x:0:\napp:x:1000:\n"),
        entry("tmp", EntryKind::Dir, 0o1777),
        entry("root", EntryKind::Dir, 0o700),
        dir("dev"),
        dir("proc"),
        dir("sys"),
    ];
    entries.extend(
        APPLETS
            .iter()
            .map(|a| symlink(&format!("bin/{a}"), "busybox")),
    );
    layer(store, entries)
}

/// Fails the test with a clear message unless it runs as root.
pub fn require_root(what: &str) {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root ({what}); run the tests as root, as CI does"
    );
}
