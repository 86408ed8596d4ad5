//! OCI platforms (`linux/arm64`, `linux/arm/v7`): parsing, normalizing, formatting.

use std::fmt;

use serde::Serialize;

/// An operating system, CPU architecture and optional variant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Platform {
    /// Operating system, such as `linux`.
    pub os: String,
    /// CPU architecture in OCI's spelling (`amd64`, `arm64`, `arm`, `386`, ...).
    pub architecture: String,
    /// Architecture variant (`v7` for `arm`), empty when none.
    pub variant: String,
}

/// Why a platform string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform `{input}`: {reason}")]
pub struct PlatformError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

const KNOWN_OS: [&str; 12] = [
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "windows",
];

impl Platform {
    /// The platform this process runs on, as Docker would name it.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = if architecture == "arm" { "v7" } else { "" };
        Platform {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: variant.to_string(),
        }
    }

    /// Parses `os[/arch[/variant]]` or a bare architecture, normalizing the spelling
    /// the way containerd does (`x86_64` is `amd64`, `arm64/v8` is `arm64`, `arm` is
    /// `arm/v7`).
    pub fn parse(input: &str) -> Result<Platform, PlatformError> {
        let error = |reason| PlatformError {
            input: input.to_string(),
            reason,
        };
        let lower = input.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(error("empty component"));
        }
        if parts.iter().any(|p| {
            !p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }) {
            return Err(error(
                "components may hold letters, digits, `_` and `-` only",
            ));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [one] if KNOWN_OS.contains(one) => (*one, Platform::host().architecture, ""),
            [one] => ("linux", (*one).to_string(), ""),
            [os, arch] => (*os, (*arch).to_string(), ""),
            [os, arch, variant] => (*os, (*arch).to_string(), *variant),
            _ => return Err(error("expected os/arch[/variant]")),
        };
        if !KNOWN_OS.contains(&os) {
            return Err(error("unknown operating system"));
        }
        let (architecture, variant) = normalize_arch(&arch, variant);
        Ok(Platform {
            os: os.to_string(),
            architecture,
            variant,
        })
    }
}

/// containerd's architecture and variant aliases.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = match (arch, variant) {
        ("i386" | "i486" | "i586" | "i686", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64", v) => ("amd64", v),
        ("aarch64" | "arm64", "8" | "v8") => ("arm64", ""),
        ("aarch64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5" | "6" | "8") => ("arm", variant),
        (a, v) => (a, v),
    };
    let variant = match (arch, variant) {
        ("arm", "5" | "6" | "8") => format!("v{variant}"),
        _ => variant.to_string(),
    };
    (arch.to_string(), variant)
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let platform = Platform::parse(input).map(|p| p.to_string());
        assert_eq!(platform.as_deref(), Ok(expected), "input {input:?}");
    }

    #[test]
    fn aliases_are_normalized() {
        check("linux/amd64", "linux/amd64");
        check("linux/x86_64", "linux/amd64");
        check("linux/arm64/v8", "linux/arm64");
        check("linux/aarch64", "linux/arm64");
        check("linux/arm", "linux/arm/v7");
        check("linux/arm/6", "linux/arm/v6");
        check("linux/armhf", "linux/arm/v7");
        check("Linux/ARM64", "linux/arm64");
        check("arm64", "linux/arm64");
        check("windows/amd64", "windows/amd64");
    }

    #[test]
    fn malformed_platforms_are_refused() {
        for input in [
            "",
            "linux/",
            "/amd64",
            "linux/amd64/v1/x",
            "plan9x/amd64",
            "linux/a b",
        ] {
            assert!(Platform::parse(input).is_err(), "input {input:?}");
        }
    }
}
