//! The job summary: Markdown for `GITHUB_STEP_SUMMARY` with the image, its tags and
//! digest, a layer table per platform and the step timings. It takes plain structs
//! that the action layer fills from the build's report.

use std::fmt::Write;
use std::time::Duration;

/// What happened to a layer in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    /// Taken from the base image or the cache, and already in the registry.
    Reused,
    /// Built in this run and not uploaded (not pushed, or the registry had it).
    Built,
    /// Uploaded to the registry in this run.
    Uploaded,
}

impl LayerState {
    fn word(self) -> &'static str {
        match self {
            LayerState::Reused => "reused",
            LayerState::Built => "built",
            LayerState::Uploaded => "uploaded",
        }
    }
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSummary {
    /// The layer's digest, `sha256:...`.
    pub digest: String,
    /// The compressed size in bytes.
    pub size: u64,
    /// What happened to it.
    pub state: LayerState,
    /// The instruction that made it, such as `RUN cargo build --release`.
    pub created_by: String,
}

/// The image of one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSummary {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The platform's manifest digest.
    pub digest: String,
    /// Its layers, bottom first.
    pub layers: Vec<LayerSummary>,
}

/// How long one step took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// The step, such as `build linux/amd64` or `push`.
    pub step: String,
    /// Its duration.
    pub duration: Duration,
}

/// Everything the summary shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSummary {
    /// The image name, such as `ghcr.io/acme/app`.
    pub image: String,
    /// The tags, without the image name.
    pub tags: Vec<String>,
    /// The pushed manifest or index digest.
    pub digest: String,
    /// Whether the image was pushed.
    pub pushed: bool,
    /// Why it was not pushed, when it was not, such as `pull request from a fork`.
    pub not_pushed_reason: Option<String>,
    /// One entry per platform.
    pub platforms: Vec<PlatformSummary>,
    /// The steps in order.
    pub timings: Vec<Timing>,
}

/// Renders the summary as GitHub-flavoured Markdown.
pub fn render_summary(summary: &BuildSummary) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail, so the fmt::Results below are ignored.
    let _ = writeln!(out, "### Image `{}`\n", summary.image);
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| Digest | `{}` |", summary.digest);
    let pushed = match (summary.pushed, &summary.not_pushed_reason) {
        (true, _) => "yes".to_string(),
        (false, Some(reason)) => format!("no: {}", escape(reason)),
        (false, None) => "no".to_string(),
    };
    let _ = writeln!(out, "| Pushed | {pushed} |");
    let tags: Vec<String> = summary.tags.iter().map(|tag| format!("`{tag}`")).collect();
    let tags = if tags.is_empty() {
        "none".to_string()
    } else {
        tags.join(" ")
    };
    let _ = writeln!(out, "| Tags | {tags} |");
    let platforms: Vec<&str> = summary
        .platforms
        .iter()
        .map(|p| p.platform.as_str())
        .collect();
    if !platforms.is_empty() {
        let _ = writeln!(out, "| Platforms | {} |", escape(&platforms.join(", ")));
    }
    for platform in &summary.platforms {
        render_layers(platform, &mut out);
    }
    if !summary.timings.is_empty() {
        let _ = writeln!(out, "\n#### Timings\n\n| Step | Time |\n|---|--:|");
        for timing in &summary.timings {
            let _ = writeln!(
                out,
                "| {} | {} |",
                escape(&timing.step),
                duration(timing.duration)
            );
        }
        let total: Duration = summary.timings.iter().map(|timing| timing.duration).sum();
        let _ = writeln!(out, "| **total** | **{}** |", duration(total));
    }
    out
}

fn render_layers(platform: &PlatformSummary, out: &mut String) {
    let _ = writeln!(
        out,
        "\n#### Layers of `{}` (`{}`)\n",
        escape(&platform.platform),
        short_digest(&platform.digest)
    );
    let _ = writeln!(
        out,
        "| # | Layer | Size | State | Created by |\n|--:|---|--:|---|---|"
    );
    let mut counts = [0usize; 3];
    for (index, layer) in platform.layers.iter().enumerate() {
        counts[layer.state as usize] += 1;
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} |",
            index + 1,
            short_digest(&layer.digest),
            size(layer.size),
            layer.state.word(),
            escape(&shorten(&layer.created_by, 80)),
        );
    }
    let total: u64 = platform.layers.iter().map(|layer| layer.size).sum();
    let states = [LayerState::Reused, LayerState::Built, LayerState::Uploaded];
    let tally: Vec<String> = states
        .iter()
        .zip(counts)
        .filter(|(_, count)| *count > 0)
        .map(|(state, count)| format!("{count} {}", state.word()))
        .collect();
    let _ = writeln!(
        out,
        "| | **total** | **{}** | {} | |",
        size(total),
        tally.join(", ")
    );
}

fn short_digest(digest: &str) -> &str {
    let hex_start = digest.find(':').map_or(0, |colon| colon + 1);
    digest.get(..hex_start + 12).unwrap_or(digest)
}

fn shorten(text: &str, limit: usize) -> String {
    let single_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if single_line.chars().count() <= limit {
        return single_line;
    }
    let kept: String = single_line.chars().take(limit - 1).collect();
    format!("{kept}…")
}

// Escapes what Markdown or the table would read as syntax; line breaks become spaces.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis} ms");
    }
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let whole = duration.as_secs();
    format!("{} min {:02} s", whole / 60, whole % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(hex: char, size: u64, state: LayerState, created_by: &str) -> LayerSummary {
        LayerSummary {
            digest: format!("sha256:{}", hex.to_string().repeat(64)),
            size,
            state,
            created_by: created_by.to_string(),
        }
    }

    #[test]
    fn full_summary() {
        let summary = BuildSummary {
            image: "ghcr.io/acme-corp/web-app".into(),
            tags: vec!["main".into(), "latest".into()],
            digest: format!("sha256:{}", "d".repeat(64)),
            pushed: true,
            not_pushed_reason: None,
            platforms: vec![PlatformSummary {
                platform: "linux/amd64".into(),
                digest: format!("sha256:{}", "e".repeat(64)),
                layers: vec![
                    layer(
                        'a',
                        3_145_728,
                        LayerState::Reused,
                        "FROM debian:bookworm-slim",
                    ),
                    layer('b', 512, LayerState::Built, "RUN echo a|b > /x\n && true"),
                    layer(
                        'c',
                        5_347_737,
                        LayerState::Uploaded,
                        "COPY --from=build /app /app",
                    ),
                ],
            }],
            timings: vec![
                Timing {
                    step: "resolve".into(),
                    duration: Duration::from_millis(420),
                },
                Timing {
                    step: "build linux/amd64".into(),
                    duration: Duration::from_secs(83),
                },
                Timing {
                    step: "push".into(),
                    duration: Duration::from_millis(2350),
                },
            ],
        };
        let expected = format!(
            "### Image `ghcr.io/acme-corp/web-app`\n\n\
             | | |\n|---|---|\n\
             | Digest | `sha256:{d}` |\n\
             | Pushed | yes |\n\
             | Tags | `main` `latest` |\n\
             | Platforms | linux/amd64 |\n\
             \n#### Layers of `linux/amd64` (`sha256:eeeeeeeeeeee`)\n\n\
             | # | Layer | Size | State | Created by |\n|--:|---|--:|---|---|\n\
             | 1 | `sha256:aaaaaaaaaaaa` | 3.0 MiB | reused | FROM debian:bookworm-slim |\n\
             | 2 | `sha256:bbbbbbbbbbbb` | 512 B | built | RUN echo a\\|b \\> /x && true |\n\
             | 3 | `sha256:cccccccccccc` | 5.1 MiB | uploaded | COPY --from=build /app /app |\n\
             | | **total** | **8.1 MiB** | 1 reused, 1 built, 1 uploaded | |\n\
             \n#### Timings\n\n| Step | Time |\n|---|--:|\n\
             | resolve | 420 ms |\n\
             | build linux/amd64 | 1 min 23 s |\n\
             | push | 2.4 s |\n\
             | **total** | **1 min 25 s** |\n",
            d = "d".repeat(64)
        );
        assert_eq!(render_summary(&summary), expected);
    }

    #[test]
    fn not_pushed_and_empty() {
        let summary = BuildSummary {
            image: "ghcr.io/acme/app".into(),
            tags: vec![],
            digest: "sha256:00".into(),
            pushed: false,
            not_pushed_reason: Some("pull request from a fork".into()),
            platforms: vec![],
            timings: vec![],
        };
        let text = render_summary(&summary);
        assert!(
            text.contains("| Pushed | no: pull request from a fork |"),
            "{text}"
        );
        assert!(text.contains("| Tags | none |"));
        assert!(!text.contains("Timings") && !text.contains("Layers"));
    }

    #[test]
    fn helpers() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(duration(Duration::from_millis(999)), "999 ms");
        assert_eq!(duration(Duration::from_millis(59_940)), "59.9 s");
        assert_eq!(duration(Duration::from_secs(3605)), "60 min 05 s");
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab"
        );
        assert_eq!(short_digest("short"), "short");
        assert_eq!(shorten("RUN   a\n b", 80), "RUN a b");
        assert_eq!(shorten(&"x".repeat(100), 10), format!("{}…", "x".repeat(9)));
        assert_eq!(escape("a_b*c`d"), "a\\_b\\*c\\`d");
    }
}
