//! Tests of layer indexing: header normalization, whiteouts, small files and the cache.

use std::io::Write;

use super::*;
use crate::layer::compress::Compression;
use crate::store::Store;

/// A gzip layer as other tools write them: `./` prefixes, absolute names, GNU headers.
fn foreign_layer(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, content, link) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o640);
        header.set_uid(7);
        header.set_gid(8);
        header.set_mtime(1_600_000_000);
        header.set_size(content.len() as u64);
        // Raw names: `append_data` would refuse or rewrite `/` and `..`.
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if let Some(link) = link {
            header.set_link_name(link).expect("link");
        }
        header.set_cksum();
        builder.append(&header, *content).expect("append");
    }
    let tar = builder.into_inner().expect("tar");
    let mut encoder = Compression::Gzip.encoder(Vec::new()).expect("encoder");
    encoder.write_all(&tar).expect("compress");
    encoder.finish().expect("finish")
}

fn stored(bytes: &[u8]) -> (tempfile::TempDir, Store, Digest) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let mut writer = store.blob_writer().expect("writer");
    writer.write_all(bytes).expect("write");
    let (digest, _) = writer.commit(None).expect("commit");
    (dir, store, digest)
}

use tar::EntryType as T;

#[test]
fn headers_are_normalized_and_whiteouts_recognized() {
    let big_passwd = vec![b'x'; SMALL_FILE_LIMIT as usize];
    let blob = foreign_layer(&[
        ("./", T::Directory, b"", None),
        ("./etc/", T::Directory, b"", None),
        ("./etc/passwd", T::Regular, b"root:x:0:0::/:/bin/sh\n", None),
        ("/etc/group", T::Regular, b"root:x:0:\n", None),
        ("etc//hosts", T::Regular, b"127.0.0.1 localhost\n", None),
        ("etc/.wh.shadow", T::Regular, b"", None),
        ("var/.wh..wh..opq", T::Regular, b"", None),
        ("var/.wh..wh.plnk", T::Regular, b"", None),
        (
            "usr/share/passwd",
            T::Regular,
            b"alt:x:1:1::/:/bin/sh\n",
            None,
        ),
        ("opt/passwd", T::Regular, &big_passwd, None),
        ("../escape", T::Regular, b"", None),
        ("bin/sh", T::Symlink, b"", Some("/bin/busybox")),
        ("bin/ash", T::Link, b"data", Some("./bin/busybox")),
        ("dev/null", T::Char, b"", None),
    ]);
    let (_dir, store, digest) = stored(&blob);
    let index = index_layer(&store, &digest).expect("index");
    let seen: Vec<(&str, IndexKind)> = index
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind))
        .collect();
    assert_eq!(
        seen,
        [
            ("", IndexKind::Dir),
            ("etc", IndexKind::Dir),
            ("etc/passwd", IndexKind::File),
            ("etc/group", IndexKind::File),
            ("etc/hosts", IndexKind::File),
            ("etc/shadow", IndexKind::Whiteout),
            ("var", IndexKind::OpaqueDir),
            ("usr/share/passwd", IndexKind::File),
            ("opt/passwd", IndexKind::File),
            ("escape", IndexKind::File),
            ("bin/sh", IndexKind::Symlink),
            ("bin/ash", IndexKind::HardLink),
            ("dev/null", IndexKind::CharDevice),
        ]
    );
    let hosts = &index.entries[4];
    assert_eq!(
        (hosts.mode, hosts.uid, hosts.gid, hosts.size),
        (0o640, 7, 8, 20)
    );
    assert_eq!(hosts.mtime, 1_600_000_000);
    assert_eq!(
        index.entries[10].link_target.as_deref(),
        Some("/bin/busybox")
    );
    assert_eq!(
        index.entries[11].link_target.as_deref(),
        Some("bin/busybox")
    );
    assert_eq!(index.entries[11].size, 0);
    let captured: Vec<&str> = index.small_files.keys().map(String::as_str).collect();
    assert_eq!(
        captured,
        ["etc/group", "etc/passwd", "usr/share/passwd"],
        "not hosts, not 1 MiB"
    );
    assert_eq!(index.small_files["etc/group"], b"root:x:0:\n");
}

#[test]
fn index_is_cached_and_the_blob_not_reopened() {
    let blob = foreign_layer(&[("etc/passwd", T::Regular, b"root:x:0:0::/:/bin/sh\n", None)]);
    let (_dir, store, digest) = stored(&blob);
    let first = index_layer(&store, &digest).expect("first");
    assert_eq!(first.entries.len(), 1);
    std::fs::remove_file(store.blob_path(&digest)).expect("remove blob");
    let second = index_layer(&store, &digest).expect("served from the cache");
    assert_eq!(second, first);
}

#[test]
fn a_broken_cache_is_rebuilt_and_a_missing_blob_reported() {
    let blob = foreign_layer(&[("a", T::Regular, b"1", None)]);
    let (_dir, store, digest) = stored(&blob);
    store
        .write_meta("layer-index", &digest.hex(), b"{not json")
        .expect("corrupt");
    assert_eq!(
        index_layer(&store, &digest).expect("rebuilt").entries[0].path,
        "a"
    );
    let stale = br#"{"version":0,"index":{"entries":[],"small_files":{}}}"#;
    store
        .write_meta("layer-index", &digest.hex(), stale)
        .expect("stale");
    assert_eq!(
        index_layer(&store, &digest).expect("rebuilt").entries.len(),
        1
    );

    let other = Digest::of(b"absent");
    let error = index_layer(&store, &other).expect_err("no blob");
    assert!(matches!(error, LayerError::OpenBlob { .. }), "{error}");
    assert!(error.to_string().contains(&other.to_string()), "{error}");
}

#[test]
fn invalid_whiteouts_and_garbage_are_errors() {
    let blob = foreign_layer(&[("dir/.wh.", T::Regular, b"", None)]);
    let (_dir, store, digest) = stored(&blob);
    let error = index_layer(&store, &digest).expect_err("invalid whiteout");
    assert!(
        matches!(error, LayerError::InvalidWhiteout { .. }),
        "{error}"
    );

    let mut encoder = Compression::Gzip.encoder(Vec::new()).expect("encoder");
    encoder.write_all(&[0x55; 4096]).expect("write");
    let (_dir, store, digest) = stored(&encoder.finish().expect("finish"));
    let error = index_layer(&store, &digest).expect_err("not a tar");
    assert!(matches!(error, LayerError::ReadLayer { .. }), "{error}");
}

#[test]
fn pax_times_round_down() {
    let cases = [
        ("12", Some(12)),
        ("-12", Some(-12)),
        ("1.75", Some(1)),
        ("-1.5", Some(-2)),
    ];
    for (text, expected) in cases.into_iter().chain([("-3.000", Some(-3)), ("x", None)]) {
        assert_eq!(parse_pax_time(text), expected, "{text}");
    }
}

#[test]
fn normalize_path_cleans_lexically() {
    let cases = [
        ("./a/b/", "a/b"),
        ("/a//b/./c", "a/b/c"),
        ("a/../../b", "b"),
        ("./", ""),
        ("/", ""),
        ("..", ""),
    ];
    for (input, expected) in cases {
        assert_eq!(normalize_path(input), expected, "{input}");
    }
}

#[test]
fn cached_index_survives_serialization() {
    let index = LayerIndex {
        entries: vec![IndexEntry {
            path: "a".into(),
            kind: IndexKind::OpaqueDir,
            mode: 0o755,
            uid: 1,
            gid: 2,
            size: 0,
            mtime: -1,
            link_target: None,
        }],
        small_files: BTreeMap::from([("etc/group".into(), b"g".to_vec())]),
    };
    let (_dir, store, digest) = stored(b"unused");
    save_index(&store, &digest, &index).expect("save");
    std::fs::remove_file(store.blob_path(&digest)).expect("remove blob");
    assert_eq!(index_layer(&store, &digest).expect("cached"), index);
}
