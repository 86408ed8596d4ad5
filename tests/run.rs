//! RUN end to end with the `namespace` backend, as root, on a busybox base in a real
//! registry: every kind of change a step makes lands exactly in its layer, steps see what
//! BuildKit gives them (shell, user, environment, network, `/proc`, `/dev`, `/etc` files),
//! `RUN --mount` of every type, failures that say what failed, and builds that leave no
//! mount, process or temporary file behind.

#![allow(
    clippy::print_stderr,
    reason = "measurements and leftovers are printed for the test log, never asserted"
)]

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use support::bench::{self, Bench, LayerKind};

/// The base of most tests: the support busybox root plus a `/data` tree for steps to change.
fn change_base(rootfs: &Path) {
    support::busybox_rootfs(rootfs);
    let data = rootfs.join("data");
    let write = |path: &str, text: &str| {
        let path = data.join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create a base directory");
        fs::write(&path, text).expect("write a base file");
    };
    write("modify.txt", "before\n");
    write("delete.txt", "doomed\n");
    write("deldir/inner.txt", "doomed too\n");
    write("chmod.txt", "mode\n");
    write("chown.txt", "owner\n");
    write("dir-to-link/inner.txt", "hidden by a symlink\n");
    write("dir-to-file/inner.txt", "hidden by a file\n");
    write("file-to-dir", "becomes a directory\n");
    write("opaque/old.txt", "hidden by an opaque directory\n");
    write("link-target/kept.txt", "target of a symlink\n");
    write("hardlink-src.txt", "linked from the base\n");
    std::os::unix::fs::symlink("link-target", data.join("link-to-dir"))
        .expect("link the base symlink");
}

/// The one step that makes every kind of change.
const CHANGES: &str = r#"FROM BASE
RUN set -e; cd /data; \
    echo new > new.txt; mkdir -p newdir/sub; echo deep > newdir/sub/deep.txt; \
    echo after > modify.txt; \
    rm delete.txt; rm -r deldir; \
    chmod 4751 chmod.txt; chown 1000:50 chown.txt; \
    rm -r dir-to-link; ln -s /data/link-target dir-to-link; \
    rm -r dir-to-file; echo now-a-file > dir-to-file; \
    rm file-to-dir; mkdir file-to-dir; echo inside > file-to-dir/inside.txt; \
    rm link-to-dir; mkdir link-to-dir; \
    rm -r opaque; mkdir opaque; echo fresh > opaque/new.txt; \
    ln new.txt hard.txt; ln hardlink-src.txt hard-base.txt; \
    mkfifo fifo; mknod null-dev c 1 3; mknod block-dev b 7 0
"#;

#[test]
fn every_kind_of_change_is_captured_exactly_in_the_layer() {
    let bench = Bench::new(change_base);
    let built = bench.build(CHANGES, &[]).success();
    let layer = built.last_layer();
    let paths: BTreeSet<&str> = layer.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "data",
        "data/new.txt",
        "data/newdir",
        "data/newdir/sub",
        "data/newdir/sub/deep.txt",
        "data/modify.txt",
        "data/.wh.delete.txt",
        "data/.wh.deldir",
        "data/chmod.txt",
        "data/chown.txt",
        "data/dir-to-link",
        "data/dir-to-file",
        "data/file-to-dir",
        // overlayfs makes a directory created where a whiteout is opaque: redundant over a
        // lower non-directory, but harmless (nothing below to hide) and what the upper holds.
        "data/file-to-dir/.wh..wh..opq",
        "data/file-to-dir/inside.txt",
        "data/link-to-dir",
        "data/link-to-dir/.wh..wh..opq",
        "data/opaque",
        "data/opaque/.wh..wh..opq",
        "data/opaque/new.txt",
        "data/hard.txt",
        "data/hardlink-src.txt",
        "data/hard-base.txt",
        "data/fifo",
        "data/null-dev",
        "data/block-dev",
    ]
    .into_iter()
    .collect();
    assert_eq!(
        paths, expected,
        "the layer holds exactly what the step changed (left: layer, right: expected)"
    );

    let check = |path: &str, kind: LayerKind, mode: u32, owner: (u64, u64)| {
        let entry = &layer[path];
        assert_eq!(entry.kind, kind, "kind of `{path}`: {entry:?}");
        assert_eq!(entry.mode, mode, "mode of `{path}`: {entry:?}");
        assert_eq!(
            (entry.uid, entry.gid),
            owner,
            "owner of `{path}`: {entry:?}"
        );
    };
    check("data/newdir/sub/deep.txt", LayerKind::File, 0o644, (0, 0));
    check("data/newdir/sub", LayerKind::Dir, 0o755, (0, 0));
    check("data/chmod.txt", LayerKind::File, 0o4751, (0, 0));
    check("data/chown.txt", LayerKind::File, 0o644, (1000, 50));
    check("data/dir-to-link", LayerKind::Symlink, 0o777, (0, 0));
    check("data/dir-to-file", LayerKind::File, 0o644, (0, 0));
    check("data/file-to-dir", LayerKind::Dir, 0o755, (0, 0));
    check("data/link-to-dir", LayerKind::Dir, 0o755, (0, 0));
    check("data/fifo", LayerKind::Fifo, 0o644, (0, 0));
    check("data/null-dev", LayerKind::Char, 0o644, (0, 0));
    check("data/block-dev", LayerKind::Block, 0o644, (0, 0));
    assert_eq!(layer["data/modify.txt"].data, b"after\n");
    assert_eq!(layer["data/dir-to-file"].data, b"now-a-file\n");
    assert_eq!(
        layer["data/chown.txt"].data, b"owner\n",
        "a chown keeps the content"
    );
    assert_eq!(layer["data/dir-to-link"].link, "/data/link-target");
    assert_eq!(layer["data/null-dev"].device, (1, 3));
    assert_eq!(layer["data/block-dev"].device, (7, 0));

    // A hard link is one file stored once and linked, whichever name comes first.
    for (one, other, text) in [
        ("data/new.txt", "data/hard.txt", "new\n"),
        (
            "data/hardlink-src.txt",
            "data/hard-base.txt",
            "linked from the base\n",
        ),
    ] {
        let (first, second) = if layer[one].kind == LayerKind::HardLink {
            (other, one)
        } else {
            (one, other)
        };
        assert_eq!(layer[first].kind, LayerKind::File, "{:?}", layer[first]);
        assert_eq!(layer[first].data, text.as_bytes());
        assert_eq!(
            layer[second].kind,
            LayerKind::HardLink,
            "{:?}",
            layer[second]
        );
        assert_eq!(layer[second].link, first, "`{second}` links to `{first}`");
    }

    // The merged image, as a runtime sees it.
    let tree = built.tree();
    for gone in [
        "data/delete.txt",
        "data/deldir",
        "data/deldir/inner.txt",
        "data/dir-to-link/inner.txt",
        "data/dir-to-file/inner.txt",
        "data/opaque/old.txt",
    ] {
        assert!(tree.file(gone).is_none(), "`{gone}` is gone from the image");
    }
    assert!(tree.file("data/link-target/kept.txt").is_some());
    assert_eq!(tree.file("data/opaque/new.txt").map(|f| f.size), Some(6));

    // And under a real runtime: podman extracts the layers itself.
    let listing = built.podman_run(&[
        "sh",
        "-c",
        "cd /data && stat -c '%n %F %a %u:%g' fifo null-dev block-dev chmod.txt chown.txt \
         dir-to-link file-to-dir && stat -c '%h' new.txt && ls opaque && cat modify.txt",
    ]);
    assert_eq!(
        listing,
        "fifo fifo 644 0:0\n\
         null-dev character special file 644 0:0\n\
         block-dev block special file 644 0:0\n\
         chmod.txt regular file 4751 0:0\n\
         chown.txt regular file 644 1000:50\n\
         dir-to-link symbolic link 777 0:0\n\
         file-to-dir directory 755 0:0\n\
         2\n\
         new.txt\n\
         after\n"
    );
}

/// A step that changes nothing adds no layer, and a step that only reads leaves no
/// trace of the files the sandbox provides (mount points, `/etc` files, `/dev`).
#[test]
fn a_step_that_changes_nothing_adds_no_layer() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            "FROM BASE\nRUN cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null; ls /proc /sys /dev\n",
            &[],
        )
        .success();
    let config = built.config();
    let last = config["history"]
        .as_array()
        .and_then(|history| history.last())
        .expect("a history entry");
    assert!(
        last["created_by"]
            .as_str()
            .unwrap_or_default()
            .contains("cat /etc/hosts"),
        "{last}"
    );
    // BuildKit, too, records a step without changes as an empty layer and stores none.
    assert_eq!(last["empty_layer"], true, "{last}");
    assert_eq!(built.layers().len(), 1, "only the base's layer");
}

#[test]
fn the_shell_form_goes_through_shell_and_the_exec_form_does_not() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            r#"FROM BASE
RUN echo default $0 > /default.txt
SHELL ["/bin/sh", "-c", "echo wrapped >> /shell-calls.txt; eval \"$1\"", "wrapper"]
RUN echo "via the shell" > /shell-form.txt
RUN ["/bin/sh", "-c", "echo $# $0 $1 > /exec-form.txt", "zero", "one"]
RUN echo "again" >> /shell-form.txt
"#,
            &[],
        )
        .success();
    let files = built.files();
    assert_eq!(files.text("default.txt"), "default /bin/sh\n");
    assert_eq!(files.text("shell-form.txt"), "via the shell\nagain\n");
    assert_eq!(files.text("exec-form.txt"), "1 zero one\n");
    assert_eq!(
        files.text("shell-calls.txt"),
        "wrapped\nwrapped\n",
        "the exec form did not run through SHELL"
    );
}

#[test]
fn a_heredoc_script_runs_through_its_shebang() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            "FROM BASE\n\
             RUN <<EOF\n\
             #!/bin/awk -f\n\
             BEGIN { print \"awk ran \" (1 + 2) > \"/heredoc.txt\" }\n\
             EOF\n\
             RUN <<EOF\n\
             echo first > /lines.txt\n\
             echo second >> /lines.txt\n\
             EOF\n",
            &[],
        )
        .success();
    let files = built.files();
    assert_eq!(files.text("heredoc.txt"), "awk ran 3\n");
    assert_eq!(files.text("lines.txt"), "first\nsecond\n");
}

#[test]
fn env_and_arg_are_in_the_environment_and_args_stay_out_of_the_config() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            "FROM BASE\n\
             ARG GIVEN=default\n\
             ARG DEFAULTED=fallback\n\
             ARG SHADOWED=from-arg\n\
             ENV SHADOWED=from-env PERSISTED=kept\n\
             RUN echo \"$GIVEN $DEFAULTED $SHADOWED $PERSISTED\" > /env.txt && env | sort > /all-env.txt\n",
            &["--build-arg", "GIVEN=from-command-line"],
        )
        .success();
    let files = built.files();
    assert_eq!(
        files.text("env.txt"),
        "from-command-line fallback from-env kept\n"
    );
    let all_env = files.text("all-env.txt");
    for line in ["HOME=/root", "PERSISTED=kept", "GIVEN=from-command-line"] {
        assert!(
            all_env.lines().any(|l| l == line),
            "`{line}` in the step's environment:\n{all_env}"
        );
    }
    let config = built.config();
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .expect("an Env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"PERSISTED=kept"), "{env:?}");
    assert!(env.contains(&"SHADOWED=from-env"), "{env:?}");
    assert!(
        !env.iter()
            .any(|e| e.starts_with("GIVEN=") || e.starts_with("DEFAULTED=")),
        "ARG values are not persisted: {env:?}"
    );
}

/// Supplementary groups are those /etc/group lists the user in, never the primary group
/// (as BuildKit: differential case 83).
#[test]
fn user_by_name_or_id_gets_its_groups_and_home() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            "FROM BASE\n\
             RUN echo 'staff:x:50:app,nobody' >> /etc/group && echo 'audio:x:29:app' >> /etc/group\n\
             USER app\n\
             RUN id > /tmp/by-name.txt; echo $HOME > /tmp/home-by-name.txt; touch /tmp/owned-by-app\n\
             USER 1000\n\
             RUN id > /tmp/by-id.txt\n\
             USER 1000:50\n\
             RUN id > /tmp/by-ids.txt\n\
             USER 4242\n\
             RUN id > /tmp/unknown.txt; echo $HOME > /tmp/home-unknown.txt\n\
             USER root\n\
             RUN id > /tmp/root.txt; echo $HOME > /tmp/home-root.txt\n",
            &[],
        )
        .success();
    let files = built.files();
    let groups = |name: &str| {
        let text = files.text(name);
        let (head, groups) = text
            .trim_end()
            .split_once(" groups=")
            .unwrap_or_else(|| panic!("no groups in `{text}`"));
        let mut groups: Vec<String> = groups.split(',').map(str::to_string).collect();
        groups.sort();
        (head.to_string(), groups)
    };
    let app_groups = vec!["29(audio)".to_string(), "50(staff)".to_string()];
    assert_eq!(
        groups("tmp/by-name.txt"),
        (
            "uid=1000(app) gid=1000(app)".to_string(),
            app_groups.clone()
        )
    );
    assert_eq!(
        groups("tmp/by-id.txt"),
        (
            "uid=1000(app) gid=1000(app)".to_string(),
            app_groups.clone()
        ),
        "a numeric USER is looked up in /etc/passwd too"
    );
    assert_eq!(
        files.text("tmp/by-ids.txt").trim_end(),
        "uid=1000(app) gid=50(staff)",
        "an explicit group replaces the supplementary groups"
    );
    assert_eq!(
        files.text("tmp/unknown.txt").trim_end(),
        "uid=4242 gid=0(root)",
        "an unknown uid runs with group root and no supplementary groups"
    );
    assert_eq!(files.text("tmp/home-by-name.txt"), "/home/app\n");
    assert_eq!(files.text("tmp/home-unknown.txt"), "/\n");
    assert_eq!(files.text("tmp/home-root.txt"), "/root\n");
    assert_eq!(
        files.text("tmp/root.txt").trim_end(),
        "uid=0(root) gid=0(root)"
    );
    let owned = &built.files().0["tmp/owned-by-app"];
    assert_eq!((owned.uid, owned.gid), (1000, 1000));
}

#[test]
fn workdir_is_the_working_directory_and_is_created() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            "FROM BASE\n\
             WORKDIR /work/sub\n\
             RUN pwd > here.txt\n\
             WORKDIR relative\n\
             RUN pwd > here.txt\n",
            &[],
        )
        .success();
    let files = built.files();
    assert_eq!(files.text("work/sub/here.txt"), "/work/sub\n");
    assert_eq!(
        files.text("work/sub/relative/here.txt"),
        "/work/sub/relative\n"
    );
    assert_eq!(built.config()["config"]["WorkingDir"], "/work/sub/relative");
}

#[test]
fn network_none_leaves_only_loopback_and_the_default_is_the_hosts_network() {
    let bench = Bench::new(support::busybox_rootfs);
    let host_net = || fs::read_to_string("/proc/net/dev").expect("read the host's /proc/net/dev");
    // Other processes on the machine may add or remove interfaces meanwhile: the step must
    // see those present throughout and nothing the host never had.
    let before: BTreeSet<String> = interfaces(&host_net()).into_iter().collect();
    let built = bench
        .build(
            "FROM BASE\n\
             RUN --network=none cat /proc/net/dev > /none.txt\n\
             RUN --network=none ping -c 1 -W 2 127.0.0.1 > /dev/null && echo up > /lo.txt\n\
             RUN cat /proc/net/dev > /host.txt\n",
            &[],
        )
        .success();
    let after: BTreeSet<String> = interfaces(&host_net()).into_iter().collect();
    let files = built.files();
    assert_eq!(interfaces(&files.text("none.txt")), ["lo"]);
    assert_eq!(
        files.text("lo.txt"),
        "up\n",
        "loopback is up, as in BuildKit"
    );
    let seen: BTreeSet<String> = interfaces(&files.text("host.txt")).into_iter().collect();
    assert!(
        before.intersection(&after).all(|name| seen.contains(name))
            && seen
                .iter()
                .all(|name| before.contains(name) || after.contains(name)),
        "a step shares the host's network by default, as `docker build` does: it saw \
         {seen:?}, the host had {before:?} then {after:?}"
    );
    assert!(seen.len() > 1, "more than loopback: {seen:?}");
}

/// The interface names of a `/proc/net/dev` listing, sorted.
fn interfaces(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .skip(2)
        .filter_map(|line| {
            line.split_once(':')
                .map(|(name, _)| name.trim().to_string())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn etc_files_are_provided_and_kept_out_of_the_layer() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            "FROM BASE\n\
             RUN cat /etc/hostname > /hostname.txt && hostname > /uname.txt \
             && cat /etc/hosts > /hosts.txt && cat /etc/resolv.conf > /resolv.txt\n",
            &[],
        )
        .success();
    let files = built.files();
    let hostname = files.text("hostname.txt");
    assert!(!hostname.trim().is_empty(), "/etc/hostname has a name");
    assert_eq!(
        files.text("uname.txt"),
        hostname,
        "the UTS name is /etc/hostname's"
    );
    let hosts = files.text("hosts.txt");
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with("127.0.0.1") && l.contains("localhost")),
        "{hosts}"
    );
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert_eq!(files.text("resolv.txt"), host_resolv, "the host's resolver");
    for path in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        assert!(!files.0.contains_key(path), "`{path}` is not in any layer");
    }
}

#[test]
fn proc_is_a_fresh_pid_namespace_and_dev_is_minimal() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            "FROM BASE\n\
             RUN echo $$ > /pid.txt; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' ' > /pids.txt\n\
             RUN set -e; for d in null zero full random urandom tty ptmx; do test -c /dev/$d; done; \
             test -d /dev/pts; test -d /dev/shm; echo gone > /dev/null; \
             head -c 5 /dev/zero | wc -c > /zero.txt; head -c 8 /dev/urandom | wc -c > /random.txt; \
             stat -c '%t,%T' /dev/null > /null.txt; \
             if echo x > /sys/probe 2>/dev/null; then echo writable; else echo read-only; fi > /sys.txt\n",
            &[],
        )
        .success();
    let files = built.files();
    assert_eq!(
        files.text("pid.txt"),
        "1\n",
        "the shell is PID 1 of its own namespace"
    );
    let pids: Vec<u32> = files
        .text("pids.txt")
        .split_whitespace()
        .map(|pid| pid.parse().expect("a pid"))
        .collect();
    assert_eq!(pids.first(), Some(&1), "{pids:?}");
    assert!(
        pids.iter().all(|&pid| pid < 10),
        "only the step's own few processes are in /proc: {pids:?}"
    );
    assert_eq!(files.text("zero.txt").trim(), "5");
    assert_eq!(files.text("random.txt").trim(), "8");
    assert_eq!(files.text("null.txt"), "1,3\n");
    assert_eq!(files.text("sys.txt"), "read-only\n");
    assert!(
        !files
            .0
            .keys()
            .any(|p| p.starts_with("dev/") || p.starts_with("proc/")),
        "nothing of /dev or /proc is in a layer"
    );
}

#[test]
fn a_failing_step_names_its_line_command_exit_code_and_last_output() {
    let bench = Bench::new(support::busybox_rootfs);
    let failed = bench.build(
        "FROM BASE\n\
         RUN echo fine\n\
         RUN echo first-line; echo second-line; echo last-line >&2; exit 3\n\
         RUN echo never-runs > /never\n",
        &[],
    );
    assert!(!failed.status.success(), "the build fails");
    let stderr = &failed.stderr;
    for needle in [
        "Dockerfile:3",
        "echo first-line; echo second-line",
        "exit code 3",
        "second-line",
        "last-line",
    ] {
        assert!(
            stderr.contains(needle),
            "`{needle}` in the error:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("never-runs >"),
        "the build stopped at the failure:\n{stderr}"
    );
    assert!(
        failed.stdout.trim().is_empty(),
        "no digest printed: {}",
        failed.stdout
    );
    assert!(!failed.out.join("index.json").exists(), "no image written");
}

// ---------------------------------------------------------------------------
// Leaks and reuse

#[test]
fn builds_leave_no_mount_process_or_temporary_file() {
    let bench = Bench::new(support::busybox_rootfs);
    let marker = format!("{}", 600_000 + bench::nonce() % 100_000);
    let ok = format!(
        "FROM BASE\n\
         RUN --mount=type=tmpfs,target=/t --mount=type=cache,target=/c \
         sleep {marker} & echo started > /started.txt\n\
         RUN echo second step\n"
    );
    let failing = format!(
        "FROM BASE\n\
         RUN --mount=type=tmpfs,target=/t sleep {marker} & echo started; exit 7\n"
    );
    let built = bench.build(&ok, &[]).success();
    assert_eq!(built.files().text("started.txt"), "started\n");
    bench.assert_clean(&marker);
    let failed = bench.build(&failing, &[]);
    assert!(!failed.status.success(), "{}", failed.stderr);
    assert!(failed.stderr.contains("exit code 7"), "{}", failed.stderr);
    bench.assert_clean(&marker);
    // A build that fails setting up a step's mounts, after an earlier step ran.
    let unmountable = bench.build(
        "FROM BASE
         RUN --mount=type=cache,target=/c echo first > /c/f
         RUN --mount=type=bind,source=not-in-context,target=/m true
",
        &[],
    );
    assert!(!unmountable.status.success(), "{}", unmountable.stderr);
    assert!(
        unmountable.stderr.contains("not-in-context"),
        "{}",
        unmountable.stderr
    );
    bench.assert_clean(&marker);
}

#[test]
fn a_killed_build_takes_its_steps_with_it() {
    let bench = Bench::new(support::busybox_rootfs);
    let marker = format!("{}", 700_000 + bench::nonce() % 100_000);
    let dockerfile = format!("FROM BASE\nRUN echo running; sleep {marker}\n");
    let leftovers = bench.build_and_kill(&dockerfile, &marker);
    bench.assert_no_process(&marker);
    bench.assert_no_mount();
    // SIGKILL gives the builder no chance to remove its temporary directories; a later
    // build of the same store must still work, and clears them.
    eprintln!("temporary entries left by the killed build: {leftovers}");
    let after = bench
        .build("FROM BASE\nRUN echo after > /after.txt\n", &[])
        .success();
    assert_eq!(after.files().text("after.txt"), "after\n");
    let left = bench::entries(&bench.store.join("tmp"));
    assert!(
        left.is_empty(),
        "the next build cleared what the killed one left: {left:?}"
    );
}

#[test]
fn a_second_build_of_the_same_base_extracts_nothing() {
    let bench = Bench::new(support::busybox_rootfs);
    let first = bench
        .build("FROM BASE\nRUN echo one > /one.txt\n", &[])
        .success();
    let unpacked = bench.store.join("unpacked");
    let before = bench::entry_times(&unpacked);
    assert!(!before.is_empty(), "the first build unpacked its base");
    let second = bench
        .build("FROM BASE\nRUN echo two > /two.txt\n", &[])
        .success();
    let after = bench::entry_times(&unpacked);
    assert_eq!(before, after, "no layer was extracted again");
    assert_eq!(second.files().text("two.txt"), "two\n");
    assert!(!second.files().0.contains_key("one.txt"));
    drop(first);
}

/// The helpers re-execute the running program (`/proc/self/exe`), not the path it was
/// started from: replacing that file mid-build (a `cargo build`, a package upgrade) does not
/// break the later steps.
#[test]
fn a_binary_replaced_during_a_build_keeps_running_its_steps() {
    let bench = Bench::new(support::busybox_rootfs);
    let binary = bench.work.path().join("rust-image-action");
    fs::copy(env!("CARGO_BIN_EXE_rust-image-action"), &binary).expect("copy the binary");
    let marker = format!("waiting-{}", bench::nonce());
    let context = bench.context(
        "replaced",
        &format!(
            "FROM BASE\n\
             RUN --mount=type=bind,target=/ctx sh -c 'while [ ! -e /ctx/go ]; do sleep 0.1; done' {marker}\n\
             RUN echo second > /second.txt\n"
        ),
    );
    let child = std::process::Command::new(&binary)
        .arg("build")
        .arg(&context)
        .arg("--cache-dir")
        .arg(&bench.store)
        .arg("--isolation")
        .arg("namespace")
        .arg("--oci-layout")
        .arg(bench.work.path().join("replaced/oci"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the copied binary");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while bench::processes_with(&marker).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Replaced the way installers do: a new file renamed over the old name.
    let fresh = bench.work.path().join("rust-image-action.new");
    fs::copy(&binary, &fresh).expect("copy the binary again");
    fs::rename(&fresh, &binary).expect("replace the binary");
    fs::write(context.join("go"), "").expect("let the first step finish");
    let output = child.wait_with_output().expect("wait for the build");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the build survives its binary being replaced:\n{stderr}"
    );
    assert!(!stderr.contains("(deleted)"), "{stderr}");
    bench.assert_no_process(&marker);
    bench.assert_no_mount();
}

/// An empty directory recreated below a deleted-and-recreated (opaque) directory is kept,
/// although its path and metadata match the hidden lower one (differential case 82).
#[test]
fn an_empty_directory_recreated_under_an_opaque_directory_is_kept() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            "FROM BASE\n\
             RUN mkdir -p /data/dir/sub && echo old > /data/dir/sub/deep.txt\n\
             RUN rm -r /data/dir && mkdir -p /data/dir/sub && echo new > /data/dir/new.txt\n",
            &[],
        )
        .success();
    let layer = built.last_layer();
    let paths: Vec<&str> = layer.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "data",
            "data/dir",
            "data/dir/.wh..wh..opq",
            "data/dir/new.txt",
            "data/dir/sub"
        ],
    );
    assert!(built.files().0.contains_key("data/dir/sub"));
    assert!(!built.files().0.contains_key("data/dir/sub/deep.txt"));
}

/// `COPY --from` a stage whose base layer has a root entry `./` (mmdebstrap's roots,
/// anything made with `tar -C DIR -cf LAYER.tar .`).
#[test]
fn copy_from_a_stage_whose_base_layer_has_a_root_entry() {
    bench::require_root();
    let registry = support::Registry::start_open();
    let work = bench::work_dir("run-root-entry-test");
    let rootfs = work.path().join("rootfs");
    support::busybox_rootfs(&rootfs);
    let tar = work.path().join("layer.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    let base = support::image::push_tar_image(&registry, "test/root-entry:1", &[&tar]);
    let bench = Bench::with_base(registry, base, work);
    let copied = bench
        .build(
            "FROM BASE AS build\n\
             RUN echo built > /built.txt\n\
             FROM BASE\n\
             COPY --from=build /built.txt /copied.txt\n",
            &[],
        )
        .success();
    assert_eq!(copied.files().text("copied.txt"), "built\n");
    // The same base is fine for RUN itself.
    let built = bench
        .build("FROM BASE\nRUN echo ran > /ran.txt\n", &[])
        .success();
    assert_eq!(built.files().text("ran.txt"), "ran\n");
}
