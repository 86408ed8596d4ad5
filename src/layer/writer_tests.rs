//! Tests of the layer writer: digests, reproducibility, header normalization, ordering and
//! bounded memory.

use std::io::{Cursor, Read};

use super::*;
use crate::layer::compress::decompressed;
use crate::layer::index::index_layer;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    (dir, store)
}

fn entry(path: &str, kind: EntryKind) -> LayerEntry {
    LayerEntry {
        path: path.to_string(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        xattrs: BTreeMap::new(),
    }
}

fn file(path: &str, content: &[u8]) -> LayerEntry {
    let kind = EntryKind::File {
        source: FileSource::Bytes(content.to_vec()),
        size: content.len() as u64,
    };
    entry(path, kind)
}

fn dir(path: &str) -> LayerEntry {
    LayerEntry {
        mode: 0o755,
        ..entry(path, EntryKind::Dir)
    }
}

fn write(store: &Store, compression: Compression, entries: &[LayerEntry]) -> (Layer, LayerIndex) {
    let mut writer = LayerWriter::new(store, compression).expect("writer");
    for e in entries {
        writer.append(e).expect("append");
    }
    writer.finish().expect("finish")
}

fn blob(store: &Store, layer: &Layer) -> Vec<u8> {
    std::fs::read(store.blob_path(&layer.digest)).expect("blob")
}

fn tar_bytes(store: &Store, layer: &Layer) -> Vec<u8> {
    let mut out = Vec::new();
    decompressed(Cursor::new(blob(store, layer)))
        .and_then(|mut r| r.read_to_end(&mut out))
        .expect("decompress");
    out
}

/// (name, type, mode, uid, gid, mtime, link, uname, device major) of each tar entry.
type Seen = (
    String,
    tar::EntryType,
    u32,
    u64,
    u64,
    u64,
    Option<String>,
    Vec<u8>,
    Option<u32>,
);

fn read_back(tar: &[u8]) -> Vec<Seen> {
    let mut archive = tar::Archive::new(tar);
    let mut seen = Vec::new();
    for e in archive.entries().expect("entries") {
        let e = e.expect("entry");
        let h = e.header();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let device = match h.entry_type() {
            tar::EntryType::Char | tar::EntryType::Block => h.device_major().expect("major"),
            _ => None,
        };
        seen.push((
            String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            h.entry_type(),
            h.mode().expect("mode"),
            h.uid().expect("uid"),
            h.gid().expect("gid"),
            h.mtime().expect("mtime"),
            link,
            h.username_bytes().unwrap_or_default().to_vec(),
            device,
        ));
    }
    seen
}

fn sample() -> Vec<LayerEntry> {
    vec![
        dir("etc"),
        file("etc/group", b"root:x:0:\n"),
        file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        entry(
            "etc/rc",
            EntryKind::Symlink {
                target: "../init/rc".into(),
            },
        ),
        entry(
            "etc/rc.hard",
            EntryKind::HardLink {
                target: "etc/group".into(),
            },
        ),
        dir("usr"),
        entry("usr/gone", EntryKind::Whiteout),
        entry("usr/null", EntryKind::CharDevice { major: 1, minor: 3 }),
        entry("usr/pipe", EntryKind::Fifo),
        dir("var"),
        entry("var", EntryKind::OpaqueDir),
        file("var/x", &[7; 1000]),
    ]
}

#[test]
fn digests_match_the_blob_and_the_tar() {
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let (_dir, store) = store();
        let (layer, _) = write(&store, compression, &sample());
        let blob = blob(&store, &layer);
        let tar = tar_bytes(&store, &layer);
        assert_eq!(layer.digest, Digest::of(&blob), "{compression:?}");
        assert_eq!(layer.size, blob.len() as u64);
        assert_eq!(layer.diff_id, Digest::of(&tar));
        assert_eq!(layer.uncompressed_size, tar.len() as u64);
        assert_eq!(layer.media_type, compression.media_type());
        assert_eq!(tar.len() % 512, 0);
        assert_eq!(
            &tar[tar.len() - 1024..],
            &[0u8; 1024][..],
            "end-of-archive marker"
        );
        if compression == Compression::None {
            assert_eq!(blob, tar);
        }
    }
}

#[test]
fn same_entries_give_identical_bytes() {
    let (_a, first) = store();
    let (_b, second) = store();
    let (one, _) = write(&first, Compression::Gzip, &sample());
    let (two, _) = write(&second, Compression::Gzip, &sample());
    assert_eq!(one, two);
    assert_eq!(blob(&first, &one), blob(&second, &two));
    let mut changed = sample();
    changed[1].mtime += 1;
    let (three, _) = write(&second, Compression::Gzip, &changed);
    assert_ne!(three.diff_id, one.diff_id, "the mtime is part of the layer");
}

#[test]
fn headers_are_normalized() {
    let (_dir, store) = store();
    let (layer, _) = write(&store, Compression::None, &sample());
    let seen = read_back(&tar_bytes(&store, &layer));
    let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "etc/",
            "etc/group",
            "etc/passwd",
            "etc/rc",
            "etc/rc.hard",
            "usr/",
            "usr/.wh.gone",
            "usr/null",
            "usr/pipe",
            "var/",
            "var/.wh..wh..opq",
            "var/x"
        ]
    );
    let by_name = |name: &str| seen.iter().find(|s| s.0 == name).expect(name);
    assert_eq!(by_name("etc/").1, tar::EntryType::Directory);
    assert_eq!(by_name("etc/").2, 0o755);
    assert_eq!(by_name("etc/rc").6.as_deref(), Some("../init/rc"));
    assert_eq!(by_name("etc/rc.hard").1, tar::EntryType::Link);
    assert_eq!(by_name("etc/rc.hard").6.as_deref(), Some("etc/group"));
    let whiteout = by_name("usr/.wh.gone");
    assert_eq!(
        (whiteout.1, whiteout.2, whiteout.5),
        (tar::EntryType::Regular, 0, 1_700_000_000)
    );
    assert_eq!(by_name("usr/null").8, Some(1));
    assert_eq!(by_name("var/.wh..wh..opq").2, 0);
    assert!(seen.iter().all(|s| s.7.is_empty()), "no user names");
    // Only devices carry device numbers: the fields of other entries stay NUL.
    let tar = tar_bytes(&store, &layer);
    assert_eq!(&tar[329..345], &[0u8; 16][..]);
}

#[test]
fn long_paths_and_large_ids_round_trip() {
    let (_dir, store) = store();
    let long_dir = (0..100)
        .map(|i| format!("d{i:017}"))
        .collect::<Vec<_>>()
        .join("/");
    assert!(long_dir.len() >= 1_800);
    let long_file = format!("{long_dir}/{}", "f".repeat(2_000 - long_dir.len() - 1));
    assert_eq!(long_file.len(), 2_000);
    let long_target = "t/".repeat(300);
    let mut big = file(&long_file, b"content");
    big.uid = 1_000_000_000;
    big.gid = 3_000_000_000;
    big.mtime = -86_400;
    let parents: Vec<LayerEntry> = long_dir
        .match_indices('/')
        .map(|(i, _)| dir(&long_dir[..i]))
        .chain([dir(&long_dir)])
        .collect();
    let mut entries = parents;
    entries.push(big);
    entries.push(entry(
        "z",
        EntryKind::Symlink {
            target: long_target.clone(),
        },
    ));
    let (layer, written) = write(&store, Compression::Gzip, &entries);
    let seen = read_back(&tar_bytes(&store, &layer));
    let found = seen
        .iter()
        .find(|s| s.0 == long_file)
        .expect("long path survives");
    assert_eq!((found.3, found.4), (1_000_000_000, 3_000_000_000));
    let link = seen.iter().find(|s| s.0 == "z").expect("link");
    assert_eq!(link.6.as_deref(), Some(long_target.as_str()));

    // The index read back, including the PAX mtime, equals what the writer reported.
    std::fs::remove_dir_all(store.root().join("meta")).expect("drop cache");
    let indexed = index_layer(&store, &layer.digest).expect("index");
    assert_eq!(indexed, written);
    let last = indexed
        .entries
        .iter()
        .find(|e| e.path == long_file)
        .expect("indexed");
    assert_eq!((last.uid, last.mtime), (1_000_000_000, -86_400));
}

/// Splits PAX data by its length prefixes, as the format defines (not at newlines).
fn parse_pax(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut records = Vec::new();
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').expect("length");
        let len: usize = std::str::from_utf8(&data[..space])
            .expect("digits")
            .parse()
            .expect("len");
        let record = &data[space + 1..len - 1];
        assert_eq!(data[len - 1], b'\n', "record ends with a newline");
        let equals = record.iter().position(|&b| b == b'=').expect("=");
        let key = String::from_utf8(record[..equals].to_vec()).expect("key");
        records.push((key, record[equals + 1..].to_vec()));
        data = &data[len..];
    }
    records
}

#[test]
fn xattrs_round_trip() {
    let (_dir, store) = store();
    let mut binary = file("bin", b"\x7fELF");
    binary.xattrs.insert(
        "security.capability".into(),
        vec![1, 0, 0, 2, 0x20, 0, 0, 0, 0xff],
    );
    binary.xattrs.insert("user.note".into(), b"a=b\nc".to_vec());
    binary.uid = 5_000_000;
    let plain = LayerEntry {
        xattrs: BTreeMap::from([("user.k".into(), b"v".to_vec())]),
        ..dir("d")
    };
    let (layer, _) = write(&store, Compression::Zstd, &[binary.clone(), plain]);
    let tar = tar_bytes(&store, &layer);

    // The PAX data, parsed by length: every attribute, standard keys first.
    let size = tar::Header::from_byte_slice(&tar[..512])
        .size()
        .expect("size") as usize;
    let records = parse_pax(&tar[512..512 + size]);
    let keys: Vec<&str> = records.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "uid",
            "SCHILY.xattr.security.capability",
            "SCHILY.xattr.user.note"
        ]
    );
    let found: BTreeMap<String, Vec<u8>> = records
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("SCHILY.xattr.")?.to_string(), v)))
        .collect();
    assert_eq!(found, binary.xattrs);

    // The `tar` crate still reads the entry, its uid and content, and simple attributes.
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entries = archive.entries().expect("entries");
    let mut first = entries.next().expect("first").expect("entry");
    assert_eq!(first.header().uid().expect("uid"), 5_000_000);
    let mut content = Vec::new();
    first.read_to_end(&mut content).expect("content");
    assert_eq!(content, b"\x7fELF");
    let mut second = entries.next().expect("second").expect("entry");
    let extensions = second.pax_extensions().expect("pax").expect("has pax");
    let pairs: Vec<(String, Vec<u8>)> = extensions
        .map(|e| e.expect("record"))
        .map(|e| (e.key().expect("key").to_string(), e.value_bytes().to_vec()))
        .collect();
    assert_eq!(pairs, [("SCHILY.xattr.user.k".to_string(), b"v".to_vec())]);
}

#[test]
fn out_of_order_and_conflicting_entries_are_refused() {
    let cases: Vec<(Vec<LayerEntry>, &str)> = vec![
        (
            vec![file("b", b""), file("a", b"")],
            "out of canonical order",
        ),
        (vec![file("a.b", b""), dir("a")], "out of canonical order"),
        (
            vec![dir("a"), file("a.b", b""), file("a/b", b"")],
            "out of canonical order",
        ),
        (vec![file("a", b""), file("a", b"")], "duplicate"),
        (vec![dir("a"), entry("a", EntryKind::Whiteout)], "duplicate"),
        (vec![file("a", b""), file("a/b", b"")], "not a directory"),
        (
            vec![entry("a", EntryKind::Whiteout), file("a/b", b"")],
            "not a directory",
        ),
        (
            vec![file("a", b""), entry("a", EntryKind::OpaqueDir)],
            "not a directory",
        ),
        (
            vec![entry("a", EntryKind::OpaqueDir), dir("a")],
            "out of canonical order",
        ),
    ];
    for (entries, expected) in cases {
        let (_dir, store) = store();
        let mut writer = LayerWriter::new(&store, Compression::None).expect("writer");
        let (last, first) = entries.split_last().expect("cases are non-empty");
        for e in first {
            writer.append(e).expect("earlier entries are fine");
        }
        let error = writer.append(last).expect_err("refused").to_string();
        assert!(error.contains(expected), "{entries:?}: {error}");
    }
}

#[test]
fn invalid_entries_are_refused() {
    let (_dir, store) = store();
    let mut writer = LayerWriter::new(&store, Compression::None).expect("writer");
    for path in [
        "", "/abs", "dir/", "a//b", "a/./b", "../x", "a/.wh.b", "nul\0",
    ] {
        let error = writer.append(&file(path, b"")).expect_err(path);
        assert!(
            matches!(error, LayerError::InvalidPath { .. }),
            "{path}: {error}"
        );
    }
    let wrong_size = EntryKind::File {
        source: FileSource::Bytes(b"abc".to_vec()),
        size: 4,
    };
    let error = writer.append(&entry("f", wrong_size)).expect_err("size");
    assert!(
        matches!(
            error,
            LayerError::SizeMismatch {
                declared: 4,
                actual: 3,
                ..
            }
        ),
        "{error}"
    );
    let device = EntryKind::BlockDevice {
        major: u32::MAX,
        minor: 0,
    };
    assert!(writer.append(&entry("g", device)).is_err());
}

#[test]
fn file_sources_must_match_their_declared_size() {
    let (dir, store) = store();
    let on_disk = dir.path().join("source");
    std::fs::write(&on_disk, b"12345").expect("source");
    let mut writer = LayerWriter::new(&store, Compression::None).expect("writer");
    for (declared, actual) in [(4, 5), (6, 5)] {
        let kind = EntryKind::File {
            source: FileSource::Path(on_disk.clone()),
            size: declared,
        };
        let error = writer.append(&entry("f", kind)).expect_err("mismatch");
        match error {
            LayerError::SizeMismatch {
                declared: d,
                actual: a,
                ..
            } => {
                assert_eq!((d, a), (declared, actual));
            }
            other => panic!("unexpected {other}"),
        }
    }
    let kind = EntryKind::File {
        source: FileSource::Path(dir.path().join("missing")),
        size: 0,
    };
    let error = writer.append(&entry("f", kind)).expect_err("missing");
    assert!(error.to_string().contains("missing"), "{error}");
    // Refused before anything was written: the layer is still usable.
    let good = EntryKind::File {
        source: FileSource::Path(on_disk),
        size: 5,
    };
    writer.append(&entry("f", good)).expect("append");
    let (layer, index) = writer.finish().expect("finish");
    assert_eq!(index.entries.len(), 1);
    assert_eq!(layer.uncompressed_size, 512 + 512 + 1024);
}

#[test]
fn a_source_growing_while_copied_breaks_the_layer() {
    // `/proc` files report size 0 and then have content: like a file growing meanwhile.
    let (_dir, store) = store();
    let mut writer = LayerWriter::new(&store, Compression::None).expect("writer");
    let kind = EntryKind::File {
        source: FileSource::Path("/proc/self/status".into()),
        size: 0,
    };
    let error = writer.append(&entry("a", kind)).expect_err("grew");
    assert!(
        matches!(
            error,
            LayerError::SizeMismatch {
                declared: 0,
                actual: 1,
                ..
            }
        ),
        "{error}"
    );
    let error = writer.append(&file("b", b"")).expect_err("incomplete");
    assert!(
        matches!(error, LayerError::Incomplete { ref path } if path == "a"),
        "{error}"
    );
    assert!(matches!(
        writer.finish(),
        Err(LayerError::Incomplete { .. })
    ));
}

#[test]
fn sort_entries_gives_component_wise_byte_order() {
    let mut entries: Vec<LayerEntry> = ["ab", "a.b", "a/b/c", "a", "a/b", "a-b", "B", "a/b.c"]
        .into_iter()
        .map(dir)
        .collect();
    entries.insert(0, entry("a", EntryKind::OpaqueDir));
    sort_entries(&mut entries);
    let order: Vec<(&str, bool)> = entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind == EntryKind::OpaqueDir))
        .collect();
    let expected = [
        ("B", false),
        ("a", false),
        ("a", true),
        ("a/b", false),
        ("a/b/c", false),
        ("a/b.c", false),
        ("a-b", false),
        ("a.b", false),
        ("ab", false),
    ];
    assert_eq!(order, expected);
    let (_dir, store) = store();
    write(&store, Compression::None, &entries);
}

#[test]
fn writer_index_matches_the_blob_and_is_cached() {
    let (_dir, store) = store();
    let (layer, written) = write(&store, Compression::Gzip, &sample());
    assert_eq!(written.small_files.len(), 2);
    assert_eq!(written.small_files["etc/group"], b"root:x:0:\n");
    // Cached by `finish`: indexing does not need the blob.
    let blob_path = store.blob_path(&layer.digest);
    let bytes = std::fs::read(&blob_path).expect("blob");
    std::fs::remove_file(&blob_path).expect("remove");
    assert_eq!(index_layer(&store, &layer.digest).expect("cached"), written);
    // And reading the blob from scratch gives the same index.
    let fresh = crate::layer::index::read_index(&layer.digest, Cursor::new(bytes)).expect("read");
    assert_eq!(fresh, written);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("number")
}

#[test]
fn large_files_stream_with_bounded_memory() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};

    const SIZE: u64 = 300 * 1024 * 1024;
    let (dir, store) = store();
    let source = dir.path().join("zeros");
    File::create(&source)
        .and_then(|f| f.set_len(SIZE))
        .expect("sparse file");

    // Sample while writing: memory freed before `finish` returns would not show afterwards.
    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(AtomicOrdering::Relaxed) {
                peak.fetch_max(rss_kib(), AtomicOrdering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let big = entry(
        "big",
        EntryKind::File {
            source: FileSource::Path(source),
            size: SIZE,
        },
    );
    let (layer, index) = write(&store, Compression::Zstd, &[big]);
    done.store(true, AtomicOrdering::Relaxed);
    sampler.join().expect("sampler");
    peak.fetch_max(rss_kib(), AtomicOrdering::Relaxed);

    let grown_mib = (peak.load(AtomicOrdering::Relaxed) - before) / 1024;
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB");
    assert_eq!(index.entries[0].size, SIZE);
    assert_eq!(layer.uncompressed_size, 512 + SIZE + 1024);
    assert!(layer.size < 1024 * 1024, "zeros compress");
}
