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
use support::fake_github::{FakeGitHub, FakeRef, FakeRepo};
use support::token_server::TokenOptions;
use support::{Registry, busybox_rootfs, push_rootfs_image, skopeo};
use yaml_rust2::{Yaml, YamlLoader};

const OUR_BINARY: &str = env!("CARGO_BIN_EXE_rust-image-action");
const ACTOR: &str = "octocat";
const TOKEN: &str = "ghs_simulatedRunnerToken0123456789";
const SHA: &str = "9f3c2a1b7e4d5c6b8a90f1e2d3c4b5a697887766";
const OLD_SHA: &str = "1111111111111111111111111111111111111111";
const COMMIT_DATE: &str = "2026-11-30T08:15:42Z";
const REPOSITORY: &str = "Acme-Corp/Web-App";
const IMAGE_REPOSITORY: &str = "acme-corp/web-app";

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/events")
}

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
        let base_registry = Registry::start_open();
        let rootfs = tempfile::tempdir().expect("tempdir");
        busybox_rootfs(rootfs.path());
        let base = push_rootfs_image(&base_registry, "base/busybox:1", rootfs.path()).reference;
        let ghcr = AuthRegistry::start_token(TokenOptions::new(ACTOR, TOKEN));
        let mut commits = BTreeMap::new();
        commits.insert(SHA.to_string(), COMMIT_DATE.to_string());
        commits.insert(OLD_SHA.to_string(), "2025-01-02T03:04:05Z".to_string());
        let api = FakeGitHub::start(FakeRepo {
            full_name: REPOSITORY.to_string(),
            default_branch: "main".to_string(),
            description: "The web app".to_string(),
            license: "MIT".to_string(),
            refs: vec![
                FakeRef {
                    full_ref: "refs/heads/main".into(),
                    sha: SHA.into(),
                },
                FakeRef {
                    full_ref: "refs/tags/v1.1.0".into(),
                    sha: OLD_SHA.into(),
                },
                FakeRef {
                    full_ref: "refs/tags/v1.2.3".into(),
                    sha: SHA.into(),
                },
            ],
            commits,
        });
        Runner {
            _base_registry: base_registry,
            base,
            ghcr,
            api,
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
        let root = workspace.parent().expect("run dir").to_path_buf();
        let output = root.join("github_output");
        let summary = root.join("step_summary");
        let home = root.join("home");
        std::fs::create_dir_all(&home).expect("home");
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in action_defaults() {
            env.insert(format!("INPUT_{}", name.to_ascii_uppercase()), value);
        }
        for (name, value) in with {
            env.insert(
                format!("INPUT_{}", name.to_ascii_uppercase()),
                value.to_string(),
            );
        }
        let github = [
            ("GITHUB_SHA", SHA),
            ("GITHUB_REPOSITORY", REPOSITORY),
            ("GITHUB_REPOSITORY_OWNER", "Acme-Corp"),
            ("GITHUB_ACTOR", ACTOR),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_RUN_ID", "4242"),
            ("GITHUB_ACTIONS", "true"),
        ];
        for (key, value) in github.iter().chain(git) {
            env.insert(key.to_string(), value.to_string());
        }
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
        let mut skopeo = skopeo();
        let out = skopeo
            .args(["list-tags", "--tls-verify=false", "--creds"])
            .arg(format!("{ACTOR}:{TOKEN}"))
            .arg(format!("docker://{}/{IMAGE_REPOSITORY}", self.ghcr.addr()))
            .output()
            .expect("skopeo list-tags");
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("NAME_UNKNOWN")
                    || stderr.contains("unknown")
                    || stderr.contains("404"),
                "skopeo list-tags failed: {stderr}"
            );
            return Vec::new();
        }
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tags JSON");
        let mut tags: Vec<String> = value["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        tags.sort();
        tags
    }

    /// The config of `tag` in the ghcr.io stand-in.
    fn config(&self, tag: &str) -> serde_json::Value {
        let mut skopeo = skopeo();
        let out = skopeo
            .args(["inspect", "--config", "--tls-verify=false", "--creds"])
            .arg(format!("{ACTOR}:{TOKEN}"))
            .arg(format!(
                "docker://{}/{IMAGE_REPOSITORY}:{tag}",
                self.ghcr.addr()
            ))
            .output()
            .expect("skopeo inspect");
        assert!(
            out.status.success(),
            "inspect {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("config JSON")
    }
}

struct Run {
    success: bool,
    log: String,
    outputs: String,
    summary: String,
}

impl Run {
    fn assert_success(&self) {
        assert!(self.success, "the action failed:\n{}", self.log);
        // The runner hides a value once `::add-mask::` registered it; nowhere else may it
        // appear in the clear.
        let first = self.log.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("::add-mask::{TOKEN}"),
            "masked before anything else"
        );
        let leaked = self
            .log
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .any(|l| l.contains(TOKEN));
        assert!(!leaked, "the token reached the log:\n{}", self.log);
        assert!(
            !self.summary.contains(TOKEN),
            "the token reached the summary"
        );
    }

    /// The outputs as the runner reads `GITHUB_OUTPUT`: `name=value` and
    /// `name<<DELIMITER` blocks.
    fn outputs(&self) -> BTreeMap<String, String> {
        let mut outputs = BTreeMap::new();
        let mut lines = self.outputs.lines();
        while let Some(line) = lines.next() {
            if let Some((name, delimiter)) = line.split_once("<<") {
                let mut value = Vec::new();
                for next in lines.by_ref() {
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                outputs.insert(name.to_string(), value.join("\n"));
            } else if let Some((name, value)) = line.split_once('=') {
                outputs.insert(name.to_string(), value.to_string());
            }
        }
        outputs
    }
}

/// The inputs action.yml declares with their defaults, `${{ github.* }}` evaluated the way
/// the runner would for this simulated run.
fn action_defaults() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml"))
        .expect("read action.yml");
    let docs = YamlLoader::load_from_str(&text).expect("action.yml is YAML");
    let inputs = docs[0]["inputs"].as_hash().expect("action.yml has inputs");
    inputs
        .iter()
        .map(|(name, spec)| {
            let name = name.as_str().expect("input name").to_string();
            let default = match &spec["default"] {
                Yaml::String(text) => text.clone(),
                Yaml::Boolean(b) => b.to_string(),
                Yaml::Integer(i) => i.to_string(),
                _ => String::new(),
            };
            let value = default
                .replace("${{ github.token }}", TOKEN)
                .replace("${{ github.actor }}", ACTOR);
            (name, value)
        })
        .collect()
}

fn lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn push_main_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_REF_TYPE", "branch"),
    ]
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
