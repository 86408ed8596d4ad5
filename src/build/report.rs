//! Build progress as events: the engine reports, a renderer decides how it looks.

use std::time::Duration;

/// Something a build wants the user to know.
#[derive(Clone, Debug)]
pub enum Event {
    /// A stage starts; `base` is what it starts from.
    StageStarted {
        /// The stage's display name.
        stage: String,
        /// `scratch`, a stage name or an image reference.
        base: String,
    },
    /// A base image was resolved (and pulled where needed).
    BaseResolved {
        /// The reference.
        reference: String,
        /// Its manifest digest.
        digest: String,
        /// Layers it has.
        layers: usize,
        /// Compressed size of its layers.
        size: u64,
    },
    /// One instruction finished.
    StepFinished {
        /// The stage's display name.
        stage: String,
        /// The instruction as written.
        instruction: String,
        /// The compressed size of the layer it added, if it added one.
        layer_size: Option<u64>,
        /// How long it took.
        elapsed: Duration,
    },
    /// A local output was written.
    OutputWritten {
        /// What kind (`oci-layout`, `docker-archive`).
        kind: &'static str,
        /// Where.
        path: String,
    },
    /// The image was pushed to a repository.
    Pushed {
        /// `registry/repository`.
        reference: String,
        /// The tags written.
        tags: Vec<String>,
        /// Blobs uploaded.
        uploaded: usize,
        /// Blobs mounted from another repository.
        mounted: usize,
        /// Blobs the registry already had.
        existing: usize,
        /// Blob bytes sent.
        bytes: u64,
    },
    /// A line a RUN step printed.
    RunOutput {
        /// The stage's display name.
        stage: String,
        /// The line, without its newline.
        line: String,
    },
    /// Where a RUN step's time went.
    RunMeasured {
        /// The stage's display name.
        stage: String,
        /// Unpacking layers not unpacked before.
        prepare: Duration,
        /// Running the command, sandbox set-up included.
        run: Duration,
        /// Finding what it changed.
        snapshot: Duration,
        /// Writing (and compressing) the layer.
        commit: Duration,
        /// Entries in the layer.
        entries: usize,
    },
    /// The RUN isolation was chosen: which backend and why.
    Isolation {
        /// One line, `isolation: namespace (...)`.
        message: String,
    },
    /// A warning the user should see (an unused build argument, ...).
    Warning {
        /// The text, `FILE:LINE:COL: warning: ...` where it has a location.
        message: String,
    },
}

/// Receives build events.
pub trait Reporter {
    /// Handles one event.
    fn report(&self, event: &Event);
}

/// Discards every event.
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: &Event) {}
}

/// Renders events as plain lines on standard error, one per stage and step.
pub struct PlainReporter;

/// Formats a byte count for people (`1.5 MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl PlainReporter {
    /// The line an event renders to, if any.
    pub fn render(event: &Event) -> String {
        match event {
            Event::StageStarted { stage, base } => format!("[{stage}] FROM {base}"),
            Event::BaseResolved {
                reference,
                digest,
                layers,
                size,
            } => format!(
                "  resolved {reference}@{digest}: {layers} layers, {}",
                human_size(*size)
            ),
            Event::StepFinished {
                stage,
                instruction,
                layer_size,
                elapsed,
            } => {
                let layer = match layer_size {
                    Some(size) => format!(", layer {}", human_size(*size)),
                    None => String::new(),
                };
                format!(
                    "[{stage}] {instruction} ({:.2}s{layer})",
                    elapsed.as_secs_f64()
                )
            }
            Event::OutputWritten { kind, path } => format!("wrote {kind} to {path}"),
            Event::Pushed {
                reference,
                tags,
                uploaded,
                mounted,
                existing,
                bytes,
            } => format!(
                "pushed {reference}:{{{}}}: {uploaded} blobs uploaded ({}), {mounted} mounted, \
                 {existing} already there",
                tags.join(","),
                human_size(*bytes)
            ),
            Event::RunOutput { stage, line } => format!("[{stage}] | {line}"),
            Event::Isolation { message } => message.clone(),
            Event::RunMeasured {
                stage,
                prepare,
                run,
                snapshot,
                commit,
                entries,
            } => format!(
                "[{stage}] unpack {:.3}s, run {:.3}s, snapshot {:.1} ms, layer {:.1} ms \
                 ({entries} entries)",
                prepare.as_secs_f64(),
                run.as_secs_f64(),
                snapshot.as_secs_f64() * 1000.0,
                commit.as_secs_f64() * 1000.0
            ),
            Event::Warning { message } => message.clone(),
        }
    }
}

impl Reporter for PlainReporter {
    fn report(&self, event: &Event) {
        #[allow(clippy::print_stderr, reason = "this renderer's job is the terminal")]
        {
            eprintln!("{}", PlainReporter::render(event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500), "1.5 kB");
        assert_eq!(human_size(10_000_000), "10.0 MB");
    }

    #[test]
    fn step_lines_name_the_stage_and_layer() {
        let event = Event::StepFinished {
            stage: "build".into(),
            instruction: "COPY . /src".into(),
            layer_size: Some(2_048),
            elapsed: Duration::from_millis(250),
        };
        assert_eq!(
            PlainReporter::render(&event),
            "[build] COPY . /src (0.25s, layer 2.0 kB)"
        );
    }
}
