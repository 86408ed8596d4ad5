//! Image references (`busybox`, `ghcr.io/acme/app:1.2@sha256:...`): parsing and normalizing
//! them the way Docker does, and deciding which registries are spoken to over plain HTTP.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::oci::digest::Digest;

/// The registry an image name without a registry component refers to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// The namespace Docker puts single-component names on the default registry into.
const OFFICIAL_NAMESPACE: &str = "library";

/// The tag assumed when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// Longest tag the distribution spec allows.
const TAG_MAX: usize = 128;

/// Longest `registry/repository` name Docker accepts.
const NAME_MAX: usize = 255;

/// A fully normalized image reference: `registry/repository[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host with optional port (`docker.io`, `ghcr.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path inside the registry (`library/busybox`, `acme/app`).
    pub repository: String,
    /// The tag, if one was given or implied (`latest` when neither tag nor digest was given).
    pub tag: Option<String>,
    /// The manifest digest, if the reference pins one.
    pub digest: Option<Digest>,
}

/// Why an image reference was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{input}`: {reason}")]
pub struct ReferenceError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ImageRef {
    /// Parses a reference as `docker pull` would, filling in the default registry, the
    /// `library/` namespace and the `latest` tag.
    pub fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
        let error = |reason: String| ReferenceError {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(error("the reference is empty".to_string()));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(error(format!("unexpected character {c:?}")));
        }

        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = digest.parse::<Digest>().map_err(|e| error(e.to_string()))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag is a `:` after the last `/`; an earlier `:` belongs to a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|reason| error(reason.to_string()))?;
        }

        let (registry, path) = split_registry(name);
        check_registry(registry).map_err(|reason| error(format!("registry {reason}")))?;
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        if path.is_empty() {
            return Err(error("the repository name is empty".to_string()));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            let lowered = format!(
                "{}{}{}",
                &input[..name.len() - path.len()],
                path.to_ascii_lowercase(),
                &input[name.len()..]
            );
            return Err(error(format!(
                "repository name must be lowercase: write `{lowered}`"
            )));
        }
        for component in path.split('/') {
            check_component(component)
                .map_err(|reason| error(format!("repository component `{component}` {reason}")))?;
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}/{path}")
        } else {
            path.to_string()
        };
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(error(format!(
                "the name is longer than {NAME_MAX} characters"
            )));
        }

        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(ImageRef {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// The short form Docker shows (`busybox:latest`, `user/app:1`, `ghcr.io/acme/app:2`).
    pub fn familiar(&self) -> String {
        let name = if self.registry == DEFAULT_REGISTRY {
            let short = self
                .repository
                .strip_prefix(OFFICIAL_NAMESPACE)
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|rest| !rest.contains('/'));
            short.unwrap_or(&self.repository).to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        };
        format!("{name}{}", self.suffix())
    }

    /// The tag or digest part as a registry API path element: the digest when pinned, since
    /// Docker ignores the tag of a `name:tag@digest` reference when pulling.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// Whether this registry is spoken to over plain HTTP: loopback registries (as Docker
    /// does) and those listed in `insecure_registries` (by `host:port` or by host).
    pub fn plain_http(&self, insecure_registries: &[String]) -> bool {
        let host = registry_host(&self.registry);
        if host == "localhost" || host == "[::1]" {
            return true;
        }
        if host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()) {
            return true;
        }
        insecure_registries.iter().any(|entry| {
            let entry = entry.trim().trim_end_matches('/');
            let entry = entry
                .strip_prefix("http://")
                .or_else(|| entry.strip_prefix("https://"))
                .unwrap_or(entry);
            entry == self.registry || entry == host
        })
    }

    fn suffix(&self) -> String {
        let mut out = String::new();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
        out
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.registry, self.repository, self.suffix())
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<ImageRef, ReferenceError> {
        ImageRef::parse(input)
    }
}

/// Splits `name` into registry and path; the registry defaults to Docker Hub when the first
/// component cannot be a host name (no `.`, no `:`, not `localhost`).
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

/// The registry without its port, IPv6 brackets kept (`[::1]`).
fn registry_host(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.find(']').map_or(registry, |end| &registry[..=end]);
    }
    registry.split_once(':').map_or(registry, |(host, _)| host)
}

fn check_registry(registry: &str) -> Result<(), &'static str> {
    let (host, port) = if registry.starts_with('[') {
        let end = registry.find(']').ok_or("has an unclosed `[`")?;
        let inside = &registry[1..end];
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err("has an invalid IPv6 address");
        }
        match &registry[end + 1..] {
            "" => (None, None),
            rest => (
                None,
                Some(rest.strip_prefix(':').ok_or("has text after `]`")?),
            ),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err("host name is invalid");
        }
    }
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("port must be a number");
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), &'static str> {
    let mut chars = tag.chars();
    match chars.next() {
        None => return Err("the tag is empty"),
        Some(c) if !(c.is_ascii_alphanumeric() || c == '_') => {
            return Err("a tag must start with a letter, digit or `_`");
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err("a tag may hold letters, digits, `_`, `.` and `-` only");
    }
    if tag.len() > TAG_MAX {
        return Err("the tag is longer than 128 characters");
    }
    Ok(())
}

/// Checks `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_component(component: &str) -> Result<(), &'static str> {
    const SHAPE: &str = "must be lowercase letters and digits separated by `.`, `_`, `__` or `-`";
    if component.is_empty() {
        return Err("is empty");
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(SHAPE);
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return Err(SHAPE);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn references_normalize_like_docker() {
        let long_tag = "t".repeat(128);
        let long_tag_ref = format!("busybox:{long_tag}");
        let long_tag_want = format!("docker.io/library/busybox:{long_tag}");
        let with_digest = format!("busybox@{D}");
        let with_tag_digest = format!("ghcr.io/acme/app:1.2@{D}");
        let local_digest = format!("localhost:5000/x@{D}");
        let hub_digest = format!("docker.io/library/busybox@{D}");
        let short_digest = format!("busybox@{D}");
        let pinned = format!("ghcr.io/acme/app:1.2@{D}");
        let cases: Vec<(&str, &str, &str)> = vec![
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/library/busybox:1",
                "docker.io/library/busybox:1",
                "busybox:1",
            ),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            ("user/app:v2", "docker.io/user/app:v2", "user/app:v2"),
            (
                "docker.io/user/app",
                "docker.io/user/app:latest",
                "user/app:latest",
            ),
            ("a/b/c", "docker.io/a/b/c:latest", "a/b/c:latest"),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
            ),
            (
                "ghcr.io/acme/app",
                "ghcr.io/acme/app:latest",
                "ghcr.io/acme/app:latest",
            ),
            (
                "quay.io/x/y:tag_1",
                "quay.io/x/y:tag_1",
                "quay.io/x/y:tag_1",
            ),
            (
                "localhost/app",
                "localhost/app:latest",
                "localhost/app:latest",
            ),
            (
                "localhost",
                "docker.io/library/localhost:latest",
                "localhost:latest",
            ),
            (
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
            ),
            (
                "127.0.0.1:5000/a/b",
                "127.0.0.1:5000/a/b:latest",
                "127.0.0.1:5000/a/b:latest",
            ),
            (
                "[::1]:5000/app",
                "[::1]:5000/app:latest",
                "[::1]:5000/app:latest",
            ),
            ("[::1]/app:x", "[::1]/app:x", "[::1]/app:x"),
            (
                "host:443/path/name:Tag.1-x",
                "host:443/path/name:Tag.1-x",
                "host:443/path/name:Tag.1-x",
            ),
            (
                "my-registry.example.com/a",
                "my-registry.example.com/a:latest",
                "my-registry.example.com/a:latest",
            ),
            ("a.b/c__d", "a.b/c__d:latest", "a.b/c__d:latest"),
            (
                "a.b/c---d.e_f",
                "a.b/c---d.e_f:latest",
                "a.b/c---d.e_f:latest",
            ),
            ("busybox:_x", "docker.io/library/busybox:_x", "busybox:_x"),
            (&long_tag_ref, &long_tag_want, &long_tag_want[18..]),
            (&with_digest, &hub_digest, &short_digest),
            (&with_tag_digest, &pinned, &with_tag_digest),
            (&local_digest, &local_digest, &local_digest),
        ];
        for (input, full, familiar) in &cases {
            let parsed = ImageRef::parse(input);
            let got = parsed.as_ref().map(|r| (r.to_string(), r.familiar()));
            assert_eq!(
                got,
                Ok((full.to_string(), familiar.to_string())),
                "input {input:?}"
            );
            let again = parsed.map(|r| ImageRef::parse(&r.to_string()).map(|r2| r2 == r));
            assert_eq!(again, Ok(Ok(true)), "round trip of {input:?}");
        }
    }

    #[test]
    fn parts_are_split_correctly() {
        let r = ImageRef::parse(&format!("localhost:5000/team/app:v1@{D}"));
        let r = r.map(|r| {
            (
                r.registry,
                r.repository,
                r.tag,
                r.digest.map(|d| d.to_string()),
            )
        });
        let want = (
            "localhost:5000",
            "team/app",
            Some("v1".to_string()),
            Some(D.to_string()),
        );
        assert_eq!(r, Ok((want.0.into(), want.1.into(), want.2, want.3)));
        let r = ImageRef::parse(&format!("busybox@{D}"))
            .map(|r| (r.tag.clone(), r.manifest_reference()));
        assert_eq!(r, Ok((None, D.to_string())));
        let r = ImageRef::parse("busybox").map(|r| r.manifest_reference());
        assert_eq!(r.as_deref(), Ok("latest"));
    }

    #[test]
    fn malformed_references_are_refused() {
        let long_tag = format!("busybox:{}", "t".repeat(129));
        let long_name = format!("r.io/{}", "a".repeat(251));
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            (" busybox", "unexpected character"),
            ("busy box", "unexpected character"),
            ("busybox:", "the tag is empty"),
            ("busybox:.x", "must start with"),
            ("busybox:-x", "must start with"),
            ("busybox:a/b", "port must be a number"),
            ("busybox:a+b", "may hold letters"),
            (&long_tag, "longer than 128"),
            ("busybox@", "only sha256"),
            ("busybox@sha256:abc", "64 lowercase hex"),
            ("busybox@md5:abc", "only sha256"),
            ("/busybox", "is empty"),
            ("busybox/", "is empty"),
            ("a//b", "is empty"),
            ("ghcr.io/", "repository name is empty"),
            ("a-/b", "must be lowercase letters"),
            ("-a", "must be lowercase letters"),
            ("a___b", "must be lowercase letters"),
            ("a.-b", "must be lowercase letters"),
            ("a..b", "must be lowercase letters"),
            ("r.io/a_", "must be lowercase letters"),
            ("host:abc/x", "port must be a number"),
            ("host:/x", "port must be a number"),
            ("ho_st.io/x", "host name is invalid"),
            ("-host.io/x", "host name is invalid"),
            ("[::1/x", "unclosed"),
            ("[zz]:1/x", "invalid IPv6"),
            (&long_name, "longer than 255"),
            (
                "Busybox",
                "repository name must be lowercase: write `busybox`",
            ),
            (
                "ghcr.io/Acme/App:V1",
                "repository name must be lowercase: write `ghcr.io/acme/app:V1`",
            ),
        ];
        for (input, needle) in &cases {
            let result = ImageRef::parse(input);
            match &result {
                Err(e) => {
                    let text = e.to_string();
                    assert!(
                        text.contains(needle),
                        "input {input:?}: {text:?} lacks {needle:?}"
                    );
                    assert!(text.starts_with(&format!("invalid image reference `{input}`")));
                }
                Ok(r) => panic!("input {input:?} was accepted as {r}"),
            }
        }
    }

    #[test]
    fn loopback_and_listed_registries_use_plain_http() {
        let insecure = vec![
            "registry.lan:5000".to_string(),
            "http://plain.example/".to_string(),
        ];
        let cases = [
            ("localhost/a", true),
            ("localhost:5000/a", true),
            ("127.0.0.1:5000/a", true),
            ("127.1.2.3/a", true),
            ("[::1]:5000/a", true),
            ("registry.lan:5000/a", true),
            ("registry.lan:5001/a", false),
            ("plain.example/a", true),
            ("plain.example:8080/a", true),
            ("128.0.0.1/a", false),
            ("ghcr.io/a", false),
            ("busybox", false),
        ];
        for (input, want) in cases {
            let got = ImageRef::parse(input).map(|r| r.plain_http(&insecure));
            assert_eq!(got, Ok(want), "input {input:?}");
        }
    }
}
