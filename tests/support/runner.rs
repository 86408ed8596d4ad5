//! The simulated GitHub runner the action tests share: the run's identity (repository, actor,
//! token, commit), the `INPUT_*` variables action.yml's defaults and a step's `with:` give,
//! the `GITHUB_*` context, a fake of GitHub's API serving that repository, reading back what
//! the action wrote (`GITHUB_OUTPUT` as the runner parses it) and what it pushed to the
//! token-auth registry standing in for ghcr.io.
//!
//! `tests/action.rs` runs the action on the host with these; `tests/action_container.rs`
//! runs it in the Action's image under a real container engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use super::auth_registry::AuthRegistry;
use super::fake_github::{FakeGitHub, FakeRef, FakeRepo};
use super::skopeo;

/// The workflow's actor, also the registry user.
pub const ACTOR: &str = "octocat";
/// The workflow's token (`${{ github.token }}`), the registry password.
pub const TOKEN: &str = "ghs_simulatedRunnerToken0123456789";
/// The commit the run builds.
pub const SHA: &str = "9f3c2a1b7e4d5c6b8a90f1e2d3c4b5a697887766";
/// The commit of the older release `v1.1.0`.
pub const OLD_SHA: &str = "1111111111111111111111111111111111111111";
/// The commit time of [`SHA`], as the API reports it.
pub const COMMIT_DATE: &str = "2026-11-30T08:15:42Z";
/// `github.repository`, mixed case as GitHub keeps it.
pub const REPOSITORY: &str = "Acme-Corp/Web-App";
/// The image repository the action derives from [`REPOSITORY`].
pub const IMAGE_REPOSITORY: &str = "acme-corp/web-app";

/// The event payloads under `tests/data/events`.
pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/events")
}

/// A fake GitHub API serving [`REPOSITORY`]: default branch `main`, the tags `v1.1.0` (at
/// [`OLD_SHA`]) and `v1.2.3` (at [`SHA`]), and both commits' times.
pub fn start_fake_github() -> FakeGitHub {
    let mut commits = BTreeMap::new();
    commits.insert(SHA.to_string(), COMMIT_DATE.to_string());
    commits.insert(OLD_SHA.to_string(), "2025-01-02T03:04:05Z".to_string());
    FakeGitHub::start(FakeRepo {
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
    })
}

/// The inputs action.yml declares with their defaults, `${{ github.* }}` evaluated the way
/// the runner would for this simulated run.
pub fn action_defaults() -> Vec<(String, String)> {
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

/// The `INPUT_*` variables of a step: every declared input with its default, then the step's
/// `with:` values over them (names upper-cased, hyphens kept, as the runner does).
pub fn input_env(with: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (name, value) in action_defaults() {
        env.insert(format!("INPUT_{}", name.to_ascii_uppercase()), value);
    }
    for (name, value) in with {
        env.insert(
            format!("INPUT_{}", name.to_ascii_uppercase()),
            value.to_string(),
        );
    }
    env
}

/// The `GITHUB_*` variables every run has, then the event's `git` ones (ref, event name).
/// Paths (workspace, event, output, summary) and the API URL are the caller's.
pub fn github_env(git: &[(&str, &str)]) -> BTreeMap<String, String> {
    let fixed = [
        ("GITHUB_SHA", SHA),
        ("GITHUB_REPOSITORY", REPOSITORY),
        ("GITHUB_REPOSITORY_OWNER", "Acme-Corp"),
        ("GITHUB_ACTOR", ACTOR),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_RUN_ID", "4242"),
        ("GITHUB_ACTIONS", "true"),
    ];
    fixed
        .iter()
        .chain(git)
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The `git` variables of a push to the default branch `main`.
pub fn push_main_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_REF_TYPE", "branch"),
    ]
}

/// What one run of the action left: its status, log, `GITHUB_OUTPUT` and summary.
pub struct ActionRun {
    /// Whether the action exited successfully.
    pub success: bool,
    /// Standard output then standard error.
    pub log: String,
    /// The text appended to `GITHUB_OUTPUT`.
    pub outputs: String,
    /// The text appended to `GITHUB_STEP_SUMMARY`.
    pub summary: String,
}

impl ActionRun {
    /// Panics unless the run succeeded with [`TOKEN`] masked before anything else and
    /// nowhere in the clear.
    pub fn assert_success(&self) {
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
    pub fn outputs(&self) -> BTreeMap<String, String> {
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

/// The lines of `text`, sorted.
pub fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// The tags of [`IMAGE_REPOSITORY`] in the ghcr.io stand-in, sorted (none when the
/// repository does not exist yet).
pub fn registry_tags(ghcr: &AuthRegistry) -> Vec<String> {
    let mut skopeo = skopeo();
    let out = skopeo
        .args(["list-tags", "--tls-verify=false", "--creds"])
        .arg(format!("{ACTOR}:{TOKEN}"))
        .arg(format!("docker://{}/{IMAGE_REPOSITORY}", ghcr.addr()))
        .output()
        .expect("skopeo list-tags");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("NAME_UNKNOWN") || stderr.contains("unknown") || stderr.contains("404"),
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

/// The config of [`IMAGE_REPOSITORY`]`:tag` in the ghcr.io stand-in.
pub fn registry_config(ghcr: &AuthRegistry, tag: &str) -> serde_json::Value {
    let mut skopeo = skopeo();
    let out = skopeo
        .args(["inspect", "--config", "--tls-verify=false", "--creds"])
        .arg(format!("{ACTOR}:{TOKEN}"))
        .arg(format!("docker://{}/{IMAGE_REPOSITORY}:{tag}", ghcr.addr()))
        .output()
        .expect("skopeo inspect");
    assert!(
        out.status.success(),
        "inspect {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("config JSON")
}
