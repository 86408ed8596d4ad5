//! The image config side of instructions: ENV, LABEL, EXPOSE, VOLUME, USER, CMD,
//! ENTRYPOINT, HEALTHCHECK, STOPSIGNAL, SHELL, ONBUILD and MAINTAINER, with the
//! history entries BuildKit writes for them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::frontend::instructions::{CommandLine, Healthcheck, Instruction};
use crate::oci::image::{EmptyObject, HealthConfig, History, ImageConfig};

/// The comment BuildKit puts on every history entry of a Dockerfile build; kept so
/// tools that recognise BuildKit images treat ours the same.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The default `PATH` of an image that has none (FROM scratch).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why an instruction's value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Appends a history entry.
pub fn add_history(config: &mut ImageConfig, created_by: String, empty_layer: bool, created: &str) {
    config.history.push(History {
        created: Some(created.to_string()),
        created_by: Some(created_by),
        author: None,
        comment: Some(HISTORY_COMMENT.to_string()),
        empty_layer: empty_layer.then_some(true),
    });
}

/// Sets `key` in a `KEY=value` list, replacing an existing entry in place.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

/// Go's `%q` of a string slice, as BuildKit writes CMD and ENTRYPOINT history.
fn quoted_list(args: &[String]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| crate::frontend::go_quote(a)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `%v` of a string slice.
fn plain_list(args: &[String]) -> String {
    format!("[{}]", args.join(" "))
}

/// Go's `time.Duration` formatting (`1m30s`, `500ms`, `0s`).
pub fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (value, unit) = match nanos {
            n if n < 1_000 => (n as f64, "ns"),
            n if n < 1_000_000 => (n as f64 / 1e3, "µs"),
            n => (n as f64 / 1e6, "ms"),
        };
        return format!("{}{unit}", trim_float(value));
    }
    let total = duration.as_secs_f64();
    let hours = duration.as_secs() / 3600;
    let minutes = (duration.as_secs() % 3600) / 60;
    let seconds = total - (hours * 3600 + minutes * 60) as f64;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_float(seconds)));
    out
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.9}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// The command a CMD, ENTRYPOINT or HEALTHCHECK runs: shell form goes through SHELL.
pub fn with_shell(config: &ImageConfig, command: &CommandLine) -> Vec<String> {
    if !command.prepend_shell {
        return command.args.clone();
    }
    let mut args = match &config.config.shell {
        Some(shell) if !shell.is_empty() => shell.clone(),
        _ => vec!["/bin/sh".to_string(), "-c".to_string()],
    };
    args.push(command.args.join(" "));
    args
}

/// Expands EXPOSE values into `port/proto` keys: ranges become every port, the
/// protocol defaults to tcp and is lowercased, a host part is dropped.
pub fn exposed_ports(values: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut ports = Vec::new();
    for raw in values {
        let container = raw.rsplit(':').next().unwrap_or(raw);
        let (range, proto) = match container.split_once('/') {
            Some((range, proto)) => (range, proto.to_ascii_lowercase()),
            None => (container, "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(ConfigError(format!(
                "invalid port `{raw}`: invalid proto `{proto}`"
            )));
        }
        let parse = |text: &str| {
            text.parse::<u16>().map_err(|_| {
                ConfigError(format!(
                    "invalid port `{raw}`: invalid containerPort `{range}`"
                ))
            })
        };
        let (start, end) = match range.split_once('-') {
            Some((start, end)) => (parse(start)?, parse(end)?),
            None => (parse(range)?, parse(range)?),
        };
        if end < start {
            return Err(ConfigError(format!("invalid port range `{range}`")));
        }
        ports.extend((start..=end).map(|port| format!("{port}/{proto}")));
    }
    Ok(ports)
}

/// True for a signal name or number `docker stop` understands.
pub fn is_valid_signal(signal: &str) -> bool {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR",
    ];
    if let Ok(number) = signal.parse::<u32>() {
        return (1..=64).contains(&number);
    }
    let name = signal.strip_prefix("SIG").unwrap_or(signal);
    if let Some(offset) = name
        .strip_prefix("RTMIN+")
        .or_else(|| name.strip_prefix("RTMAX-"))
    {
        return offset.parse::<u32>().is_ok_and(|n| n <= 30);
    }
    NAMES.contains(&name) || name == "RTMIN" || name == "RTMAX" || name == "SYS"
}

/// Applies an instruction that only changes the config (every one but FROM, COPY,
/// ADD, RUN, WORKDIR and ARG, which the stage handles) and returns its history text,
/// or `None` when BuildKit writes no history for it (ONBUILD).
pub fn apply_metadata(
    config: &mut ImageConfig,
    instruction: &Instruction,
    cmd_set: &mut bool,
) -> Result<Option<String>, ConfigError> {
    let container = &mut config.config;
    let history = match instruction {
        Instruction::Env(env) => {
            let list = container.env.get_or_insert_with(Vec::new);
            let mut text = String::from("ENV");
            for pair in &env.vars {
                set_env(list, &pair.key, &pair.value);
                text.push_str(&format!(" {}={}", pair.key, pair.value));
            }
            text
        }
        Instruction::Label(label) => {
            let labels = container.labels.get_or_insert_with(BTreeMap::new);
            let mut text = String::from("LABEL");
            for pair in &label.labels {
                labels.insert(pair.key.clone(), pair.value.clone());
                text.push_str(&format!(" {}={}", pair.key, pair.value));
            }
            text
        }
        Instruction::Expose(expose) => {
            let ports = exposed_ports(&expose.ports)?;
            let map = container.exposed_ports.get_or_insert_with(BTreeMap::new);
            for port in &ports {
                map.insert(port.clone(), EmptyObject {});
            }
            format!("EXPOSE {}", plain_list(&ports))
        }
        Instruction::Volume(volume) => {
            let map = container.volumes.get_or_insert_with(BTreeMap::new);
            for path in &volume.paths {
                if path.is_empty() {
                    return Err(ConfigError(
                        "VOLUME specified can not be an empty string".into(),
                    ));
                }
                map.insert(path.clone(), EmptyObject {});
            }
            format!("VOLUME {}", plain_list(&volume.paths))
        }
        Instruction::User(user) => {
            container.user = Some(user.user.clone());
            format!("USER {}", user.user)
        }
        Instruction::Cmd(cmd) => {
            let args = with_shell(config, &cmd.command);
            config.config.cmd = Some(args.clone());
            config.config.args_escaped = Some(true);
            *cmd_set = true;
            format!("CMD {}", quoted_list(&args))
        }
        Instruction::Entrypoint(entrypoint) => {
            let args = with_shell(config, &entrypoint.command);
            config.config.entrypoint = Some(args.clone());
            // Docker resets an inherited CMD: it was written for another entrypoint.
            if !*cmd_set {
                config.config.cmd = None;
            }
            format!("ENTRYPOINT {}", quoted_list(&args))
        }
        Instruction::Healthcheck(health) => {
            let health_config = match health {
                Healthcheck::None => HealthConfig {
                    test: Some(vec!["NONE".to_string()]),
                    ..HealthConfig::default()
                },
                Healthcheck::Check(check) => {
                    let nanos = |d: Duration| i64::try_from(d.as_nanos()).ok().filter(|n| *n > 0);
                    HealthConfig {
                        test: Some(health.test()),
                        interval: nanos(check.interval),
                        timeout: nanos(check.timeout),
                        start_period: nanos(check.start_period),
                        start_interval: nanos(check.start_interval),
                        retries: (check.retries > 0).then_some(check.retries),
                    }
                }
            };
            let text = health_history(&health_config);
            config.config.healthcheck = Some(health_config);
            text
        }
        Instruction::StopSignal(signal) => {
            if !is_valid_signal(&signal.signal) {
                return Err(ConfigError(format!("invalid signal: {}", signal.signal)));
            }
            container.stop_signal = Some(signal.signal.clone());
            format!("STOPSIGNAL {}", signal.signal)
        }
        Instruction::Shell(shell) => {
            container.shell = Some(shell.shell.clone());
            format!("SHELL {}", plain_list(&shell.shell))
        }
        Instruction::Onbuild(onbuild) => {
            container
                .on_build
                .get_or_insert_with(Vec::new)
                .push(onbuild.expression.clone());
            return Ok(None);
        }
        Instruction::Maintainer(maintainer) => {
            config.author = Some(maintainer.name.clone());
            format!("MAINTAINER {}", maintainer.name)
        }
        other => {
            return Err(ConfigError(format!(
                "{} is not a config instruction",
                other.name()
            )));
        }
    };
    Ok(Some(history))
}

/// BuildKit's `HEALTHCHECK %+v` history text.
fn health_history(health: &HealthConfig) -> String {
    let duration = |n: Option<i64>| go_duration(Duration::from_nanos(n.unwrap_or(0) as u64));
    format!(
        "HEALTHCHECK {{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        plain_list(health.test.as_deref().unwrap_or_default()),
        duration(health.interval),
        duration(health.timeout),
        duration(health.start_period),
        duration(health.start_interval),
        health.retries.unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_as_go() {
        let check = |d: Duration, expected: &str| assert_eq!(go_duration(d), expected);
        check(Duration::ZERO, "0s");
        check(Duration::from_secs(30), "30s");
        check(Duration::from_secs(90), "1m30s");
        check(Duration::from_secs(3600), "1h0m0s");
        check(Duration::from_millis(1500), "1.5s");
        check(Duration::from_millis(5), "5ms");
    }

    #[test]
    fn ports_expand_like_buildkit() {
        let ports =
            |v: &[&str]| exposed_ports(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(ports(&["80"]), Ok(vec!["80/tcp".to_string()]));
        assert_eq!(ports(&["53/UDP"]), Ok(vec!["53/udp".to_string()]));
        assert_eq!(ports(&["8000-8002"]).map(|p| p.len()), Ok(3));
        assert_eq!(
            ports(&["127.0.0.1:8080:80"]),
            Ok(vec!["80/tcp".to_string()])
        );
        assert!(ports(&["http"]).is_err());
        assert!(ports(&["90-80"]).is_err());
        assert!(ports(&["80/xyz"]).is_err());
    }

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "TERM", "9", "SIGRTMIN+3", "SIGKILL"] {
            assert!(is_valid_signal(ok), "{ok}");
        }
        for bad in ["SIGFOO", "0", "99", "", "RTMIN+99"] {
            assert!(!is_valid_signal(bad), "{bad}");
        }
    }

    #[test]
    fn env_replaces_in_place() {
        let mut env = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        set_env(&mut env, "PATH", "/usr/bin");
        set_env(&mut env, "B", "2");
        assert_eq!(env, ["PATH=/usr/bin", "A=1", "B=2"]);
    }
}
