//! A corpus of hostile layers: each tries to create, change or delete something outside the
//! extraction root through names, symlinks, hard links, whiteouts or extension headers.
//!
//! Every case runs in a fresh temp dir holding `root/` and a sentinel `outside/`; after
//! applying (whether it succeeds or fails) the sentinel must be byte-for-byte and
//! inode-for-inode as before (ctime included, so even a chmod or chown through a link shows),
//! the temp dir must hold nothing new, and a few paths on the real system must still be
//! absent. Each case also states its expected outcome and where the entry landed instead.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::resolve::Resolution;
use super::test_support::{TarEntry as E, apply, names, node, snapshot};
use super::{ExtractError, ExtractOptions, ExtractStats};

/// A temp dir with the extraction root next to a sentinel directory.
struct World {
    _temp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

impl World {
    fn new() -> World {
        let temp = tempfile::Builder::new()
            .prefix("hostile")
            .tempdir()
            .expect("tempdir");
        let base = temp.path().to_path_buf();
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir(&root).expect("root");
        fs::create_dir_all(outside.join("sub")).expect("outside");
        fs::write(outside.join("known.txt"), "sentinel").expect("known");
        fs::write(outside.join("sub/deep.txt"), "deep").expect("deep");
        std::os::unix::fs::symlink("known.txt", outside.join("link")).expect("link");
        World {
            _temp: temp,
            base,
            root,
            outside,
        }
    }

    /// The absolute path of the sentinel, as a symlink target.
    fn outside_abs(&self) -> String {
        self.outside.to_str().expect("utf-8 temp path").to_owned()
    }

    /// Where an absolute path lands inside the root.
    fn inside(&self, absolute: &Path) -> PathBuf {
        self.root
            .join(absolute.strip_prefix("/").expect("absolute"))
    }

    /// Paths that a successful escape would have created on the real system.
    fn escape_paths(&self) -> Vec<PathBuf> {
        let parent = self.base.parent().expect("temp parent").to_path_buf();
        let mut out = vec![
            PathBuf::from("/escape"),
            PathBuf::from("/pwned"),
            PathBuf::from("/etc/pwned"),
            PathBuf::from("/etc/pwned2"),
            PathBuf::from("/outside"),
        ];
        for name in ["escape", "pwned", "outside", "abs"] {
            out.push(parent.join(name));
        }
        out
    }
}

/// The expected outcome of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    Refused,
}

struct Case {
    name: &'static str,
    layer: fn(&World) -> Vec<E>,
    outcome: Outcome,
    /// Where the entries must have landed (or what must be absent) inside the root.
    check: fn(&World, &ExtractStats),
}

fn content(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn ino(path: &Path) -> u64 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
        .ino()
}

fn no_check(_: &World, _: &ExtractStats) {}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "dotdot file",
            layer: |_| vec![E::file("../escape", "x")],
            outcome: Outcome::Applied,
            check: |w, _| assert_eq!(content(&w.root.join("escape")), "x"),
        },
        Case {
            name: "absolute file",
            layer: |_| vec![E::file("/abs/escape", "x")],
            outcome: Outcome::Applied,
            check: |w, _| assert_eq!(content(&w.root.join("abs/escape")), "x"),
        },
        Case {
            name: "inner dotdot",
            layer: |_| vec![E::file("a/../../escape", "x")],
            outcome: Outcome::Applied,
            check: |w, _| assert_eq!(content(&w.root.join("escape")), "x"),
        },
        Case {
            name: "dotdot overwrite of the sentinel",
            layer: |_| vec![E::file("../outside/known.txt", "pwned")],
            outcome: Outcome::Applied,
            check: |w, _| assert_eq!(content(&w.root.join("outside/known.txt")), "pwned"),
        },
        Case {
            name: "symlink to / then a file through it",
            layer: |_| {
                vec![
                    E::symlink("x", "/"),
                    E::file("x/etc/pwned", "x"),
                    // The second one resolves through an existing directory (openat2 path).
                    E::file("x/etc/pwned2", "x"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                assert_eq!(content(&w.root.join("etc/pwned")), "x");
                assert_eq!(content(&w.root.join("etc/pwned2")), "x");
            },
        },
        Case {
            name: "absolute symlink to the sentinel then files through it",
            layer: |w| {
                vec![
                    E::symlink("x", w.outside_abs()),
                    E::file("x/known.txt", "pwned"),
                    E::file("x/new", "pwned"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                assert_eq!(content(&w.inside(&w.outside).join("known.txt")), "pwned");
                assert_eq!(content(&w.inside(&w.outside).join("new")), "pwned");
            },
        },
        Case {
            name: "relative symlink climbing past the root",
            layer: |_| vec![E::symlink("x", "../../.."), E::file("x/outside/pwned", "x")],
            outcome: Outcome::Applied,
            check: |w, _| assert_eq!(content(&w.root.join("outside/pwned")), "x"),
        },
        Case {
            name: "symlink chain escaping",
            layer: |_| {
                vec![
                    E::dir("d/"),
                    E::symlink("d/l1", ".."),
                    E::symlink("d/l2", "l1/.."),
                    E::symlink("d/l3", "l2/../outside"),
                    E::file("d/l3/pwned", "x"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| assert_eq!(content(&w.root.join("outside/pwned")), "x"),
        },
        Case {
            name: "symlink loop",
            layer: |_| {
                vec![
                    E::symlink("a", "b"),
                    E::symlink("b", "a"),
                    E::file("a/x", "x"),
                ]
            },
            outcome: Outcome::Refused,
            check: no_check,
        },
        Case {
            name: "hard link to /etc/passwd",
            layer: |_| vec![E::hardlink("h", "/etc/passwd")],
            outcome: Outcome::Refused,
            check: |w, _| assert!(node(&w.root.join("h")).is_none()),
        },
        Case {
            name: "hard link to ../outside resolves inside the root",
            layer: |_| {
                vec![
                    E::file("outside/known.txt", "inside"),
                    E::hardlink("h", "../outside/known.txt"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                assert_eq!(content(&w.root.join("h")), "inside");
                assert_eq!(
                    ino(&w.root.join("h")),
                    ino(&w.root.join("outside/known.txt"))
                );
            },
        },
        Case {
            name: "hard link to a missing ../../outside file",
            layer: |_| vec![E::hardlink("h", "../../outside/sub/deep.txt")],
            outcome: Outcome::Refused,
            check: no_check,
        },
        Case {
            name: "hard link through a symlinked dir pointing outside",
            layer: |w| {
                vec![
                    E::symlink("s", w.outside_abs()),
                    E::hardlink("h", "s/known.txt"),
                ]
            },
            outcome: Outcome::Refused,
            check: |w, _| assert!(node(&w.root.join("h")).is_none()),
        },
        Case {
            name: "PAX linkpath with dotdot",
            layer: |_| vec![E::hardlink("h", "harmless").pax("linkpath", "../outside/known.txt")],
            outcome: Outcome::Refused,
            check: no_check,
        },
        Case {
            name: "whiteout of dotdot at the root",
            layer: |_| vec![E::marker(".wh...")],
            outcome: Outcome::Refused,
            check: no_check,
        },
        Case {
            name: "whiteout of dotdot in a subdirectory",
            layer: |_| vec![E::file("a/b/keep", "k"), E::marker("a/b/.wh...")],
            outcome: Outcome::Refused,
            check: |w, _| assert_eq!(content(&w.root.join("a/b/keep")), "k"),
        },
        Case {
            name: "whiteout prefix followed by ../x",
            layer: |_| vec![E::marker(".wh.../outside")],
            outcome: Outcome::Refused,
            check: |w, _| assert!(node(&w.root.join(".wh...")).is_none()),
        },
        Case {
            name: "whiteouts through a symlink to outside",
            layer: |_| {
                vec![
                    E::symlink("s", "../outside"),
                    E::marker("s/.wh.known.txt"),
                    E::marker("s/.wh.sub"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| assert!(w.root.join("outside").is_dir()),
        },
        Case {
            name: "whiteout of the sentinel by absolute path",
            layer: |w| {
                let base = w.base.to_str().expect("utf-8").to_owned();
                vec![E::symlink("s", base), E::marker("s/.wh.outside")]
            },
            outcome: Outcome::Applied,
            check: |w, _| assert!(w.inside(&w.base).is_dir()),
        },
        Case {
            name: "opaque whiteout in a symlinked dir pointing outside",
            layer: |w| {
                vec![
                    E::symlink("s", w.outside_abs()),
                    E::marker("s/.wh..wh..opq"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| assert!(w.inside(&w.outside).is_dir()),
        },
        Case {
            name: "opaque whiteout named with dotdot",
            layer: |_| vec![E::marker("../outside/.wh..wh..opq")],
            outcome: Outcome::Applied,
            check: |w, _| assert!(w.root.join("outside").is_dir()),
        },
        Case {
            name: "symlink replacing a dir mid-layer then a file under it",
            layer: |w| {
                vec![
                    E::dir("d/"),
                    E::file("d/f", "f"),
                    E::symlink("d", "../outside"),
                    E::file("d/pwned", "x"),
                    E::dir("e/"),
                    E::symlink("e", w.outside_abs()),
                    E::file("e/pwned", "x"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                assert_eq!(content(&w.root.join("outside/pwned")), "x");
                assert_eq!(content(&w.inside(&w.outside).join("pwned")), "x");
            },
        },
        Case {
            name: "device node and fifo named through a symlink",
            layer: |_| {
                vec![
                    E::symlink("s", "../outside"),
                    E::node("s/null", EntryType::Char, 1, 3),
                    E::node("s/fifo", EntryType::Fifo, 0, 0),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, stats| {
                let made = ["null", "fifo"]
                    .iter()
                    .filter(|n| node(&w.root.join("outside").join(n)).is_some())
                    .count();
                assert_eq!(
                    made as u64 + stats.skipped,
                    2,
                    "each node created inside or skipped"
                );
            },
        },
        Case {
            name: "absolute symlink as the parent of a hard link",
            layer: |w| {
                vec![
                    E::file("f", "inside"),
                    E::symlink("s", w.outside_abs()),
                    E::hardlink("s/hl", "f"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                let landed = w.inside(&w.outside).join("hl");
                assert_eq!(ino(&landed), ino(&w.root.join("f")));
            },
        },
        Case {
            name: "hard link named through a symlink onto the sentinel",
            layer: |_| {
                vec![
                    E::file("f", "inside"),
                    E::symlink("s", "../outside"),
                    E::hardlink("s/known.txt", "f"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                assert_eq!(
                    ino(&w.root.join("outside/known.txt")),
                    ino(&w.root.join("f"))
                )
            },
        },
        Case {
            name: "GNU long name with dotdot",
            layer: |_| {
                let name = format!("{}outside/longpwned", "../".repeat(40));
                vec![E::file(name, "x"), E::file("../escape", "y").long_name()]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                assert_eq!(content(&w.root.join("outside/longpwned")), "x");
                assert_eq!(content(&w.root.join("escape")), "y");
            },
        },
        Case {
            name: "PAX path override with dotdot",
            layer: |_| vec![E::file("harmless", "x").pax("path", "../outside/paxpwned")],
            outcome: Outcome::Applied,
            check: |w, _| {
                assert_eq!(content(&w.root.join("outside/paxpwned")), "x");
                assert!(node(&w.root.join("harmless")).is_none());
            },
        },
        Case {
            name: "file replacing a symlink to the sentinel",
            layer: |w| {
                vec![
                    E::symlink("s", format!("{}/known.txt", w.outside_abs())),
                    E::file("s", "pwned"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                assert!(fs::symlink_metadata(w.root.join("s")).expect("s").is_file());
                assert_eq!(content(&w.root.join("s")), "pwned");
            },
        },
        Case {
            name: "metadata of a symlink to the sentinel",
            layer: |w| {
                vec![
                    E::symlink("l", format!("{}/known.txt", w.outside_abs()))
                        .owner(4242, 4242)
                        .mtime(5)
                        .pax("SCHILY.xattr.user.evil", "x"),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                let meta = fs::symlink_metadata(w.root.join("l")).expect("l");
                assert_eq!(meta.mtime(), 5);
                if rustix::process::geteuid().is_root() {
                    assert_eq!(meta.uid(), 4242);
                }
            },
        },
        Case {
            name: "directory entry over a symlink to the sentinel",
            layer: |w| {
                vec![
                    E::symlink("d", w.outside_abs()),
                    E::dir("d/").mode(0o777).mtime(9),
                ]
            },
            outcome: Outcome::Applied,
            check: |w, _| {
                let meta = fs::symlink_metadata(w.root.join("d")).expect("d");
                assert!(meta.is_dir());
                assert_eq!((meta.mode() & 0o7777, meta.mtime()), (0o777, 9));
            },
        },
    ]
}

#[test]
fn hostile_layers_never_touch_anything_outside_root() {
    let corpus = cases();
    assert!(corpus.len() >= 15);
    let options = ExtractOptions {
        same_owner: true,
        devices: true,
        xattrs: true,
        overlay_whiteouts: false,
    };
    let passwd_before = node(Path::new("/etc/passwd"));
    for resolution in [Resolution::Auto, Resolution::Manual] {
        for case in &corpus {
            let what = format!("{} ({resolution:?})", case.name);
            let world = World::new();
            let escapes = world.escape_paths();
            // Checked before too, so a leftover cannot hide an escape.
            for path in &escapes {
                assert!(
                    node(path).is_none(),
                    "{what}: {} exists already",
                    path.display()
                );
            }
            let before = snapshot(&world.outside);
            let layer = (case.layer)(&world);
            let result: Result<ExtractStats, ExtractError> =
                apply(&world.root, &layer, &options, resolution);

            assert_eq!(
                snapshot(&world.outside),
                before,
                "{what}: the sentinel changed"
            );
            assert_eq!(
                names(&world.base),
                ["outside", "root"],
                "{what}: new files next to root"
            );
            for path in &escapes {
                assert!(node(path).is_none(), "{what}: {} appeared", path.display());
            }
            assert_eq!(
                node(Path::new("/etc/passwd")),
                passwd_before,
                "{what}: /etc/passwd"
            );
            match (case.outcome, &result) {
                (Outcome::Applied, Ok(stats)) => (case.check)(&world, stats),
                (Outcome::Refused, Err(err)) => {
                    assert!(!err.to_string().is_empty());
                    (case.check)(&world, &ExtractStats::default());
                }
                (expected, got) => panic!("{what}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn refusals_say_which_entry_and_why() {
    let options = ExtractOptions::default();
    let cases: &[(&[E], &str)] = &[
        (
            &[E::hardlink("h", "/etc/passwd")],
            "failed to create hard link `h` to `/etc/passwd`",
        ),
        (
            &[E::marker(".wh...")],
            "invalid entry `.wh...`: whiteout escapes its directory",
        ),
        (
            &[E::marker(".wh.../outside")],
            "invalid entry `.wh.../outside`: a parent directory is a whiteout",
        ),
        (
            &[
                E::symlink("a", "b"),
                E::symlink("b", "a"),
                E::file("a/x", "x"),
            ],
            "failed to resolve parent directory of `a/x`",
        ),
    ];
    for (layer, message) in cases {
        let world = World::new();
        let err = apply(&world.root, layer, &options, Resolution::Auto).expect_err(message);
        assert_eq!(err.to_string(), *message);
    }
}
