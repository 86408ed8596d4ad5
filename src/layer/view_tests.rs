//! Table-driven tests of the merged layer view.

use super::*;

/// A compact entry description for test layers.
#[derive(Clone, Copy)]
enum S<'a> {
    D,
    F,
    L(&'a str),
    H(&'a str),
    W,
    O,
}

/// A layer whose entries all carry `uid` = `n`, to tell which layer an entry came from.
fn layer(n: u64, spec: &[(&str, S)]) -> Arc<LayerIndex> {
    let entries = spec
        .iter()
        .map(|(path, s)| {
            let (kind, link) = match s {
                S::D => (IndexKind::Dir, None),
                S::F => (IndexKind::File, None),
                S::L(t) => (IndexKind::Symlink, Some(t.to_string())),
                S::H(t) => (IndexKind::HardLink, Some(t.to_string())),
                S::W => (IndexKind::Whiteout, None),
                S::O => (IndexKind::OpaqueDir, None),
            };
            let size = if matches!(s, S::F) { 10 + n } else { 0 };
            IndexEntry {
                path: path.to_string(),
                kind,
                mode: 0o644,
                uid: n,
                gid: n,
                size,
                mtime: 0,
                link_target: link,
            }
        })
        .collect();
    Arc::new(LayerIndex {
        entries,
        small_files: BTreeMap::new(),
    })
}

fn stack(layers: &[&[(&str, S)]]) -> FsView {
    let indexes = layers
        .iter()
        .enumerate()
        .map(|(n, spec)| layer(n as u64, spec))
        .collect();
    FsView::new(indexes)
}

/// Checks `lookup(path)`: `None`, or the kind and the layer (uid) the entry comes from.
fn check(layers: &[&[(&str, S)]], path: &str, expected: Option<(IndexKind, u64)>) {
    let view = stack(layers);
    let found = view.lookup(path).map(|e| (e.kind, e.uid));
    assert_eq!(found, expected, "lookup `{path}`");
}

use IndexKind::{Dir, File, HardLink, Symlink};

#[test]
fn whiteouts_hide_lower_entries() {
    let lower: &[(&str, S)] = &[("a", S::D), ("a/f", S::F), ("a/b", S::D), ("a/b/c", S::F)];
    check(&[lower, &[("a/f", S::W)]], "a/f", None);
    check(&[lower, &[("a/f", S::W)]], "a", Some((Dir, 0)));
    check(&[lower, &[("a/b", S::W)]], "a/b", None);
    check(&[lower, &[("a/b", S::W)]], "a/b/c", None);
    check(&[lower, &[("a/b", S::W)]], "a/f", Some((File, 0)));
    // A whiteout and a new entry in one layer: the new entry stays, whatever the tar order.
    check(
        &[lower, &[("a/f", S::F), ("a/f", S::W)]],
        "a/f",
        Some((File, 1)),
    );
    // Re-created in a later layer.
    check(
        &[lower, &[("a/f", S::W)], &[("a/f", S::F)]],
        "a/f",
        Some((File, 2)),
    );
    // A whiteout of nothing changes nothing.
    check(&[lower, &[("zz", S::W)]], "a/f", Some((File, 0)));
    // Sibling names sharing a prefix are not hidden.
    let siblings: &[(&str, S)] = &[("a", S::D), ("a.b", S::F), ("a-b", S::F), ("a/b", S::F)];
    check(&[siblings, &[("a", S::W)]], "a.b", Some((File, 0)));
    check(&[siblings, &[("a", S::W)]], "a-b", Some((File, 0)));
    check(&[siblings, &[("a", S::W)]], "a/b", None);
}

#[test]
fn opaque_dirs_hide_lower_children_only() {
    let lower: &[(&str, S)] = &[("d", S::D), ("d/x", S::F), ("d/y", S::D), ("d/y/z", S::F)];
    let upper: &[(&str, S)] = &[("d", S::D), ("d", S::O), ("d/new", S::F)];
    check(&[lower, upper], "d", Some((Dir, 1)));
    check(&[lower, upper], "d/x", None);
    check(&[lower, upper], "d/y/z", None);
    check(&[lower, upper], "d/new", Some((File, 1)));
    // Without a directory entry in the upper layer the lower directory stays.
    check(&[lower, &[("d", S::O)]], "d", Some((Dir, 0)));
    check(&[lower, &[("d", S::O)]], "d/y", None);
    // An opaque root hides everything below.
    check(&[lower, &[("", S::O), ("top", S::F)]], "d", None);
    check(
        &[lower, &[("", S::O), ("top", S::F)]],
        "top",
        Some((File, 1)),
    );
}

#[test]
fn non_directories_replace_directories_and_back() {
    let tree: &[(&str, S)] = &[
        ("d", S::D),
        ("d/x", S::F),
        ("other", S::D),
        ("other/x", S::F),
    ];
    // A directory replaced by a symlink: the lower contents go, the link stays unresolved.
    check(&[tree, &[("d", S::L("other"))]], "d", Some((Symlink, 1)));
    check(&[tree, &[("d", S::L("other"))]], "d/x", None);
    // ... or by a file.
    check(&[tree, &[("d", S::F)]], "d", Some((File, 1)));
    check(&[tree, &[("d", S::F)]], "d/x", None);
    // A symlink or file replaced by a directory.
    let link: &[(&str, S)] = &[("d", S::L("other")), ("f", S::F)];
    check(&[link, &[("d", S::D), ("d/y", S::F)]], "d", Some((Dir, 1)));
    check(
        &[link, &[("d", S::D), ("d/y", S::F)]],
        "d/y",
        Some((File, 1)),
    );
    check(
        &[link, &[("f", S::D), ("f/g", S::F)]],
        "f/g",
        Some((File, 1)),
    );
    // Within one layer the tar order decides, as extraction would.
    check(&[tree, &[("d/y", S::F), ("d", S::F)]], "d/y", None);
    check(
        &[tree, &[("d", S::F), ("d", S::D), ("d/y", S::F)]],
        "d/y",
        Some((File, 1)),
    );
    // A directory over a directory keeps the lower children.
    check(&[tree, &[("d", S::D)]], "d", Some((Dir, 1)));
    check(&[tree, &[("d", S::D)]], "d/x", Some((File, 0)));
}

#[test]
fn hard_links_report_their_target() {
    let view = stack(&[
        &[("bin", S::D), ("bin/busybox", S::F)],
        &[("bin/sh", S::H("bin/busybox"))],
    ]);
    let link = view.lookup("/bin/sh").expect("link");
    assert_eq!(
        (link.kind, link.size, link.uid),
        (HardLink, 10, 0),
        "target metadata"
    );
    assert_eq!(link.link_target.as_deref(), Some("bin/busybox"));
    assert_eq!(link.path, "bin/sh");
    // Same-layer target, and a dangling one keeping its own header.
    let view = stack(&[&[("a", S::F), ("b", S::H("a")), ("c", S::H("missing"))]]);
    assert_eq!(
        view.lookup("b").map(|e| (e.kind, e.size)),
        Some((HardLink, 10))
    );
    assert_eq!(
        view.lookup("c").map(|e| (e.kind, e.size)),
        Some((HardLink, 0))
    );
}

/// The resolved path and entry kind expected from `resolve`, or `Err` for a symlink loop.
type Resolved<'a> = Result<(&'a str, Option<IndexKind>), ()>;

/// Checks `resolve(path, follow)`: the resolved path and the entry kind, or an error.
fn check_resolve(layers: &[&[(&str, S)]], path: &str, follow: bool, expected: Resolved<'_>) {
    let view = stack(layers);
    let got = view.resolve(path, follow);
    match (got, expected) {
        (Ok((resolved, entry)), Ok((want, kind))) => {
            assert_eq!(
                (resolved.as_str(), entry.map(|e| e.kind)),
                (want, kind),
                "`{path}`"
            );
        }
        (Err(error), Err(())) => {
            assert!(matches!(error, LayerError::SymlinkLoop { .. }), "{error}");
            assert!(error.to_string().contains(&format!("`{path}`")), "{error}");
        }
        (got, want) => panic!(
            "`{path}`: got {got:?}, want {want:?}",
            got = got.map(|g| g.0)
        ),
    }
}

#[test]
fn resolve_follows_symlinks_inside_the_root() {
    let fs: &[(&str, S)] = &[
        ("a", S::L("b")),
        ("b", S::L("./c")),
        ("c", S::F),
        ("etc", S::L("usr/etc")),
        ("usr", S::D),
        ("usr/etc", S::D),
        ("usr/etc/passwd", S::F),
        ("x", S::D),
        ("x/abs", S::L("/c")),
        ("x/rel", S::L("../c")),
        ("x/up", S::L("../../../../../c")),
        ("x/deep", S::L("sub/dir")),
        ("x/sub", S::D),
        ("x/sub/dir", S::D),
        ("loop1", S::L("loop2")),
        ("loop2", S::L("/loop1")),
        ("self", S::L("self")),
        ("viadir", S::L("usr/etc/")),
    ];
    let cases: &[(&str, bool, Resolved<'_>)] = &[
        ("a", true, Ok(("c", Some(File)))),
        ("a", false, Ok(("a", Some(Symlink)))),
        ("/a", true, Ok(("c", Some(File)))),
        ("etc/passwd", false, Ok(("usr/etc/passwd", Some(File)))),
        ("x/abs", true, Ok(("c", Some(File)))),
        ("x/rel", true, Ok(("c", Some(File)))),
        ("x/up", true, Ok(("c", Some(File)))),
        ("../../../c", false, Ok(("c", Some(File)))),
        ("x/../../a", true, Ok(("c", Some(File)))),
        // `..` after a symlink climbs from where the link led, like the kernel.
        ("x/deep/..", false, Ok(("x/sub", Some(Dir)))),
        ("etc/..", false, Ok(("usr", Some(Dir)))),
        // A trailing `/` enters the final symlink.
        ("etc/", false, Ok(("usr/etc", Some(Dir)))),
        ("viadir", true, Ok(("usr/etc", Some(Dir)))),
        ("missing/x", true, Ok(("missing/x", None))),
        ("c/under-a-file", true, Ok(("c/under-a-file", None))),
        ("", true, Ok(("", None))),
        ("loop1", true, Err(())),
        ("loop1/x", false, Err(())),
        ("self", true, Err(())),
        ("self", false, Ok(("self", Some(Symlink)))),
    ];
    for (path, follow, expected) in cases {
        check_resolve(&[fs], path, *follow, *expected);
    }
}

#[test]
fn resolve_allows_255_hops_and_no_more() {
    let names: Vec<String> = (0..=256).map(|i| format!("l{i}")).collect();
    let chain = |links: usize| -> Vec<(&str, S)> {
        let mut spec: Vec<(&str, S)> = (0..links)
            .map(|i| (names[i].as_str(), S::L(names[i + 1].as_str())))
            .collect();
        spec.push((names[links].as_str(), S::F));
        spec
    };
    check_resolve(&[&chain(255)], "l0", true, Ok(("l255", Some(File))));
    check_resolve(&[&chain(256)], "l0", true, Err(()));
}

#[test]
fn small_files_resolve_through_symlinks_and_layers() {
    let mut base = (*layer(
        0,
        &[
            ("usr", S::D),
            ("usr/share", S::D),
            ("usr/share/passwd", S::F),
        ],
    ))
    .clone();
    base.small_files
        .insert("usr/share/passwd".into(), b"from-share".to_vec());
    let link = layer(
        1,
        &[("etc", S::D), ("etc/passwd", S::L("../usr/share/passwd"))],
    );
    let mut view = FsView::new(vec![Arc::new(base), link]);
    assert_eq!(view.small_file("/etc/passwd"), Some(&b"from-share"[..]));
    assert_eq!(view.small_file("etc/group"), None);

    let mut upper = (*layer(
        2,
        &[("etc/passwd", S::F), ("etc/group", S::H("etc/passwd"))],
    ))
    .clone();
    upper
        .small_files
        .insert("etc/passwd".into(), b"from-upper".to_vec());
    view.push(Arc::new(upper));
    assert_eq!(view.small_file("etc/passwd"), Some(&b"from-upper"[..]));
    assert_eq!(
        view.small_file("etc/group"),
        Some(&b"from-upper"[..]),
        "hard link"
    );

    view.push(layer(3, &[("etc/passwd", S::W)]));
    assert_eq!(view.small_file("etc/passwd"), None);
    // A file the layer did not capture has no content, even if a lower layer's did.
    view.push(layer(4, &[("usr/share/passwd", S::F)]));
    assert_eq!(view.small_file("usr/share/passwd"), None);
}

#[test]
fn list_dir_merges_layers() {
    let view = stack(&[
        &[
            ("", S::D),
            ("d", S::D),
            ("d/a", S::F),
            ("d/b", S::D),
            ("d/b/x", S::F),
            ("d-x", S::F),
        ],
        &[
            ("d/a.b", S::F),
            ("d/b", S::W),
            ("d/c", S::D),
            ("d/c/deep/er", S::F),
            ("d/e", S::F),
        ],
    ]);
    let names = |path: &str| -> Vec<(String, u64)> {
        view.list_dir(path)
            .into_iter()
            .map(|e| (e.path.clone(), e.uid))
            .collect()
    };
    let owned = |items: &[(&str, u64)]| -> Vec<(String, u64)> {
        items.iter().map(|(p, n)| (p.to_string(), *n)).collect()
    };
    assert_eq!(
        names("d"),
        owned(&[("d/a", 0), ("d/a.b", 1), ("d/c", 1), ("d/e", 1)])
    );
    assert_eq!(names("/d/"), names("d"));
    assert_eq!(names(""), owned(&[("d", 0), ("d-x", 0)]));
    assert_eq!(names("d/c"), owned(&[]), "`deep` has no entry of its own");
    assert_eq!(names("nothing"), owned(&[]));
}
