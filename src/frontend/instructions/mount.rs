//! The options of `RUN`: `--mount`, `--network`, `--security` and `--device` values.

use super::flags::with_suggestion;
use super::values::{go_quote, parse_go_bool, parse_go_u32, parse_ram_size};

/// Expands one word (variables substituted, quotes removed) or says why it cannot.
pub type WordExpander<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

/// What a `RUN --mount` attaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MountType {
    /// A directory of the build context or another stage (the default).
    #[default]
    Bind,
    /// A persistent cache directory shared between builds.
    Cache,
    /// An empty in-memory filesystem.
    Tmpfs,
    /// A build secret exposed as a file or an environment variable.
    Secret,
    /// The SSH agent socket forwarded from the client.
    Ssh,
}

impl MountType {
    const ALL: [(&'static str, MountType); 5] = [
        ("bind", MountType::Bind),
        ("cache", MountType::Cache),
        ("tmpfs", MountType::Tmpfs),
        ("secret", MountType::Secret),
        ("ssh", MountType::Ssh),
    ];

    /// The keyword used in `type=...`.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share one cache mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheSharing {
    /// Every writer uses the same directory at once (BuildKit's default).
    Shared,
    /// A writer that finds the cache busy gets a fresh private copy.
    Private,
    /// A writer waits until the cache is released.
    Locked,
}

impl CacheSharing {
    const ALL: [(&'static str, CacheSharing); 3] = [
        ("shared", CacheSharing::Shared),
        ("private", CacheSharing::Private),
        ("locked", CacheSharing::Locked),
    ];
}

/// One parsed `RUN --mount=...` value.
///
/// Only what the value itself says: defaults that depend on the build (a cache id taken from
/// the target, a secret's `/run/secrets/ID` path, the ssh socket path) are chosen when the
/// instruction is converted. Empty strings (`source=`) are stored as `None`, like BuildKit's
/// empty string meaning "not set".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mount {
    /// `type=`, bind when absent.
    pub kind: MountType,
    /// `from=`: a stage or image to mount from instead of the build context.
    pub from: Option<String>,
    /// `source=` / `src=`: a path inside `from`, or the secret id.
    pub source: Option<String>,
    /// `target=` / `dst=` / `destination=`: where the mount appears.
    pub target: Option<String>,
    /// `ro` / `readonly` / `rw` / `readwrite`; when none is given, true except for cache and tmpfs.
    pub read_only: bool,
    /// `size=` for tmpfs, in bytes.
    pub size_limit: Option<u64>,
    /// `id=`: the cache id, or the secret/ssh id.
    pub id: Option<String>,
    /// `sharing=` for cache mounts.
    pub sharing: Option<CacheSharing>,
    /// `required` for secret and ssh mounts: fail when the client does not provide it.
    pub required: bool,
    /// `env=` for secrets: the variable to expose the secret as (`Some("")` keeps the default).
    pub env: Option<String>,
    /// `mode=` (octal) for cache, secret and ssh mounts.
    pub mode: Option<u32>,
    /// `uid=` for cache, secret and ssh mounts.
    pub uid: Option<u32>,
    /// `gid=` for cache, secret and ssh mounts.
    pub gid: Option<u32>,
}

/// The every-key list BuildKit offers suggestions from, in a fixed order.
const MOUNT_KEYS: [&str; 19] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// Parses one `--mount` value.
///
/// Without `expand` this is BuildKit's parse-time pass: it only checks the CSV syntax and that
/// `from=` holds no variable, and fills `from` (what stage ordering needs); every other key
/// waits until variables are known. With `expand`, every value is expanded first and the
/// mount is parsed and validated completely.
pub fn parse_mount(spec: &str, mut expand: Option<&mut WordExpander<'_>>) -> Result<Mount, String> {
    let fields = split_csv(spec).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut mount = Mount::default();
    let mut read_only_given = false;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_lowercase(), Some(value)),
            None => (field.to_lowercase(), None),
        };
        let Some(value) = value else {
            if expand.is_none() {
                continue;
            }
            match key.as_str() {
                "readonly" | "ro" => {
                    mount.read_only = true;
                    read_only_given = true;
                }
                "readwrite" | "rw" => {
                    mount.read_only = false;
                    read_only_given = true;
                }
                "required" => {
                    require_secret_or_ssh(&key, mount.kind)?;
                    mount.required = true;
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let value = match expand.as_mut() {
            Some(expand) => expand(value)?,
            None if key == "from" => {
                // A `$` anywhere but last would be a variable, which stage ordering cannot wait for.
                if value.find('$').is_some_and(|at| at + 1 != value.len()) {
                    return Err(format!(
                        "'{key}' doesn't support variable expansion, define alias stage instead"
                    ));
                }
                value.to_string()
            }
            None => continue,
        };
        let invalid = || format!("invalid value for {key}: {value}");
        match key.as_str() {
            "type" => {
                let lower = value.to_lowercase();
                let Some((_, kind)) = MountType::ALL.iter().find(|(n, _)| *n == lower) else {
                    let names = MountType::ALL.map(|(n, _)| n);
                    let message = format!("unsupported mount type {}", go_quote(&value));
                    return Err(with_suggestion(message, &value, &names, true));
                };
                mount.kind = *kind;
            }
            "from" => mount.from = non_empty(value),
            "source" | "src" => mount.source = non_empty(value),
            "target" | "dst" | "destination" => mount.target = non_empty(value),
            "readonly" | "ro" => {
                mount.read_only = parse_go_bool(&value).ok_or_else(invalid)?;
                read_only_given = true;
            }
            "readwrite" | "rw" => {
                mount.read_only = !parse_go_bool(&value).ok_or_else(invalid)?;
                read_only_given = true;
            }
            "required" => {
                require_secret_or_ssh(&key, mount.kind)?;
                mount.required = parse_go_bool(&value).ok_or_else(invalid)?;
            }
            "size" => {
                if mount.kind != MountType::Tmpfs {
                    return Err(unexpected_for_type(&key, mount.kind));
                }
                mount.size_limit = Some(parse_ram_size(&value).ok_or_else(invalid)?);
            }
            "id" => mount.id = non_empty(value),
            "sharing" => {
                let lower = value.to_lowercase();
                let Some((_, mode)) = CacheSharing::ALL.iter().find(|(n, _)| *n == lower) else {
                    let names = CacheSharing::ALL.map(|(n, _)| n);
                    let message = format!("unsupported sharing value {}", go_quote(&value));
                    return Err(with_suggestion(message, &value, &names, true));
                };
                mount.sharing = Some(*mode);
            }
            "mode" => {
                let mode = parse_go_u32(&value, 8);
                mount.mode = Some(mode.ok_or_else(|| format!("invalid value {value} for mode"))?);
            }
            "uid" => {
                let uid = parse_go_u32(&value, 10);
                mount.uid = Some(uid.ok_or_else(|| format!("invalid value {value} for uid"))?);
            }
            "gid" => {
                let gid = parse_go_u32(&value, 10);
                mount.gid = Some(gid.ok_or_else(|| format!("invalid value {value} for gid"))?);
            }
            "env" => mount.env = Some(value),
            _ => {
                let message = format!("unexpected key '{key}' in '{field}'");
                return Err(with_suggestion(message, &key, &MOUNT_KEYS, true));
            }
        }
    }
    validate_mount(&mut mount, read_only_given)?;
    Ok(mount)
}

/// The checks that need the whole mount, in BuildKit's order.
fn validate_mount(mount: &mut Mount, read_only_given: bool) -> Result<(), String> {
    let kind = mount.kind;
    if !matches!(kind, MountType::Secret | MountType::Ssh | MountType::Cache) {
        let name = go_quote(kind.as_str());
        if mount.mode.is_some() {
            return Err(format!("mode not allowed for {name} type mounts"));
        }
        if mount.uid.is_some() {
            return Err(format!("uid not allowed for {name} type mounts"));
        }
        if mount.gid.is_some() {
            return Err(format!("gid not allowed for {name} type mounts"));
        }
    }
    if !read_only_given {
        // Writable scratch space is the point of cache and tmpfs; everything else is input.
        mount.read_only = !matches!(kind, MountType::Cache | MountType::Tmpfs);
    }
    if kind == MountType::Secret {
        if mount.from.is_some() {
            return Err("secret mount should not have a from".to_string());
        }
        if mount.sharing.is_some() {
            return Err("secret mount should not define sharing".to_string());
        }
        if mount.source.is_none() && mount.target.is_none() && mount.id.is_none() {
            return Err("invalid secret mount. one of source, target required".to_string());
        }
        if mount.source.is_some() && mount.id.is_some() {
            return Err("both source and id can't be set".to_string());
        }
    }
    if mount.sharing.is_some() && kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            kind.as_str()
        ));
    }
    Ok(())
}

fn require_secret_or_ssh(key: &str, kind: MountType) -> Result<(), String> {
    if matches!(kind, MountType::Secret | MountType::Ssh) {
        Ok(())
    } else {
        Err(unexpected_for_type(key, kind))
    }
}

fn unexpected_for_type(key: &str, kind: MountType) -> String {
    format!("unexpected key '{key}' for mount type '{}'", kind.as_str())
}

fn non_empty(value: String) -> Option<String> {
    if value.is_empty() { None } else { Some(value) }
}

/// The network a `RUN` step gets (`--network=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// The builder's normal sandboxed network.
    Default,
    /// No network at all.
    None,
    /// The host's network namespace (needs an entitlement).
    Host,
}

impl NetworkMode {
    /// Parses a `--network` value; BuildKit accepts only the lowercase names.
    pub fn parse(value: &str) -> Result<NetworkMode, String> {
        match value {
            "default" => Ok(NetworkMode::Default),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => Err(format!("invalid network mode {}", go_quote(value))),
        }
    }
}

/// The privilege level of a `RUN` step (`--security=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityMode {
    /// The normal confined sandbox.
    Sandbox,
    /// Full privileges (needs an entitlement).
    Insecure,
}

impl SecurityMode {
    /// Parses a `--security` value; BuildKit accepts only the lowercase names.
    pub fn parse(value: &str) -> Result<SecurityMode, String> {
        match value {
            "sandbox" => Ok(SecurityMode::Sandbox),
            "insecure" => Ok(SecurityMode::Insecure),
            _ => Err(format!("security {} is not valid", go_quote(value))),
        }
    }
}

/// One `RUN --device=...` value: a CDI device the step needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// The device name (`vendor.com/class=name`), given bare or as `name=`.
    pub name: String,
    /// Fail the build when the device is not available.
    pub required: bool,
}

/// Parses one `--device` value (no variables are expanded in devices).
pub fn parse_device(spec: &str) -> Result<Device, String> {
    let fields = split_csv(spec).map_err(|e| format!("failed to parse csv devices: {e}"))?;
    let mut device = Device::default();
    for field in &fields {
        let Some((key, value)) = field.split_once('=') else {
            if field.to_lowercase() == "required" {
                device.required = true;
            } else if device.name.is_empty() {
                device.name = field.clone();
            } else {
                return Err(format!("invalid field '{field}' must be a key=value pair"));
            }
            continue;
        };
        let key = key.to_lowercase();
        match key.as_str() {
            "name" => {
                if !device.name.is_empty() {
                    return Err(format!("device name already set to {}", device.name));
                }
                device.name = value.to_string();
            }
            "required" => {
                device.required = parse_go_bool(value)
                    .ok_or_else(|| format!("invalid value for {key}: {value}"))?;
            }
            // CDI names contain `=`, so the first unknown pair is the name itself.
            _ if device.name.is_empty() => device.name = field.clone(),
            _ => {
                let message = format!("unexpected key '{key}' in '{field}'");
                return Err(with_suggestion(message, &key, &["name", "required"], true));
            }
        }
    }
    Ok(device)
}

/// Splits one line of comma separated values with `"` quoting, like Go's strict CSV reader.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(line);
    if line.is_empty() {
        return Err("EOF".to_string());
    }
    let at =
        |offset: usize, what: &str| format!("parse error on line 1, column {}: {what}", offset + 1);
    let bare = "bare \" in non-quoted-field";
    let stray = "extraneous or missing \" in quoted-field";
    let mut fields = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &line[pos..];
        if !rest.starts_with('"') {
            let end = rest.find(',');
            let field = &rest[..end.unwrap_or(rest.len())];
            if let Some(quote) = field.find('"') {
                return Err(at(pos + quote, bare));
            }
            fields.push(field.to_string());
            match end {
                Some(end) => pos += end + 1,
                None => return Ok(fields),
            }
            continue;
        }
        pos += 1;
        let mut field = String::new();
        loop {
            let Some(quote) = line[pos..].find('"') else {
                return Err(at(pos, stray));
            };
            field.push_str(&line[pos..pos + quote]);
            pos += quote + 1;
            match line.as_bytes().get(pos) {
                Some(b'"') => {
                    field.push('"');
                    pos += 1;
                }
                Some(b',') => {
                    pos += 1;
                    fields.push(field);
                    break;
                }
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(_) => return Err(at(pos - 1, stray)),
            }
        }
    }
}
