//! A small real root file system: Debian's static busybox with applet links and the account
//! files images usually carry, enough for `RUN` steps and for runtimes to start a process.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

/// Where the `busybox-static` package installs its binary.
const BUSYBOX: &str = "/bin/busybox";

/// The applets linked into `/bin`: what Dockerfile `RUN` lines and the tests' checks use.
pub const APPLETS: &[&str] = &[
    "sh",
    "ash",
    "ls",
    "cat",
    "echo",
    "id",
    "stat",
    "find",
    "sha256sum",
    "md5sum",
    "mkdir",
    "rm",
    "rmdir",
    "cp",
    "mv",
    "ln",
    "chmod",
    "chown",
    "touch",
    "true",
    "false",
    "env",
    "pwd",
    "sleep",
    "test",
    "[",
    "grep",
    "sed",
    "head",
    "tail",
    "wc",
    "uname",
    "whoami",
    "readlink",
    "tar",
    "printf",
    "hostname",
    "date",
    "sort",
    "tr",
    "cut",
    "basename",
    "dirname",
    "du",
    "which",
    "xargs",
    "kill",
    "ps",
    "mount",
    "umount",
    "diff",
    "awk",
    "gzip",
    "wget",
    "nproc",
    "seq",
    "mktemp",
    "realpath",
    "tee",
    "yes",
];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
                      app:x:1000:1000:app:/home/app:/bin/sh\n";

const GROUP: &str = "root:x:0:\nnobody:x:65534:\napp:x:1000:\n";

/// Fills `dir` (created if needed) with the busybox root file system: `/bin/busybox` and
/// applet links, `/etc/passwd` and `/etc/group` (root, nobody, `app` 1000), `/tmp` 1777,
/// `/root`, `/home/app` and empty `/dev`, `/proc`, `/sys` for runtimes to mount over.
pub fn busybox_rootfs(dir: &Path) {
    if !Path::new(BUSYBOX).is_file() {
        // Only the static build runs inside an image without a libc.
        panic!(
            "`{BUSYBOX}` (package busybox-static) is not installed; the integration tests need \
             it: run `scripts/install-test-deps` (as root)"
        );
    }
    for sub in [
        "bin", "etc", "tmp", "root", "home/app", "dev", "proc", "sys", "var", "usr/bin",
    ] {
        let path = dir.join(sub);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("failed to create `{}`: {e}", path.display()));
    }
    let busybox = dir.join("bin/busybox");
    fs::copy(BUSYBOX, &busybox).unwrap_or_else(|e| panic!("failed to copy `{BUSYBOX}`: {e}"));
    for applet in APPLETS {
        let link = dir.join("bin").join(applet);
        symlink("busybox", &link)
            .unwrap_or_else(|e| panic!("failed to link `{}`: {e}", link.display()));
    }
    for (name, text) in [("etc/passwd", PASSWD), ("etc/group", GROUP)] {
        let path = dir.join(name);
        fs::write(&path, text)
            .unwrap_or_else(|e| panic!("failed to write `{}`: {e}", path.display()));
    }
    for (name, mode) in [("tmp", 0o1777), ("root", 0o700)] {
        let path = dir.join(name);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("failed to chmod `{}`: {e}", path.display()));
    }
    let home = dir.join("home/app");
    // Chowning needs root; as another user the home directory just stays the caller's.
    std::os::unix::fs::chown(&home, Some(1000), Some(1000)).ok();
}
