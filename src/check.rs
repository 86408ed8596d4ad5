//! The `check` command: read a Dockerfile, run the frontend, the linter and the plan,
//! and render every finding as `FILE:LINE:COL: severity: message`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::frontend::{self, Diagnostic, Severity, lint};
use crate::plan::{self, PlanOptions};
use crate::platform::Platform;

/// What `check` was asked to look at.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile; `Dockerfile` in the context when absent.
    pub file: Option<PathBuf>,
    /// `KEY=VALUE` or `KEY` (the value then comes from the environment).
    pub build_args: Vec<String>,
    /// The target stage.
    pub target: Option<String>,
    /// The target platform.
    pub platform: Option<String>,
}

/// The outcome of a check.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every finding, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// The stages the target needs, by display name, in build order (empty on error).
    pub stages: Vec<String>,
    /// The Dockerfile's path as shown to the user (`Dockerfile` for text checks).
    pub file: String,
}

impl Report {
    /// One line for a person: the verdict, the counts and the stages to build.
    pub fn summary(&self) -> String {
        let errors = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let warnings = self.diagnostics.len() - errors;
        let verdict = if errors > 0 { "failed" } else { "ok" };
        let stages = match self.stages.as_slice() {
            [] => String::new(),
            stages => format!("; builds {}", stages.join(" → ")),
        };
        format!(
            "{} check {verdict}: {errors} errors, {warnings} warnings{stages}",
            self.file
        )
    }

    /// True when any finding is an error.
    pub fn failed(&self) -> bool {
        frontend::diagnostic::has_errors(&self.diagnostics)
    }
}

/// Parses `--build-arg` values: `KEY=VALUE`, or `KEY` taken from the environment and
/// skipped when the environment has no such variable, as `docker build` does.
pub fn parse_build_args(args: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for arg in args {
        match arg.split_once('=') {
            Some(("", _)) => anyhow::bail!("invalid build argument `{arg}`: the name is empty"),
            Some((key, value)) => {
                map.insert(key.to_string(), value.to_string());
            }
            None => {
                if let Ok(value) = std::env::var(arg) {
                    map.insert(arg.clone(), value);
                }
            }
        }
    }
    Ok(map)
}

/// Checks the Dockerfile and writes one line per finding to `out`.
pub fn run(options: &CheckOptions, out: &mut dyn Write) -> anyhow::Result<Report> {
    // Empty values mean "not given": the Action passes its unset inputs that way.
    let path = match &options.file {
        Some(file) if !file.as_os_str().is_empty() => file.clone(),
        _ => options.context.join("Dockerfile"),
    };
    let bytes = std::fs::read(&path)
        .with_context(|| format!("failed to read the Dockerfile `{}`", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut plan_options = PlanOptions {
        build_args: parse_build_args(&options.build_args)?,
        target: options.target.clone().filter(|t| !t.is_empty()),
        ..PlanOptions::default()
    };
    if let Some(platform) = &options.platform {
        plan_options.target_platform = Platform::parse(platform)?;
    }
    let mut report = check_text(&text, &plan_options);
    report.file = path.display().to_string();
    for diagnostic in &report.diagnostics {
        writeln!(out, "{}", diagnostic.render(&report.file))?;
    }
    Ok(report)
}

/// Checks Dockerfile text: parse, lint, plan, then the `check` directive's settings.
pub fn check_text(text: &str, options: &PlanOptions) -> Report {
    let (dockerfile, mut diagnostics) = frontend::parse(text);
    let mut stages = Vec::new();
    if !frontend::diagnostic::has_errors(&diagnostics) {
        let (plan, plan_diagnostics) = plan::plan(&dockerfile, options);
        diagnostics.extend(plan_diagnostics);
        if let Some(plan) = plan {
            diagnostics.extend(lint::lint(&dockerfile, &plan));
            stages = plan
                .order
                .iter()
                .map(|&i| plan.stages[i].display_name())
                .collect();
        }
    }
    let settings = lint::CheckSettings::from_directive(dockerfile.directive("check"));
    diagnostics.retain(|d| !settings.skips(d));
    if settings.error {
        for diagnostic in &mut diagnostics {
            diagnostic.severity = Severity::Error;
        }
    }
    diagnostics.sort_by_key(|d| (d.position.line, d.position.column, d.severity));
    diagnostics.dedup();
    Report {
        diagnostics,
        stages,
        file: "Dockerfile".to_string(),
    }
}
