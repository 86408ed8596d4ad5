//! The Action's packaging: `action.yml` and the workflows against GitHub's schemas and
//! actionlint, the inputs and outputs `action.yml` declares against the ones the code
//! reads and writes, the reusable workflow against the action, and the README's newcomer
//! workflow.
//!
//! The linters come from PyPI into `target/lint-tools` (`scripts/install-test-deps`);
//! actionlint gets Debian's shellcheck for the `run:` scripts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use rust_image_action::action::inputs::{INPUT_NAMES, ImageName};
use rust_image_action::action::outputs::{BuildResult, render_outputs};
use yaml_rust2::{Yaml, YamlLoader};

/// The workflows issue 6 asks for; any other file in the folder is linted too.
const WORKFLOWS: [&str; 4] = ["ci.yml", "release.yml", "build-image.yml", "rebuild.yml"];

/// The image `action.yml` runs: the one release.yml pushes as `v1`.
const ACTION_IMAGE: &str = "docker://ghcr.io/org/rust-image-action:v1";

const SNIPPET_START: &str = "<!-- action-snippet:start -->";
const SNIPPET_END: &str = "<!-- action-snippet:end -->";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn load_yaml(path: &Path) -> Yaml {
    parse_yaml(&read(path), &path.display().to_string())
}

fn parse_yaml(text: &str, name: &str) -> Yaml {
    let mut documents =
        YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"));
    assert_eq!(documents.len(), 1, "{name} must hold one YAML document");
    documents.remove(0)
}

/// The keys of a mapping, in file order; empty when `node` is not a mapping.
fn keys(node: &Yaml) -> Vec<String> {
    node.as_hash()
        .map(|hash| {
            hash.keys()
                .map(|key| key.as_str().expect("a string key").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn as_text<'a>(node: &'a Yaml, what: &str) -> &'a str {
    node.as_str()
        .unwrap_or_else(|| panic!("{what} must be a string, got {node:?}"))
}

fn workflow_files() -> Vec<PathBuf> {
    let dir = root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .collect();
    files.sort();
    for name in WORKFLOWS {
        assert!(
            files.contains(&dir.join(name)),
            "missing .github/workflows/{name}"
        );
    }
    files
}

fn lint_tool(name: &str) -> PathBuf {
    let path = root().join("target/lint-tools/bin").join(name);
    assert!(
        path.is_file(),
        "`{}` is missing; hint: run ./scripts/install-test-deps (or with --lint-tools)",
        path.display()
    );
    path
}

fn shellcheck() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("shellcheck"))
        .find(|candidate| candidate.is_file())
        .expect("`shellcheck` is not installed; hint: run ./scripts/install-test-deps")
}

/// Runs a command in `dir`; returns whether it succeeded and its stdout and stderr.
fn run(command: &mut Command, dir: &Path) -> (bool, String) {
    let output = command
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// check-jsonschema with one of its vendored schemas (no network).
fn check_schema(schema: &str, files: &[PathBuf], dir: &Path) -> (bool, String) {
    let mut command = Command::new(lint_tool("check-jsonschema"));
    command.args(["--builtin-schema", schema]).args(files);
    run(&mut command, dir)
}

/// actionlint in the project at `dir` (it finds the project by its `.git`, which it needs
/// to check calls of local reusable workflows).
fn actionlint(files: &[PathBuf], dir: &Path) -> (bool, String) {
    let mut command = Command::new(lint_tool("actionlint"));
    command
        .arg("-no-color")
        .arg(format!("-shellcheck={}", shellcheck().display()))
        // No Python in any `run:`; disabled so a pyflakes on PATH cannot change the result.
        .arg("-pyflakes=")
        .args(files);
    run(&mut command, dir)
}

fn action() -> Yaml {
    load_yaml(&root().join("action.yml"))
}

fn workflow(name: &str) -> Yaml {
    load_yaml(&root().join(".github/workflows").join(name))
}

/// The names on each side that the other lacks, as a readable message, or None.
fn difference(left: (&str, &BTreeSet<String>), right: (&str, &BTreeSet<String>)) -> Option<String> {
    let only_left: Vec<&String> = left.1.difference(right.1).collect();
    let only_right: Vec<&String> = right.1.difference(left.1).collect();
    (!only_left.is_empty() || !only_right.is_empty()).then(|| {
        format!(
            "only in {}: {only_left:?}; only in {}: {only_right:?}",
            left.0, right.0
        )
    })
}

fn set(names: impl IntoIterator<Item = impl Into<String>>) -> BTreeSet<String> {
    names.into_iter().map(Into::into).collect()
}

/// The output names `render_outputs` writes for a sample build, read the way the runner
/// reads `GITHUB_OUTPUT` (`name=value`, or `name<<DELIMITER` up to the delimiter line).
fn written_outputs() -> BTreeSet<String> {
    let image = ImageName {
        registry: "ghcr.io".into(),
        repository: "acme/app".into(),
    };
    let tags = [
        "0123456789abcdef0123456789abcdef01234567".to_string(),
        "main".to_string(),
    ];
    let digest = format!("sha256:{}", "1".repeat(64));
    let config = format!("sha256:{}", "2".repeat(64));
    let text = render_outputs(&BuildResult {
        image: &image,
        digest: &digest,
        config_digest: &config,
        tags: &tags,
        version: Some("main"),
        pushed: true,
    });
    let mut names = BTreeSet::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let equals = line.find('=');
        let heredoc = line.find("<<");
        match (equals, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                names.insert(line[..e].to_string());
            }
            (_, Some(h)) => {
                names.insert(line[..h].to_string());
                let delimiter = &line[h + 2..];
                assert!(
                    lines.by_ref().any(|line| line == delimiter),
                    "output `{}` never ends: {text}",
                    &line[..h]
                );
            }
            _ => panic!("unparsable output line {line:?} in {text}"),
        }
    }
    names
}

/// The fenced yaml block between the README's snippet markers.
fn readme_snippet() -> String {
    let readme = read(&root().join("README.md"));
    let start = readme
        .find(SNIPPET_START)
        .expect("README.md has no `<!-- action-snippet:start -->`");
    let end = readme
        .find(SNIPPET_END)
        .expect("README.md has no `<!-- action-snippet:end -->`");
    assert!(start < end, "the snippet markers are out of order");
    assert_eq!(
        readme.matches(SNIPPET_START).count(),
        1,
        "one snippet start marker"
    );
    let between = readme[start + SNIPPET_START.len()..end].trim();
    let body = between
        .strip_prefix("```yaml\n")
        .and_then(|rest| rest.strip_suffix("```"))
        .unwrap_or_else(|| panic!("the snippet must be one ```yaml block, got:\n{between}"));
    body.to_string()
}

/// A scratch project (with a `.git` folder, which is how actionlint finds a project).
fn scratch_project(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("action-lint-{name}-"))
        .tempdir()
        .expect("a temporary directory");
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    dir
}

#[test]
fn action_yml_is_valid_against_the_github_actions_schema() {
    let (ok, output) = check_schema(
        "vendor.github-actions",
        &[root().join("action.yml")],
        root(),
    );
    assert!(ok, "action.yml breaks the GitHub Actions schema:\n{output}");
}

#[test]
fn workflows_are_valid_against_the_github_workflows_schema() {
    let (ok, output) = check_schema("vendor.github-workflows", &workflow_files(), root());
    assert!(
        ok,
        "a workflow breaks the GitHub workflows schema:\n{output}"
    );
}

#[test]
fn workflows_pass_actionlint() {
    let (ok, output) = actionlint(&workflow_files(), root());
    assert!(
        ok && output.trim().is_empty(),
        "actionlint reports:\n{output}"
    );
}

// Proves the two checks above can fail: each linter, run the same way, rejects a broken
// copy of our own files.
#[test]
fn the_linters_reject_broken_files() {
    let project = scratch_project("broken");
    let dir = project.path();

    let action = read(&root().join("action.yml"));
    assert!(
        action.contains("color: orange"),
        "the broken copy needs `color: orange`"
    );
    let action = action.replace("color: orange", "color: pink");
    std::fs::write(dir.join("action.yml"), action).unwrap();
    let (ok, output) = check_schema("vendor.github-actions", &[dir.join("action.yml")], dir);
    assert!(!ok && output.contains("pink"), "schema passed: {output}");

    let workflows = dir.join(".github/workflows");
    std::fs::copy(
        root().join(".github/workflows/build-image.yml"),
        workflows.join("build-image.yml"),
    )
    .unwrap();
    let caller =
        read(&root().join(".github/workflows/rebuild.yml")) + "    with:\n      no-such-input: x\n";
    std::fs::write(workflows.join("caller.yml"), caller).unwrap();
    let (ok, output) = actionlint(&[workflows.join("caller.yml")], dir);
    assert!(
        !ok && output.contains("\"no-such-input\" is not defined"),
        "actionlint passed: {output}"
    );

    let script = concat!(
        "on: push\n",
        "jobs:\n",
        "  a:\n",
        "    runs-on: ubuntu-latest\n",
        "    steps:\n",
        "      - run: echo $UNQUOTED\n",
    );
    std::fs::write(workflows.join("script.yml"), script).unwrap();
    let (ok, output) = actionlint(&[workflows.join("script.yml")], dir);
    assert!(
        !ok && output.contains("SC2086"),
        "shellcheck not run: {output}"
    );
}

#[test]
fn action_inputs_are_exactly_the_inputs_the_code_reads() {
    let declared = set(keys(&action()["inputs"]));
    let read_by_code = set(INPUT_NAMES.iter().copied());
    if let Some(problem) = difference(("action.yml", &declared), ("INPUT_NAMES", &read_by_code)) {
        panic!("action.yml and the code disagree on inputs: {problem}");
    }
}

#[test]
fn action_inputs_have_descriptions_and_the_documented_defaults() {
    let action = action();
    let inputs = &action["inputs"];
    for name in keys(inputs) {
        let input = &inputs[name.as_str()];
        assert!(
            input["description"]
                .as_str()
                .is_some_and(|text| text.trim().len() > 10),
            "input `{name}` needs a description"
        );
        // Every input is optional: the seed workflow gives none.
        assert_eq!(
            input["required"].as_bool(),
            Some(false),
            "input `{name}` must say `required: false`"
        );
    }
    let defaults = [
        ("context", ""),
        ("registry", "ghcr.io"),
        ("username", "${{ github.actor }}"),
        ("password", "${{ github.token }}"),
        ("github-token", "${{ github.token }}"),
        ("push", "auto"),
        ("latest", "auto"),
        ("no-cache", "false"),
    ];
    for name in INPUT_NAMES {
        let expected = defaults
            .iter()
            .find(|(input, _)| input == name)
            .map_or("", |(_, value)| value);
        let default = &inputs[*name]["default"];
        assert_eq!(
            default.as_str(),
            Some(expected),
            "default of input `{name}` (a string, quoted where YAML would read another type)"
        );
    }
}

#[test]
fn action_outputs_are_exactly_the_outputs_the_code_writes() {
    let action = action();
    let declared = set(keys(&action["outputs"]));
    let written = written_outputs();
    if let Some(problem) = difference(("action.yml", &declared), ("render_outputs", &written)) {
        panic!("action.yml and the code disagree on outputs: {problem}");
    }
    for name in &declared {
        assert!(
            action["outputs"][name.as_str()]["description"]
                .as_str()
                .is_some_and(|text| !text.trim().is_empty()),
            "output `{name}` needs a description"
        );
    }
}

#[test]
fn action_runs_the_prebuilt_image_in_action_mode() {
    let action = action();
    let runs = &action["runs"];
    assert_eq!(runs["using"].as_str(), Some("docker"));
    assert_eq!(runs["image"].as_str(), Some(ACTION_IMAGE));
    assert_eq!(
        runs["args"],
        Yaml::Array(vec![Yaml::String("action".into())]),
        "the image's entrypoint is the binary; `action` selects its action mode"
    );
    assert!(action["branding"]["icon"].as_str().is_some());
}

// The reusable workflow takes every input of the action under the same name, except the
// ones holding secrets, which come in as secrets.
#[test]
fn the_reusable_workflow_mirrors_the_action() {
    let action = action();
    let workflow = workflow("build-image.yml");
    let call = &workflow["on"]["workflow_call"];
    let as_secrets = [
        ("password", "registry-password"),
        ("secrets", "build-secrets"),
    ];
    let from_the_run = ["github-token"];

    let action_inputs = set(keys(&action["inputs"]));
    let mirrored: BTreeSet<String> = action_inputs
        .iter()
        .filter(|name| {
            !as_secrets.iter().any(|(input, _)| input == name)
                && !from_the_run.contains(&name.as_str())
        })
        .cloned()
        .collect();
    let inputs = set(keys(&call["inputs"]));
    if let Some(problem) = difference(("action.yml", &mirrored), ("build-image.yml", &inputs)) {
        panic!("build-image.yml does not mirror the action's inputs: {problem}");
    }
    for name in &inputs {
        let kind = as_text(&call["inputs"][name.as_str()]["type"], "an input's type");
        let expected = if name == "no-cache" {
            "boolean"
        } else {
            "string"
        };
        assert_eq!(kind, expected, "type of build-image.yml input `{name}`");
    }
    let secrets = set(keys(&call["secrets"]));
    assert_eq!(secrets, set(as_secrets.map(|(_, secret)| secret)));
    for secret in &secrets {
        assert_eq!(
            call["secrets"][secret.as_str()]["required"].as_bool(),
            Some(false),
            "secret `{secret}` must be optional"
        );
    }

    // The step passes every input of the action, each from its own source.
    let steps = workflow["jobs"]["build"]["steps"]
        .as_vec()
        .expect("build-image.yml has a `build` job with steps");
    let step = steps
        .iter()
        .find(|step| step["uses"].as_str() == Some("org/rust-image-action@v1"))
        .expect("a step `uses: org/rust-image-action@v1`");
    let with = &step["with"];
    if let Some(problem) = difference(("action.yml", &action_inputs), ("with:", &set(keys(with)))) {
        panic!("build-image.yml's step does not pass every input: {problem}");
    }
    for name in &mirrored {
        let value = as_text(&with[name.as_str()], "a `with:` value");
        assert!(
            value.contains(&format!("inputs.{name}")),
            "`with: {name}` must come from `inputs.{name}`, got `{value}`"
        );
    }
    for (input, secret) in as_secrets {
        let value = as_text(&with[input], "a `with:` value");
        assert!(
            value.contains(&format!("secrets.{secret}")),
            "`with: {input}` must come from `secrets.{secret}`, got `{value}`"
        );
    }
    assert!(as_text(&with["password"], "password").contains("github.token"));

    // And hands back every output of the action.
    let action_outputs = set(keys(&action["outputs"]));
    let outputs = set(keys(&call["outputs"]));
    if let Some(problem) = difference(
        ("action.yml", &action_outputs),
        ("build-image.yml", &outputs),
    ) {
        panic!("build-image.yml does not hand back the action's outputs: {problem}");
    }
    let step_id = as_text(&step["id"], "the step's id");
    for name in &outputs {
        assert_eq!(
            as_text(
                &call["outputs"][name.as_str()]["value"],
                "an output's value"
            ),
            format!("${{{{ jobs.build.outputs.{name} }}}}")
        );
        assert_eq!(
            as_text(
                &workflow["jobs"]["build"]["outputs"][name.as_str()],
                "a job output"
            ),
            format!("${{{{ steps.{step_id}.outputs.{name} }}}}")
        );
    }
}

#[test]
fn rebuild_dispatches_a_ref_through_the_reusable_workflow() {
    let workflow = workflow("rebuild.yml");
    let dispatch = &workflow["on"]["workflow_dispatch"];
    // The action reads `inputs.ref` of the workflow_dispatch payload by that name.
    assert_eq!(keys(&dispatch["inputs"]), ["ref"]);
    assert_eq!(dispatch["inputs"]["ref"]["required"].as_bool(), Some(true));
    let jobs = &workflow["jobs"];
    let uses: Vec<&str> = keys(jobs)
        .iter()
        .filter_map(|job| jobs[job.as_str()]["uses"].as_str())
        .collect();
    assert_eq!(uses, ["./.github/workflows/build-image.yml"]);
    assert_eq!(workflow["permissions"]["packages"].as_str(), Some("write"));
}

#[test]
fn release_pushes_the_image_action_yml_runs() {
    let text = read(&root().join(".github/workflows/release.yml"));
    let workflow = parse_yaml(&text, "release.yml");
    assert_eq!(workflow["permissions"]["packages"].as_str(), Some("write"));
    assert_eq!(workflow["permissions"]["contents"].as_str(), Some("read"));
    assert_eq!(
        workflow["on"]["push"]["tags"],
        Yaml::Array(vec![Yaml::String("v*".into())])
    );
    for needle in [
        "cargo build --release",
        "rust-image-action build . ",
        "--push --username \"$ACTOR\" --password-env GITHUB_TOKEN",
        "ghcr.io/${REPOSITORY,,}",
        "$image:v$major",
    ] {
        assert!(text.contains(needle), "release.yml lacks `{needle}`");
    }
}

#[test]
fn the_readme_snippet_is_a_complete_workflow() {
    let snippet = readme_snippet();
    let workflow = parse_yaml(&snippet, "the README snippet");
    let push = &workflow["on"]["push"];
    assert!(
        push["branches"]
            .as_vec()
            .is_some_and(|branches| branches.contains(&Yaml::String("main".into()))),
        "the snippet runs on pushes to main"
    );
    assert!(push["tags"].as_vec().is_some(), "the snippet runs on tags");
    assert_eq!(workflow["permissions"]["contents"].as_str(), Some("read"));
    assert_eq!(workflow["permissions"]["packages"].as_str(), Some("write"));

    let jobs = keys(&workflow["jobs"]);
    assert_eq!(jobs.len(), 1, "one job");
    let steps = workflow["jobs"][jobs[0].as_str()]["steps"]
        .as_vec()
        .expect("the job has steps");
    let uses: Vec<&str> = steps
        .iter()
        .filter_map(|step| step["uses"].as_str())
        .collect();
    assert_eq!(uses.len(), 2, "checkout, then the action: {uses:?}");
    assert!(uses[0].starts_with("actions/checkout@"), "{uses:?}");
    assert_eq!(uses[1], "org/rust-image-action@v1");
    assert!(
        steps.iter().all(|step| step["with"].is_badvalue()),
        "the newcomer snippet configures nothing"
    );

    let guide = read(&root().join("docs/action.md"));
    assert!(
        guide.contains(&format!("```yaml\n{snippet}```")),
        "docs/action.md's quick start must show the README's workflow"
    );

    let project = scratch_project("snippet");
    let file = project.path().join(".github/workflows/image.yml");
    std::fs::write(&file, &snippet).unwrap();
    let files = [file];
    let (ok, output) = check_schema("vendor.github-workflows", &files, project.path());
    assert!(
        ok,
        "the README snippet breaks the workflows schema:\n{output}"
    );
    let (ok, output) = actionlint(&files, project.path());
    assert!(
        ok && output.trim().is_empty(),
        "actionlint on the README snippet:\n{output}"
    );
}

// release.yml builds the root Dockerfile with the project itself, so our own frontend must
// accept it, and the final stage must lay out what action.yml and the container backend
// expect.
#[test]
fn the_action_image_dockerfile_checks_clean_and_keeps_everything_under_ria() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rust-image-action"));
    command.args(["check", "-f", "Dockerfile", "."]);
    let (ok, output) = run(&mut command, root());
    assert!(ok, "rust-image-action check Dockerfile:\n{output}");
    assert!(
        !output.contains(": error: "),
        "check reports an error:\n{output}"
    );

    let dockerfile = read(&root().join("Dockerfile"));
    let final_stage = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .expect("a multi-stage Dockerfile");
    assert!(
        final_stage.starts_with("scratch\n"),
        "the final stage is FROM scratch"
    );
    let joined = final_stage.replace("\\\n", " ");
    for needle in [
        "/ria/certs/ca-certificates.crt",
        "/ria/bin/rust-image-action",
        "RIA_CONTAINER=1",
        "SSL_CERT_FILE=/ria/certs/ca-certificates.crt",
        "PATH=/ria/bin",
        "ENTRYPOINT [\"/ria/bin/rust-image-action\"]",
    ] {
        assert!(joined.contains(needle), "the final stage lacks `{needle}`");
    }
    assert!(
        dockerfile.contains("--target x86_64-unknown-linux-musl"),
        "the binary is built static, for musl"
    );
    for line in final_stage.lines().filter(|line| line.starts_with("COPY ")) {
        let destination = line.rsplit(' ').next().unwrap_or_default();
        assert!(
            destination.starts_with("/ria/"),
            "`{line}` puts a file outside /ria, where the container backend replaces it"
        );
    }
}
