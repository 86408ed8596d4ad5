//! `RUN --mount` with the `namespace` backend, as root, on a busybox base in a real
//! registry: cache mounts that persist in the store, secrets that reach the step and nothing
//! else (no layer, config, metadata file, log or store file holds their bytes), binds of the
//! context and of a stage, tmpfs.

mod support;

use std::fs;

use support::bench::{self, Bench};

#[test]
fn a_cache_mount_persists_across_builds_of_the_same_store() {
    let bench = Bench::new(support::busybox_rootfs);
    let dockerfile = "FROM BASE\n\
         ARG ROUND\n\
         RUN --mount=type=cache,id=counter,target=/cache,sharing=locked,mode=0750,uid=1000,gid=50 \
         set -e; stat -c '%a %u %g' /cache > /meta.txt; \
         n=$(cat /cache/count 2>/dev/null || echo 0); echo $((n + 1)) > /cache/count; \
         cp /cache/count /seen.txt; echo $ROUND >> /cache/rounds\n\
         RUN --mount=type=cache,target=/var/cache/by-target \
         n=$(cat /var/cache/by-target/n 2>/dev/null || echo 0); echo $((n + 1)) > /var/cache/by-target/n; \
         cp /var/cache/by-target/n /seen-by-target.txt\n\
         RUN --mount=type=cache,id=counter,target=/again,sharing=shared cat /again/rounds > /rounds.txt\n\
         RUN --mount=type=cache,id=private,target=/p,sharing=private touch /p/x && ls /p > /private.txt\n";
    let first = bench
        .build(dockerfile, &["--build-arg", "ROUND=one"])
        .success();
    let second = bench
        .build(dockerfile, &["--build-arg", "ROUND=two"])
        .success();
    for (built, count, rounds) in [(&first, "1\n", "one\n"), (&second, "2\n", "one\ntwo\n")] {
        let files = built.files();
        assert_eq!(files.text("meta.txt"), "750 1000 50\n", "mode, uid and gid");
        assert_eq!(files.text("seen.txt"), count, "the count of builds so far");
        assert_eq!(
            files.text("seen-by-target.txt"),
            count,
            "the target is the id"
        );
        assert_eq!(
            files.text("rounds.txt"),
            rounds,
            "another mount of the same id"
        );
        assert_eq!(files.text("private.txt"), "x\n");
        assert!(
            !files
                .0
                .keys()
                .any(|p| p.starts_with("cache") || p.starts_with("var/cache/by")),
            "the cache's content is not in the image: {:?}",
            files.0.keys()
        );
    }

    // Another store starts from an empty cache.
    let other = bench
        .build_in(
            &bench.work.path().join("other-store"),
            dockerfile,
            &["--build-arg", "ROUND=x"],
        )
        .success();
    assert_eq!(other.files().text("seen.txt"), "1\n");
}

#[test]
fn secrets_reach_the_step_and_nothing_else() {
    let bench = Bench::new(support::busybox_rootfs);
    // Made at run time so no file of the repository holds it.
    let from_env = format!("env-secret-{}-{}", std::process::id(), bench::nonce());
    let from_file = format!("file-secret-{}-{}", std::process::id(), bench::nonce());
    let secret_file = bench.work.path().join("secret.txt");
    fs::write(&secret_file, &from_file).expect("write the secret file");
    let dockerfile = "FROM BASE\n\
         RUN --mount=type=secret,id=token,required \
         sha256sum /run/secrets/token | cut -d' ' -f1 > /token.sha; \
         stat -c '%a %u %g' /run/secrets/token > /token.meta\n\
         RUN --mount=type=secret,id=key,target=/etc/app/key,mode=0440,uid=1000,gid=50 \
         sha256sum /etc/app/key | cut -d' ' -f1 > /key.sha; stat -c '%a %u %g' /etc/app/key > /key.meta; \
         if echo x > /etc/app/key; then echo writable; else echo read-only; fi > /key.write\n\
         RUN --mount=type=secret,id=token,env=TOKEN echo -n \"$TOKEN\" | sha256sum | cut -d' ' -f1 > /env.sha\n\
         RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo optional > /absent.txt\n";
    let secrets = [
        "--secret",
        "id=token,env=RIA_TEST_SECRET",
        "--secret",
        &format!("id=key,src={}", secret_file.display()),
    ];
    let built = bench
        .build_with_env(dockerfile, &secrets, &[("RIA_TEST_SECRET", &from_env)])
        .success();
    let files = built.files();
    let sha = |text: &str| support::image_tree::sha256_hex(text.as_bytes());
    assert_eq!(files.text("token.sha").trim(), sha(&from_env));
    assert_eq!(files.text("token.meta"), "400 0 0\n");
    assert_eq!(files.text("key.sha").trim(), sha(&from_file));
    assert_eq!(files.text("key.meta"), "440 1000 50\n");
    assert_eq!(files.text("key.write"), "read-only\n");
    assert_eq!(files.text("env.sha").trim(), sha(&from_env));
    assert_eq!(files.text("absent.txt"), "optional\n");
    assert!(
        !files
            .0
            .keys()
            .any(|p| p.starts_with("run") || p.starts_with("etc/app")),
        "secret mount points are not in the image: {:?}",
        files.0.keys()
    );

    // The searches below see into compressed layers: the step's own output (the secret's
    // hash) is found in every place the secret must not be.
    let visible = sha(&from_env);
    assert!(!bench::files_containing(&built.out, visible.as_bytes()).is_empty());
    assert!(!bench::files_containing(&bench.store, visible.as_bytes()).is_empty());
    let tar = fs::read(&built.tar).expect("the docker-archive");
    assert!(!bench::archive_members_containing(&tar, visible.as_bytes()).is_empty());

    for secret in [&from_env, &from_file] {
        let needle = secret.as_bytes();
        assert!(
            !built.stderr.contains(secret.as_str()),
            "the log shows a secret"
        );
        assert!(
            !built.stdout.contains(secret.as_str()),
            "stdout shows a secret"
        );
        let found = bench::files_containing(&built.out, needle);
        assert!(
            found.is_empty(),
            "the OCI layout holds a secret in {found:?}"
        );
        let found = bench::files_containing(&bench.store, needle);
        assert!(found.is_empty(), "the store holds a secret in {found:?}");
        let metadata = fs::read(&built.metadata).expect("the metadata file");
        assert!(
            !bench::contains(&metadata, needle),
            "the metadata holds a secret"
        );
        let tar = fs::read(&built.tar).expect("the docker-archive");
        let found = bench::archive_members_containing(&tar, needle);
        assert!(
            found.is_empty(),
            "the docker-archive holds a secret in {found:?}"
        );
    }

    // A required secret that was not given stops the build before the step runs.
    let missing = bench.build(
        "FROM BASE\nRUN --mount=type=secret,id=missing,required=true touch /ran\n",
        &[],
    );
    assert!(!missing.status.success());
    assert!(
        missing.stderr.contains("missing") && missing.stderr.contains("required"),
        "{}",
        missing.stderr
    );
    // No process carries a secret in its arguments, and every build left the store clean.
    bench.assert_clean(&from_env);
    bench.assert_clean(&from_file);
}

#[test]
fn bind_mounts_of_the_context_and_of_a_stage() {
    let bench = Bench::new(support::busybox_rootfs);
    let context_files = [("assets/data.txt", "from the context\n")];
    let built = bench
        .build_context(
            "FROM BASE AS other\n\
             RUN mkdir /made && echo from-the-stage > /made/by-stage.txt\n\
             FROM BASE\n\
             RUN --mount=type=bind,source=assets,target=/ctx \
             cat /ctx/data.txt > /bind.txt; \
             if touch /ctx/new 2>/dev/null; then echo writable; else echo read-only; fi > /bind-write.txt\n\
             RUN --mount=type=bind,source=assets,target=/ctx,rw \
             echo changed > /ctx/data.txt && echo scratch > /ctx/new && cat /ctx/data.txt > /rw.txt\n\
             RUN --mount=type=bind,source=assets,target=/ctx cat /ctx/data.txt > /after-rw.txt\n\
             RUN --mount=type=bind,from=other,source=/made,target=/stage \
             cat /stage/by-stage.txt > /from-stage.txt\n\
             RUN --mount=type=bind,target=/whole cat /whole/assets/data.txt > /whole.txt\n",
            &context_files,
            &[],
        )
        .success();
    let files = built.files();
    assert_eq!(files.text("bind.txt"), "from the context\n");
    assert_eq!(files.text("bind-write.txt"), "read-only\n");
    assert_eq!(
        files.text("rw.txt"),
        "changed\n",
        "rw allows writes during the step"
    );
    assert_eq!(
        files.text("after-rw.txt"),
        "from the context\n",
        "and discards them"
    );
    assert_eq!(files.text("from-stage.txt"), "from-the-stage\n");
    assert_eq!(files.text("whole.txt"), "from the context\n");
    let context = built.context.join("assets");
    assert_eq!(
        fs::read_to_string(context.join("data.txt")).expect("the context file"),
        "from the context\n",
        "the context itself is untouched"
    );
    assert!(!context.join("new").exists());
    assert!(
        !files
            .0
            .keys()
            .any(|p| ["ctx", "stage", "whole", "made"].contains(&p.split('/').next().unwrap_or(p))),
        "mount points and the other stage are not in the image: {:?}",
        files.0.keys()
    );
}

#[test]
fn a_tmpfs_mount_is_empty_and_its_writes_vanish() {
    let bench = Bench::new(support::busybox_rootfs);
    let built = bench
        .build(
            "FROM BASE\n\
             RUN mkdir /scratch && echo base > /scratch/kept.txt\n\
             RUN --mount=type=tmpfs,target=/scratch \
             ls /scratch > /listing.txt; echo gone > /scratch/written.txt; \
             grep ' /scratch ' /proc/mounts | cut -d' ' -f3 > /fstype.txt\n\
             RUN ls /scratch > /after.txt\n",
            &[],
        )
        .success();
    let files = built.files();
    assert_eq!(
        files.text("listing.txt"),
        "",
        "the tmpfs hides what is below"
    );
    assert_eq!(files.text("fstype.txt"), "tmpfs\n");
    assert_eq!(files.text("after.txt"), "kept.txt\n");
    assert!(!files.0.contains_key("scratch/written.txt"));
}
