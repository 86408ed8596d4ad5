//! The action mode end to end in a simulated runner: the runner's environment (`INPUT_*`
//! from action.yml's defaults and the step's `with:`, `GITHUB_*`, the event payload file,
//! `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`), a token-auth registry standing in for ghcr.io
//! (`RIA_REGISTRY_ENDPOINTS`), and a fake of GitHub's API. Each case asserts the tags in the
//! registry, the labels in the pushed config and every output line.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::auth_registry::AuthRegistry;
use support::fake_github::FakeGitHub;
use support::runner::{
    ACTOR, ActionRun as Run, COMMIT_DATE, IMAGE_REPOSITORY, OLD_SHA, SHA, TOKEN, events_dir,
    github_env, input_env, push_main_env, registry_config, registry_tags, sorted_lines as lines,
    start_fake_github,
};
use support::token_server::TokenOptions;
use support::{Registry, busybox_rootfs, push_rootfs_image};
use yaml_rust2::YamlLoader;

const OUR_BINARY: &str = env!("CARGO_BIN_EXE_rust-image-action");

/// Everything a run needs, started once per test.
struct Runner {
    _base_registry: Registry,
    base: String,
    ghcr: AuthRegistry,
    api: FakeGitHub,
    dir: tempfile::TempDir,
}

impl Runner {
    fn start() -> Runner {
        Runner::start_with(TokenOptions::new(ACTOR, TOKEN))
    }

    /// Like [`Runner::start`], with the ghcr.io stand-in's token server set up by `options`.
    fn start_with(options: TokenOptions) -> Runner {
        let base_registry = Registry::start_open();
        let rootfs = tempfile::tempdir().expect("tempdir");
        busybox_rootfs(rootfs.path());
        let base = push_rootfs_image(&base_registry, "base/busybox:1", rootfs.path()).reference;
        let ghcr = AuthRegistry::start_token(options);
        Runner {
            _base_registry: base_registry,
            base,
            ghcr,
            api: start_fake_github(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A fresh workspace with the seed Dockerfile: a builder stage with RUN and a final
    /// stage copying its result.
    fn workspace(&self, name: &str) -> PathBuf {
        let workspace = self.dir.path().join(name).join("workspace");
        std::fs::create_dir_all(&workspace).expect("workspace");
        std::fs::write(
            workspace.join("Dockerfile"),
            format!(
                "FROM {base} AS build\nRUN mkdir /out && echo \"built $(id -u)\" > /out/app\n\
                 FROM {base}\nCOPY --from=build /out/app /app\nCOPY hello.txt /hello.txt\n\
                 CMD [\"cat\", \"/app\"]\n",
                base = self.base
            ),
        )
        .expect("Dockerfile");
        std::fs::write(workspace.join("hello.txt"), "hello\n").expect("context file");
        workspace
    }

    /// Runs the action for `event` (a payload file under tests/data/events) with the step's
    /// `with:` values, as the runner would; returns the run's files and log.
    fn run(&self, name: &str, event: &str, git: &[(&str, &str)], with: &[(&str, &str)]) -> Run {
        let workspace = self.workspace(name);
        self.run_in(&workspace, event, git, with)
    }

    fn run_in(
        &self,
        workspace: &Path,
        event: &str,
        git: &[(&str, &str)],
        with: &[(&str, &str)],
    ) -> Run {
        let workspace = workspace.to_path_buf();
        let root = workspace.parent().expect("run dir").to_path_buf();
        let output = root.join("github_output");
        let summary = root.join("step_summary");
        let home = root.join("home");
        std::fs::create_dir_all(&home).expect("home");
        let mut env: BTreeMap<String, String> = input_env(with);
        env.extend(github_env(git));
        env.insert("GITHUB_API_URL".into(), self.api.url());
        env.insert("GITHUB_WORKSPACE".into(), workspace.display().to_string());
        env.insert(
            "GITHUB_EVENT_PATH".into(),
            events_dir().join(event).display().to_string(),
        );
        env.insert("GITHUB_OUTPUT".into(), output.display().to_string());
        env.insert("GITHUB_STEP_SUMMARY".into(), summary.display().to_string());
        env.insert("HOME".into(), home.display().to_string());
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
        env.insert(
            "RIA_REGISTRY_ENDPOINTS".into(),
            format!("ghcr.io=http://{}", self.ghcr.addr()),
        );
        let result = Command::new(OUR_BINARY)
            .arg("action")
            .current_dir(&workspace)
            .env_clear()
            .envs(&env)
            .output()
            .expect("run the action");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        Run {
            success: result.status.success(),
            log,
            outputs: std::fs::read_to_string(&output).unwrap_or_default(),
            summary: std::fs::read_to_string(&summary).unwrap_or_default(),
        }
    }

    /// The tags of the image repository in the ghcr.io stand-in, sorted.
    fn registry_tags(&self) -> Vec<String> {
        registry_tags(&self.ghcr)
    }

    /// The config of `tag` in the ghcr.io stand-in.
    fn config(&self, tag: &str) -> serde_json::Value {
        registry_config(&self.ghcr, tag)
    }
}

/// The README's snippet, run exactly: its step's `with:` (none) over action.yml's defaults.
#[test]
fn the_readme_snippet_pushes_sha_main_and_latest() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let start = readme
        .find("<!-- action-snippet:start -->")
        .expect("snippet start marker");
    let end = readme
        .find("<!-- action-snippet:end -->")
        .expect("snippet end marker");
    let block = &readme[start..end];
    let yaml = block
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(yaml, _)| yaml)
        .expect("a yaml block between the markers");
    let docs = YamlLoader::load_from_str(yaml).expect("the snippet is YAML");
    let workflow = &docs[0];
    let step = workflow["jobs"]
        .as_hash()
        .and_then(|jobs| jobs.values().next())
        .and_then(|job| job["steps"].as_vec())
        .and_then(|steps| {
            steps.iter().find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.contains("rust-image-action"))
            })
        })
        .expect("a step using the action");
    let with: Vec<(String, String)> = step["with"]
        .as_hash()
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap_or_default().to_string(),
                        v.as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let with: Vec<(&str, &str)> = with.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(
        workflow["permissions"]["packages"].as_str() == Some("write"),
        "the snippet grants packages: write"
    );

    let runner = Runner::start();
    let run = runner.run("readme", "push_main.json", &push_main_env(), &with);
    run.assert_success();
    let mut expected = vec![SHA.to_string(), "latest".to_string(), "main".to_string()];
    expected.sort();
    assert_eq!(runner.registry_tags(), expected, "log:\n{}", run.log);

    let config = runner.config("main");
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], SHA);
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/Acme-Corp/Web-App"
    );
    assert_eq!(labels["org.opencontainers.image.created"], COMMIT_DATE);
    assert_eq!(labels["org.opencontainers.image.version"], "main");
    assert!(
        config["created"]
            .as_str()
            .is_some_and(|c| c.starts_with("2026-11-30"))
    );

    let outputs = run.outputs();
    let digest = outputs.get("digest").cloned().expect("digest output");
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(outputs.get("version").map(String::as_str), Some("main"));
    assert_eq!(
        outputs.get("image").cloned(),
        Some(format!("ghcr.io/{IMAGE_REPOSITORY}@{digest}"))
    );
    assert!(
        outputs
            .get("imageid")
            .is_some_and(|i| i.starts_with("sha256:"))
    );
    let mut tags = lines(outputs.get("tags").expect("tags output"));
    tags.sort();
    let mut want: Vec<String> = expected
        .iter()
        .map(|t| format!("ghcr.io/{IMAGE_REPOSITORY}:{t}"))
        .collect();
    want.sort();
    assert_eq!(tags, want);
    let metadata: serde_json::Value =
        serde_json::from_str(outputs.get("metadata").expect("metadata output")).expect("JSON");
    assert_eq!(metadata["containerimage.digest"], digest.as_str());
    assert_eq!(
        outputs.keys().cloned().collect::<Vec<_>>(),
        ["digest", "image", "imageid", "metadata", "tags", "version"]
    );
    // The stages as collapsible groups, the password masked before anything else.
    assert!(run.log.contains("::add-mask::"), "{}", run.log);
    assert!(run.log.contains("::group::[build] FROM"), "{}", run.log);
    assert!(run.summary.contains(&digest), "summary:\n{}", run.summary);
}

#[test]
fn branches_tags_pull_requests_rebuilds_and_schedules() {
    let runner = Runner::start();

    // Another branch: its sanitized name and the SHA, no latest.
    let run = runner.run(
        "branch",
        "push_branch.json",
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/feature/Login-Form"),
            ("GITHUB_REF_NAME", "feature/Login-Form"),
            ("GITHUB_REF_TYPE", "branch"),
        ],
        &[],
    );
    run.assert_success();
    assert_eq!(
        runner.registry_tags(),
        vec![SHA.to_string(), "feature-Login-Form".to_string()]
    );
    assert_eq!(
        run.outputs().get("version").map(String::as_str),
        Some("feature-Login-Form")
    );

    // A pull request from a fork: built, not pushed, the digest still an output.
    let run = runner.run(
        "fork",
        "pull_request_fork.json",
        &[
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/17/merge"),
            ("GITHUB_REF_NAME", "17/merge"),
            ("GITHUB_HEAD_REF", "patch-1"),
            ("GITHUB_BASE_REF", "main"),
        ],
        &[],
    );
    run.assert_success();
    assert!(run.log.contains("not pushing"), "{}", run.log);
    assert!(
        run.outputs()
            .get("digest")
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert!(!runner.registry_tags().iter().any(|t| t.starts_with("pr-")));

    // A semver tag that is the highest release: the version, and latest.
    let run = runner.run(
        "tag",
        "push_tag.json",
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_REF_NAME", "v1.2.3"),
            ("GITHUB_REF_TYPE", "tag"),
        ],
        &[],
    );
    run.assert_success();
    let tags = runner.registry_tags();
    assert!(tags.contains(&"1.2.3".to_string()), "{tags:?}\n{}", run.log);
    assert!(tags.contains(&"latest".to_string()), "{tags:?}");
    let latest_digest = run.outputs().get("digest").cloned().expect("digest");

    // A rebuild of an older tag through workflow_dispatch: resolved through the API, and
    // `latest` stays where it was.
    let run = runner.run(
        "rebuild",
        "workflow_dispatch.json",
        &[
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_REF_TYPE", "branch"),
        ],
        &[],
    );
    run.assert_success();
    assert!(run.log.contains("rebuilding `v1.1.0`"), "{}", run.log);
    let tags = runner.registry_tags();
    assert!(tags.contains(&"1.1.0".to_string()), "{tags:?}\n{}", run.log);
    assert!(tags.contains(&OLD_SHA.to_string()), "{tags:?}");
    let config = runner.config("1.1.0");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.revision"],
        OLD_SHA
    );
    let latest = runner.config("latest");
    let tagged = runner.config("1.2.3");
    assert_eq!(
        latest, tagged,
        "latest still names the 1.2.3 image ({latest_digest})"
    );
    assert!(
        runner
            .api
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /repos/Acme-Corp/Web-App/git/ref/tags/v1.1.0 true")),
        "the rebuild resolved its ref with the token: {:?}",
        runner.api.requests()
    );

    // A pull request from the same repository: pushed as pr-N.
    let run = runner.run(
        "same",
        "pull_request_same.json",
        &[
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/18/merge"),
            ("GITHUB_REF_NAME", "18/merge"),
            ("GITHUB_HEAD_REF", "feature/x"),
            ("GITHUB_BASE_REF", "main"),
        ],
        &[],
    );
    run.assert_success();
    let pr = runner
        .registry_tags()
        .into_iter()
        .find(|t| t.starts_with("pr-"))
        .unwrap_or_else(|| panic!("a pr-N tag:\n{}", run.log));
    assert!(pr.starts_with("pr-"), "{pr}");

    // A schedule: nightly from the default branch, and explicit rules.
    let run = runner.run(
        "schedule",
        "schedule.json",
        &[
            ("GITHUB_EVENT_NAME", "schedule"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_REF_TYPE", "branch"),
        ],
        &[(
            "tags",
            "type=schedule,pattern=nightly\ntype=sha,format=short",
        )],
    );
    run.assert_success();
    let tags = runner.registry_tags();
    assert!(
        tags.contains(&"nightly".to_string()),
        "{tags:?}\n{}",
        run.log
    );
    assert!(tags.contains(&format!("sha-{}", &SHA[..7])), "{tags:?}");
}

#[test]
fn bad_inputs_fail_before_any_work_naming_the_input() {
    let runner = Runner::start();
    let run = runner.run(
        "bad",
        "push_main.json",
        &push_main_env(),
        &[("push", "sometimes")],
    );
    assert!(!run.success);
    assert!(run.log.contains("::error"), "{}", run.log);
    assert!(run.log.contains("`push`"), "{}", run.log);
    assert!(runner.registry_tags().is_empty());
    assert!(
        runner.api.requests().is_empty(),
        "no API call before validation"
    );
}

#[test]
fn dockerfile_problems_and_registry_refusals_are_annotations_with_hints() {
    // The token may read the package but not write it, as on ghcr.io without
    // `packages: write`.
    let mut options = TokenOptions::new(ACTOR, TOKEN);
    options.pull_only_repositories = vec![IMAGE_REPOSITORY.to_string()];
    let runner = Runner::start_with(options);
    let run = runner.run("denied", "push_main.json", &push_main_env(), &[]);
    assert!(!run.success, "{}", run.log);
    let error = run
        .log
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_else(|| panic!("an error annotation:\n{}", run.log));
    assert!(error.contains("packages: write"), "{error}");
    assert!(
        runner.registry_tags().is_empty(),
        "no tag on a refused push"
    );

    // A Dockerfile error is an annotation on its file and line.
    let workspace = runner.dir.path().join("broken").join("workspace");
    std::fs::create_dir_all(&workspace).expect("workspace");
    std::fs::write(
        workspace.join("Dockerfile"),
        "FROM scratch\nCOPY --frmo=x a /a\n",
    )
    .expect("Dockerfile");
    let run = runner.run_in(&workspace, "push_main.json", &push_main_env(), &[]);
    assert!(!run.success);
    assert!(
        run.log
            .lines()
            .any(|l| l.starts_with("::error file=Dockerfile,line=2,col=")),
        "{}",
        run.log
    );
}
