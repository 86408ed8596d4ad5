//! Reads a docker-archive tarball into the file tree and runtime config its image
//! would give a container, and lists the differences between two such images.
//!
//! Both layouts of a docker-archive are understood: Docker 20.10's `docker save`
//! (`<id>/layer.tar`, `<hex>.json`) and the blob layout our builder writes
//! (`blobs/sha256/<hex>`). Layers may be plain, gzip or zstd tar, told apart by their
//! magic bytes; compressed layers are decompressed with the `gzip` and `zstd` tools.
//! Layers are applied in order in memory, honouring OCI whiteouts, so nothing is
//! extracted to disk and no privilege is needed to read ownership.

#![allow(
    dead_code,
    reason = "each test crate that includes the support module uses a different part"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Why an archive could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveError(pub String);

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArchiveError {}

fn err<T>(message: impl Into<String>) -> Result<T, ArchiveError> {
    Err(ArchiveError(message.into()))
}

/// One path of the merged file tree.
///
/// Hard links are resolved when the tree is built: a hard link is recorded as a
/// `"file"` with its target's mode, owner, size and content hash, so that two images
/// compare equal whether a builder stored a second copy of the content or a link to
/// the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// `"file"`, `"dir"`, `"symlink"`, `"char"`, `"block"` or `"fifo"` (hard links
    /// become `"file"`, see above; `"hardlink"` only remains for a link whose target
    /// is missing from the image).
    pub kind: &'static str,
    /// Permission and special bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Content size in bytes (0 for everything but files).
    pub size: u64,
    /// Lowercase hex SHA-256 of the content, for files.
    pub sha256: Option<String>,
    /// Target of a symlink (or of an unresolved hard link).
    pub link_target: Option<String>,
    /// `major,minor` of a device node.
    pub device: Option<(u64, u64)>,
}

/// The part of an image a differential test compares.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTree {
    /// The config's `config` object (Env, Cmd, Labels, ...); `Null` when absent.
    pub config: serde_json::Value,
    /// The config's top-level `author` (set by MAINTAINER).
    pub author: Option<String>,
    /// Every path of the merged layers, relative to the root without a leading `/`
    /// (the root itself is left out).
    pub files: BTreeMap<String, FileInfo>,
}

/// Config keys compared by [`compare`].
pub const COMPARED_CONFIG_KEYS: [&str; 12] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
];

/// What [`compare`] leaves out.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    /// Config keys not compared (names from [`COMPARED_CONFIG_KEYS`]).
    pub config_keys: BTreeSet<String>,
    /// Paths not compared: an exact path, or a prefix ending in `/` for a subtree.
    pub paths: Vec<String>,
}

impl Ignore {
    fn ignores_path(&self, path: &str) -> bool {
        self.paths.iter().any(|p| {
            if let Some(dir) = p.strip_suffix('/') {
                path == dir || path.starts_with(p.as_str())
            } else {
                path == p
            }
        })
    }
}

impl ImageTree {
    /// Reads a docker-archive file.
    pub fn from_docker_archive(path: &Path) -> Result<ImageTree, ArchiveError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ArchiveError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_docker_archive_bytes(&bytes)
            .map_err(|e| ArchiveError(format!("{}: {}", path.display(), e.0)))
    }

    /// Reads a docker-archive held in memory (plain or compressed tar).
    pub fn from_docker_archive_bytes(bytes: &[u8]) -> Result<ImageTree, ArchiveError> {
        let outer = decompress(bytes)?;
        let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        // `docker save` stores a layer that repeats an earlier one (an empty layer,
        // say) as a symlink to the first copy's `layer.tar`
        let mut links: Vec<(String, String)> = Vec::new();
        for entry in parse_tar(&outer)? {
            let path = normalize(&entry.path);
            match entry.kind {
                EntryKind::File => {
                    members.insert(path, entry.data);
                }
                EntryKind::Symlink => {
                    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                    links.push((path.clone(), normalize(&format!("{dir}/{}", entry.link))));
                }
                EntryKind::HardLink => links.push((path, normalize(&entry.link))),
                _ => {}
            }
        }
        for _ in 0..8 {
            for (path, target) in &links {
                if !members.contains_key(path)
                    && let Some(data) = members.get(target).cloned()
                {
                    members.insert(path.clone(), data);
                }
            }
        }
        let manifest_bytes = members
            .get("manifest.json")
            .ok_or_else(|| ArchiveError("no manifest.json in the archive".into()))?;
        let manifest: serde_json::Value = serde_json::from_slice(manifest_bytes)
            .map_err(|e| ArchiveError(format!("manifest.json is not JSON: {e}")))?;
        let images = manifest
            .as_array()
            .ok_or_else(|| ArchiveError("manifest.json is not an array".into()))?;
        let [image] = images.as_slice() else {
            return err(format!(
                "manifest.json lists {} images, expected exactly 1",
                images.len()
            ));
        };
        let config_name = image["Config"]
            .as_str()
            .ok_or_else(|| ArchiveError("manifest.json entry has no Config".into()))?;
        let config_bytes = members.get(&normalize(config_name)).ok_or_else(|| {
            ArchiveError(format!(
                "config {config_name} named by manifest.json is missing"
            ))
        })?;
        let config: serde_json::Value = serde_json::from_slice(config_bytes)
            .map_err(|e| ArchiveError(format!("config {config_name} is not JSON: {e}")))?;
        let layers = image["Layers"]
            .as_array()
            .ok_or_else(|| ArchiveError("manifest.json entry has no Layers".into()))?;
        let mut files = BTreeMap::new();
        for layer in layers {
            let name = layer
                .as_str()
                .ok_or_else(|| ArchiveError(format!("layer name {layer} is not a string")))?;
            let blob = members.get(&normalize(name)).ok_or_else(|| {
                ArchiveError(format!("layer {name} named by manifest.json is missing"))
            })?;
            let tar = decompress(blob).map_err(|e| ArchiveError(format!("layer {name}: {e}")))?;
            let entries =
                parse_tar(&tar).map_err(|e| ArchiveError(format!("layer {name}: {e}")))?;
            apply_layer(&mut files, entries)
                .map_err(|e| ArchiveError(format!("layer {name}: {e}")))?;
        }
        Ok(ImageTree {
            config: config
                .get("config")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            author: config
                .get("author")
                .and_then(serde_json::Value::as_str)
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
            files,
        })
    }

    /// A config value by key, `None` when absent, null or empty.
    pub fn config_value(&self, key: &str) -> Option<serde_json::Value> {
        normalize_config_value(key, self.config.get(key))
    }

    /// A file's content hash, for assertions about a single path.
    pub fn file(&self, path: &str) -> Option<&FileInfo> {
        self.files.get(path.trim_start_matches('/'))
    }
}

/// Lists every difference between two images: the compared config keys (absent,
/// null and empty count as equal), the author, and each path's kind, mode, owner,
/// size, content hash, link target and device numbers. Modification times are not
/// compared. Each line names what differs and both values.
pub fn compare(ours: &ImageTree, reference: &ImageTree, ignore: &Ignore) -> Vec<String> {
    let mut out = Vec::new();
    for key in COMPARED_CONFIG_KEYS {
        if ignore.config_keys.contains(key) {
            continue;
        }
        let a = ours.config_value(key);
        let b = reference.config_value(key);
        if a != b {
            out.push(format!(
                "config {key}: ours={} reference={}",
                show_json(a.as_ref()),
                show_json(b.as_ref())
            ));
        }
    }
    if !ignore.config_keys.contains("author") && ours.author != reference.author {
        out.push(format!(
            "author: ours={:?} reference={:?}",
            ours.author, reference.author
        ));
    }
    let paths: BTreeSet<&String> = ours.files.keys().chain(reference.files.keys()).collect();
    for path in paths {
        if ignore.ignores_path(path) {
            continue;
        }
        match (ours.files.get(path), reference.files.get(path)) {
            (Some(_), None) => out.push(format!("/{path}: only in ours")),
            (None, Some(_)) => out.push(format!("/{path}: only in reference")),
            (Some(a), Some(b)) => compare_file(path, a, b, &mut out),
            (None, None) => {}
        }
    }
    out
}

fn compare_file(path: &str, a: &FileInfo, b: &FileInfo, out: &mut Vec<String>) {
    if a.kind != b.kind {
        out.push(format!(
            "/{path}: kind ours={} reference={}",
            a.kind, b.kind
        ));
        return;
    }
    if a.mode != b.mode {
        out.push(format!(
            "/{path}: mode ours={:04o} reference={:04o}",
            a.mode, b.mode
        ));
    }
    if a.uid != b.uid {
        out.push(format!("/{path}: uid ours={} reference={}", a.uid, b.uid));
    }
    if a.gid != b.gid {
        out.push(format!("/{path}: gid ours={} reference={}", a.gid, b.gid));
    }
    if a.size != b.size {
        out.push(format!(
            "/{path}: size ours={} reference={}",
            a.size, b.size
        ));
    }
    if a.sha256 != b.sha256 {
        out.push(format!(
            "/{path}: content ours={} reference={}",
            a.sha256.as_deref().unwrap_or("-"),
            b.sha256.as_deref().unwrap_or("-")
        ));
    }
    if a.link_target != b.link_target {
        out.push(format!(
            "/{path}: link target ours={:?} reference={:?}",
            a.link_target, b.link_target
        ));
    }
    if a.device != b.device {
        out.push(format!(
            "/{path}: device ours={:?} reference={:?}",
            a.device, b.device
        ));
    }
}

fn show_json(v: Option<&serde_json::Value>) -> String {
    v.map_or_else(|| "(none)".to_owned(), serde_json::Value::to_string)
}

/// Absent, null, `""`, `[]` and `{}` are all "not set". Inside `Healthcheck`, Go's
/// `omitempty` also drops zero durations and retries, so members that are null,
/// empty or 0 are removed there before comparing.
fn normalize_config_value(key: &str, v: Option<&serde_json::Value>) -> Option<serde_json::Value> {
    use serde_json::Value;
    let v = v?;
    let empty = match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if empty {
        return None;
    }
    if key == "Healthcheck"
        && let Value::Object(o) = v
    {
        let kept: serde_json::Map<String, Value> = o
            .iter()
            .filter(|(_, m)| match m {
                Value::Null => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(x) => !x.is_empty(),
                Value::Bool(_) => true,
            })
            .map(|(k, m)| (k.clone(), m.clone()))
            .collect();
        return Some(Value::Object(kept));
    }
    Some(v.clone())
}

// ---------------------------------------------------------------------------
// Decompression

/// Returns the tar bytes of a plain, gzip or zstd stream (told by magic bytes).
pub fn decompress(bytes: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        run_filter("gzip", &["-dc"], bytes)
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        run_filter("zstd", &["-dcq"], bytes)
    } else {
        Ok(bytes.to_vec())
    }
}

fn run_filter(tool: &str, args: &[&str], input: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            ArchiveError(format!(
                "cannot run `{tool}` to decompress a layer ({e}); \
                 install it with scripts/install-test-deps"
            ))
        })?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| ArchiveError(format!("`{tool}` has no stdin")))?;
    let output = std::thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(input));
        let output = child.wait_with_output();
        let written = writer.join();
        (output, written)
    });
    let (output, written) = output;
    let output = output.map_err(|e| ArchiveError(format!("`{tool}` failed: {e}")))?;
    if !output.status.success() {
        return err(format!(
            "`{tool} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    match written {
        Ok(Ok(())) => Ok(output.stdout),
        Ok(Err(e)) => err(format!("writing to `{tool}` failed: {e}")),
        Err(_) => err(format!("the thread feeding `{tool}` panicked")),
    }
}

// ---------------------------------------------------------------------------
// Tar

/// Kind of a tar member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file (`0`, NUL or `7`).
    File,
    /// Hard link (`1`).
    HardLink,
    /// Symbolic link (`2`).
    Symlink,
    /// Character device (`3`).
    Char,
    /// Block device (`4`).
    Block,
    /// Directory (`5`).
    Dir,
    /// Named pipe (`6`).
    Fifo,
}

/// One member of a tar stream, with GNU long names and PAX records applied.
#[derive(Debug, Clone)]
pub struct TarEntry {
    /// Member path as stored.
    pub path: String,
    /// Member kind.
    pub kind: EntryKind,
    /// `mode & 0o7777`.
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Link target, for links.
    pub link: String,
    /// Device numbers.
    pub device: (u64, u64),
    /// Content, for files.
    pub data: Vec<u8>,
}

fn field_str(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

fn field_num(field: &[u8]) -> Result<u64, ArchiveError> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // base-256: big-endian, high bit of the first byte is the marker
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(b)))
                .ok_or_else(|| ArchiveError("base-256 tar number overflows".into()))?;
        }
        return Ok(n);
    }
    let text = field_str(field);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| ArchiveError(format!("bad octal tar number {text:?}")))
}

fn parse_pax(data: &[u8]) -> Result<BTreeMap<String, String>, ArchiveError> {
    let mut records = BTreeMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| ArchiveError("malformed PAX record".into()))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ArchiveError("malformed PAX record length".into()))?;
        if len <= space + 1 || len > rest.len() {
            return err("PAX record length out of range");
        }
        let record = &rest[space + 1..len - 1];
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            records.insert(
                String::from_utf8_lossy(&record[..eq]).into_owned(),
                String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
            );
        }
        rest = &rest[len..];
    }
    Ok(records)
}

/// Parses a tar stream (ustar, GNU and PAX).
pub fn parse_tar(bytes: &[u8]) -> Result<Vec<TarEntry>, ArchiveError> {
    let mut entries = Vec::new();
    let mut offset = 0usize;
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut pax: BTreeMap<String, String> = BTreeMap::new();
    while offset + 512 <= bytes.len() {
        let header = &bytes[offset..offset + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        // the checksum is the byte sum of the header with its own field read as spaces
        let stored: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        let expected = field_num(&header[148..156])?;
        if stored != expected {
            return err(format!("bad tar header checksum at offset {offset}"));
        }
        let mut size = field_num(&header[124..136])?;
        if let Some(s) = pax.get("size") {
            size = s
                .parse()
                .map_err(|_| ArchiveError(format!("bad PAX size {s:?}")))?;
        }
        let size_usize =
            usize::try_from(size).map_err(|_| ArchiveError("tar member too large".into()))?;
        let data_start = offset + 512;
        let data_end = data_start
            .checked_add(size_usize)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| ArchiveError(format!("tar member at offset {offset} is truncated")))?;
        let data = &bytes[data_start..data_end];
        offset = data_start + size_usize.div_ceil(512) * 512;
        let typeflag = header[156];
        match typeflag {
            b'L' => {
                long_name = Some(field_str(data));
                continue;
            }
            b'K' => {
                long_link = Some(field_str(data));
                continue;
            }
            b'x' => {
                pax.extend(parse_pax(data)?);
                continue;
            }
            b'g' => continue,
            _ => {}
        }
        let kind = match typeflag {
            b'0' | 0 | b'7' => EntryKind::File,
            b'1' => EntryKind::HardLink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::Char,
            b'4' => EntryKind::Block,
            b'5' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            other => {
                return err(format!(
                    "unsupported tar member type {:?} at offset {offset}",
                    char::from(other)
                ));
            }
        };
        let mut path = field_str(&header[0..100]);
        if &header[257..262] == b"ustar" {
            let prefix = field_str(&header[345..500]);
            if !prefix.is_empty() && &header[257..263] == b"ustar\0" {
                path = format!("{prefix}/{path}");
            }
        }
        if let Some(name) = long_name.take() {
            path = name;
        }
        if let Some(name) = pax.get("path") {
            path = name.clone();
        }
        let mut link = field_str(&header[157..257]);
        if let Some(name) = long_link.take() {
            link = name;
        }
        if let Some(name) = pax.get("linkpath") {
            link = name.clone();
        }
        let mut uid = field_num(&header[108..116])?;
        let mut gid = field_num(&header[116..124])?;
        if let Some(v) = pax.get("uid").and_then(|v| v.parse().ok()) {
            uid = v;
        }
        if let Some(v) = pax.get("gid").and_then(|v| v.parse().ok()) {
            gid = v;
        }
        let mode = u32::try_from(field_num(&header[100..108])? & 0o7777).unwrap_or(0);
        let device = (field_num(&header[329..337])?, field_num(&header[337..345])?);
        pax.clear();
        entries.push(TarEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            link,
            device,
            data: if kind == EntryKind::File {
                data.to_vec()
            } else {
                Vec::new()
            },
        });
    }
    Ok(entries)
}

/// `./a/b/` → `a/b`; `/` and `.` → empty.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn remove_subtree(files: &mut BTreeMap<String, FileInfo>, path: &str, keep_self: bool) {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let doomed: Vec<String> = files
        .keys()
        .filter(|k| {
            (k.starts_with(&prefix) && k.len() > prefix.len()) || (!keep_self && *k == path)
        })
        .cloned()
        .collect();
    for k in doomed {
        files.remove(&k);
    }
}

/// Applies one layer: its whiteouts remove paths of the layers below, then its
/// members are added (a non-directory replacing a directory drops the subtree).
fn apply_layer(
    files: &mut BTreeMap<String, FileInfo>,
    entries: Vec<TarEntry>,
) -> Result<(), ArchiveError> {
    let mut additions = Vec::new();
    for entry in entries {
        let path = normalize(&entry.path);
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d.to_owned(), n.to_owned()),
            None => (String::new(), path.clone()),
        };
        if name == ".wh..wh..opq" {
            remove_subtree(files, &dir, true);
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden.starts_with(".wh.") {
                // other AUFS metadata (`.wh..wh.plnk`, ...): not part of the tree
                continue;
            }
            let target = if dir.is_empty() {
                hidden.to_owned()
            } else {
                format!("{dir}/{hidden}")
            };
            remove_subtree(files, &target, false);
        } else if !path.is_empty() {
            additions.push((path, entry));
        }
    }
    for (path, entry) in additions {
        let info = match entry.kind {
            EntryKind::HardLink => {
                let target = normalize(&entry.link);
                match files.get(&target) {
                    Some(t) if t.kind == "file" => t.clone(),
                    _ => FileInfo {
                        kind: "hardlink",
                        mode: entry.mode,
                        uid: entry.uid,
                        gid: entry.gid,
                        size: 0,
                        sha256: None,
                        link_target: Some(target),
                        device: None,
                    },
                }
            }
            kind => FileInfo {
                kind: match kind {
                    EntryKind::File => "file",
                    EntryKind::Symlink => "symlink",
                    EntryKind::Char => "char",
                    EntryKind::Block => "block",
                    EntryKind::Dir => "dir",
                    EntryKind::Fifo => "fifo",
                    EntryKind::HardLink => "hardlink",
                },
                mode: entry.mode,
                uid: entry.uid,
                gid: entry.gid,
                size: entry.data.len() as u64,
                sha256: (kind == EntryKind::File).then(|| sha256_hex(&entry.data)),
                link_target: (kind == EntryKind::Symlink).then(|| entry.link.clone()),
                device: matches!(kind, EntryKind::Char | EntryKind::Block).then_some(entry.device),
            },
        };
        if info.kind != "dir" {
            remove_subtree(files, &path, true);
        }
        files.insert(path, info);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), so the support code needs no hashing crate.

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut padded = data.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&bit_len.to_be_bytes());
    for block in padded.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *slot = slot.wrapping_add(v);
        }
    }
    h.iter().map(|v| format!("{v:08x}")).collect()
}
