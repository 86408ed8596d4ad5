//! `rust-image-action action`: the GitHub Action. Reads the runner's `INPUT_*` and
//! `GITHUB_*` variables and the event payload, fills what the payload lacks from the API,
//! computes tags and labels, builds, pushes unless told not to, and writes the outputs and
//! the job summary.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::commands::{self, FileAnnotation, Masker, Severity};
use super::context::{GitHubContext, RefKind, UtcTime};
use super::github::GitHubApi;
use super::inputs::{ActionInputs, ImageName, unknown_inputs};
use super::labels::{LabelRequest, image_metadata};
use super::outputs::{BuildResult, append_to, render_outputs};
use super::summary::{
    BuildSummary, LayerState, LayerSummary, PlatformSummary, Timing, render_summary,
};
use super::tags::{TagRequest, compute_tags};
use crate::build::report::{Event, PlainReporter, Reporter};
use crate::build::{self, BuildError, BuildOptions, LayerOrigin, SecretSource};
use crate::platform::Platform;
use crate::registry::ExplicitCredentials;

/// Why the action failed; already reported to the log when returned.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ActionError(pub String);

/// Runs the action with the process environment, writing the log to standard output.
pub fn run_from_process() -> Result<(), ActionError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    run(&env, std::io::stdout(), now())
}

fn now() -> UtcTime {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    UtcTime::from_unix(seconds)
}

/// Runs the action against `env` (the runner's variables), writing the log to `log`;
/// `clock` is the time `{{date}}` tags use.
pub fn run<W: Write + Send>(
    env: &BTreeMap<String, String>,
    log: W,
    clock: UtcTime,
) -> Result<(), ActionError> {
    let started = Instant::now();
    let log = Mutex::new(Masker::new(log));
    let say = |line: &str| {
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        let line = log.redact(line);
        let _ = writeln!(log.writer(), "{line}");
    };
    let fail = |message: String| {
        say(&FileAnnotation::new(Severity::Error, message.clone()).to_command());
        ActionError(message)
    };
    let inputs = ActionInputs::from_env(env).map_err(|e| fail(e.to_string()))?;
    {
        let mut masker = log.lock().unwrap_or_else(|e| e.into_inner());
        masker
            .register_inputs(&inputs)
            .map_err(|e| ActionError(format!("write the log: {e}")))?;
    }
    for name in unknown_inputs(env) {
        say(&FileAnnotation::new(
            Severity::Warning,
            format!("unknown input `{name}`: this action does not read it"),
        )
        .to_command());
    }
    let event = match env.get("GITHUB_EVENT_PATH").filter(|p| !p.is_empty()) {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| fail(format!("read the event payload `{path}`: {e}")))?,
        ),
        None => None,
    };
    let mut context =
        GitHubContext::from_env(env, event.as_deref()).map_err(|e| fail(e.to_string()))?;
    let token = inputs.github_token.clone().or_else(|| {
        env.get("GITHUB_TOKEN")
            .map(|t| crate::registry::Secret::new(t.clone()))
    });
    let warn = |message: String| say(&FileAnnotation::new(Severity::Warning, message).to_command());
    let needs_repo = context.default_branch.is_none()
        || context.description.is_none()
        || context.license.is_none();
    // A git tag needs the highest release, to know whether it may move `latest`.
    let needs_api = needs_repo
        || context.dispatch_ref.is_some()
        || context.commit_time.is_none()
        || matches!(context.ref_kind(), RefKind::Tag(_));
    let client = if needs_api {
        Some(
            GitHubApi::new(&context.api_url, &context.repository, token.as_ref())
                .map_err(|e| fail(e.to_string()))?,
        )
    } else {
        None
    };
    if let Some(client) = &client {
        if needs_repo {
            match client.repository() {
                Ok(info) => {
                    context.default_branch = context.default_branch.take().or(info.default_branch);
                    context.description = context.description.take().or(info.description);
                    context.license = context.license.take().or(info.license);
                    context.html_url = context.html_url.take().or(info.html_url);
                }
                Err(e) => warn(e.to_string()),
            }
        }
        if let Some(reference) = context.dispatch_ref.clone().filter(|r| !r.is_empty()) {
            let resolved = client.resolve_ref(&reference).map_err(|e| {
                fail(format!(
                    "{e}\nhint: the `ref` input must name a branch, a tag or a commit"
                ))
            })?;
            say(&format!(
                "rebuilding `{reference}`: {} at {}",
                resolved.full_ref, resolved.sha
            ));
            context.retarget(&resolved.full_ref, &resolved.sha);
        }
        if context.commit_time.is_none() {
            match client.commit(&context.sha) {
                Ok((_, Some(date))) => context.commit_time = UtcTime::parse_rfc3339(&date).ok(),
                Ok((_, None)) => {}
                Err(e) => warn(e.to_string()),
            }
        }
    }
    let highest = match (context.ref_kind(), &client) {
        (RefKind::Tag(_), Some(client)) => client.highest_release().unwrap_or_else(|e| {
            warn(e.to_string());
            None
        }),
        _ => None,
    };
    let tags = compute_tags(&TagRequest {
        context: &context,
        rules: &inputs.tags,
        latest: inputs.latest,
        highest_release: highest.as_ref(),
        now: clock,
    })
    .map_err(|e| fail(e.to_string()))?;
    for note in &tags.notes {
        say(note);
    }
    let created = inputs.source_date_epoch.or(context.commit_time);
    let metadata = image_metadata(&LabelRequest {
        context: &context,
        version: tags.version.as_deref(),
        created,
        labels: &inputs.labels,
        annotations: &inputs.annotations,
    });
    let image = inputs
        .image_name(&context.repository)
        .map_err(|e| fail(e.to_string()))?;
    let push = inputs.push.resolve(&context);
    let not_pushed_reason = if push {
        None
    } else if context.is_fork_pr() {
        Some("a pull request from a fork: its token cannot write packages".to_string())
    } else {
        Some("`push: false`".to_string())
    };
    if let Some(reason) = &not_pushed_reason {
        say(&format!("not pushing: {reason}"));
    }
    say(&format!("tags: {}", tags.tags.join(", ")));

    let workspace = PathBuf::from(
        env.get("GITHUB_WORKSPACE")
            .cloned()
            .unwrap_or_else(|| ".".into()),
    );
    let options = build_options(
        &inputs, &context, &workspace, &image, &tags.tags, &metadata, push, created,
    )
    .map_err(&fail)?;
    let reporter = GroupReporter {
        say: &say,
        open: Mutex::new(false),
        workspace: workspace.clone(),
    };
    let build_started = Instant::now();
    let result = build::build(&options, &reporter);
    reporter.close();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => {
            report_build_error(&error, &workspace, &say);
            return Err(ActionError(error.to_string()));
        }
    };
    let build_time = build_started.elapsed();
    let digest = outcome.manifest.digest.to_string();
    let config_digest = outcome.config_digest.to_string();
    let outputs = render_outputs(&BuildResult {
        image: &image,
        digest: &digest,
        config_digest: &config_digest,
        tags: &tags.tags,
        version: tags.version.as_deref(),
        pushed: push,
    });
    if let Some(path) = env.get("GITHUB_OUTPUT").filter(|p| !p.is_empty()) {
        append_to(Path::new(path), &outputs).map_err(|e| fail(format!("write `{path}`: {e}")))?;
    }
    let summary = BuildSummary {
        image: image.to_string(),
        tags: tags.tags.clone(),
        digest: digest.clone(),
        pushed: push,
        not_pushed_reason,
        platforms: vec![PlatformSummary {
            platform: outcome.platform.clone(),
            digest: digest.clone(),
            layers: outcome
                .layers
                .iter()
                .map(|layer| LayerSummary {
                    digest: layer.digest.to_string(),
                    size: layer.size,
                    state: match (layer.origin, push) {
                        (LayerOrigin::Base, _) => LayerState::Reused,
                        (LayerOrigin::Built, true) => LayerState::Uploaded,
                        (LayerOrigin::Built, false) => LayerState::Built,
                    },
                    created_by: String::new(),
                })
                .collect(),
        }],
        timings: vec![
            Timing {
                step: format!("build {}", outcome.platform),
                duration: build_time,
            },
            Timing {
                step: "total".to_string(),
                duration: started.elapsed().max(Duration::from_millis(1)),
            },
        ],
    };
    if let Some(path) = env.get("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let text = {
            let log = log.lock().unwrap_or_else(|e| e.into_inner());
            log.redact(&render_summary(&summary))
        };
        append_to(Path::new(path), &text).map_err(|e| fail(format!("write `{path}`: {e}")))?;
    }
    say(&format!("image: {image}@{digest}"));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn build_options(
    inputs: &ActionInputs,
    context: &GitHubContext,
    workspace: &Path,
    image: &ImageName,
    tags: &[String],
    metadata: &super::labels::ImageMetadata,
    push: bool,
    created: Option<UtcTime>,
) -> Result<BuildOptions, String> {
    let context_dir = match inputs.context.as_deref() {
        Some(dir) => workspace.join(dir),
        None => workspace.to_path_buf(),
    };
    let mut options = BuildOptions::new(context_dir);
    options.dockerfile = inputs.file.as_deref().map(|f| workspace.join(f));
    options.tags = tags.iter().map(|t| format!("{image}:{t}")).collect();
    options.build_args = inputs.build_args.iter().cloned().collect();
    options.labels = metadata.labels.clone();
    options.annotations = metadata.manifest_annotations.clone();
    options.target = inputs.target.clone();
    match inputs.platforms.as_slice() {
        [] => {}
        [one] => {
            options.platform = Some(
                Platform::parse(&one.to_string()).map_err(|e| format!("input `platforms`: {e}"))?,
            );
        }
        many => {
            // FIXME: one platform per run; fixed: build each and push an index with the
            // index annotations.
            return Err(format!(
                "input `platforms`: {} platforms were given; this version builds one per run \
                 (use a matrix of jobs, one platform each)",
                many.len()
            ));
        }
    }
    for secret in &inputs.secrets {
        options
            .secrets
            .insert(secret.id.clone(), SecretSource::Value(secret.value.clone()));
    }
    options.no_cache = inputs.no_cache;
    options.source_date_epoch = created.map(UtcTime::unix);
    options.push = push;
    if push {
        let username = inputs
            .username
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| context.actor.clone());
        if let Some(password) = inputs.password.clone() {
            options.credentials = Some(ExplicitCredentials { username, password });
        }
    }
    Ok(options)
}

/// Stages as collapsible groups; warnings as annotations on the Dockerfile.
struct GroupReporter<'a> {
    say: &'a (dyn Fn(&str) + Sync),
    open: Mutex<bool>,
    workspace: PathBuf,
}

impl GroupReporter<'_> {
    fn close(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if *open {
            (self.say)(&commands::end_group());
            *open = false;
        }
    }
}

impl Reporter for GroupReporter<'_> {
    fn report(&self, event: &Event) {
        match event {
            Event::StageStarted { .. } => {
                self.close();
                (self.say)(&commands::group(&PlainReporter::render(event)));
                *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
            }
            Event::Warning { message } => {
                (self.say)(&located_annotation(
                    Severity::Warning,
                    message,
                    &self.workspace,
                ));
            }
            other => (self.say)(&PlainReporter::render(other)),
        }
    }
}

/// `FILE:LINE:COL: severity: message` as an annotation on that file and line.
fn located_annotation(severity: Severity, text: &str, workspace: &Path) -> String {
    let mut parts = text.splitn(4, ':');
    let (file, line, column) = (parts.next(), parts.next(), parts.next());
    let rest = parts.next().unwrap_or_default();
    let (Some(file), Some(Ok(line)), Some(Ok(column))) = (
        file,
        line.map(|l| l.trim().parse::<u32>()),
        column.map(|c| c.trim().parse::<u32>()),
    ) else {
        return FileAnnotation::new(severity, text.to_string()).to_command();
    };
    let message = rest
        .trim()
        .trim_start_matches("error:")
        .trim_start_matches("warning:")
        .trim()
        .to_string();
    let mut annotation = FileAnnotation::new(severity, message);
    annotation.file = Some(relative(file, workspace));
    annotation.line = Some(line);
    annotation.column = Some(column);
    annotation.to_command()
}

fn relative(file: &str, workspace: &Path) -> String {
    Path::new(file)
        .strip_prefix(workspace)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| file.to_string())
}

fn report_build_error(error: &BuildError, workspace: &Path, say: &dyn Fn(&str)) {
    match error {
        BuildError::Dockerfile(lines) => {
            for line in lines {
                say(&located_annotation(Severity::Error, line, workspace));
            }
        }
        BuildError::Step {
            file,
            line,
            column,
            instruction,
            message,
        } => {
            let mut annotation = FileAnnotation::new(Severity::Error, message.clone());
            annotation.file = Some(relative(file, workspace));
            annotation.line = u32::try_from(*line).ok();
            annotation.column = u32::try_from(*column).ok();
            annotation.title = Some(format!("`{instruction}` failed"));
            say(&annotation.to_command());
        }
        other => say(&FileAnnotation::new(Severity::Error, crate::error_chain(other)).to_command()),
    }
}
