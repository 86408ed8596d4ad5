//! `RIA_REGISTRY_ENDPOINTS`: registry names served from another endpoint, such as a mirror
//! of `ghcr.io` or a local registry standing in for it in a simulated runner.
//!
//! The value is a comma-separated list of `NAME=URL` (`ghcr.io=http://127.0.0.1:5000`).
//! References, tags, credentials and messages keep the name; only the connection goes to
//! the URL, with its scheme.

/// The variable read.
pub const VARIABLE: &str = "RIA_REGISTRY_ENDPOINTS";

/// Where `registry` is served: `(host[:port], plain_http)`, when the variable maps it.
pub fn endpoint(registry: &str) -> Option<(String, bool)> {
    let value = std::env::var(VARIABLE).ok()?;
    lookup(&value, registry)
}

fn lookup(value: &str, registry: &str) -> Option<(String, bool)> {
    value.split(',').find_map(|pair| {
        let (name, url) = pair.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case(registry) {
            return None;
        }
        let url = url.trim().trim_end_matches('/');
        match url.split_once("://") {
            Some(("http", host)) => Some((host.to_string(), true)),
            Some(("https", host)) => Some((host.to_string(), false)),
            Some(_) => None,
            None => Some((url.to_string(), false)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::lookup;

    #[test]
    fn names_map_to_endpoints_with_their_scheme() {
        let value = "ghcr.io=http://127.0.0.1:5000/, quay.io=https://mirror.example";
        assert_eq!(
            lookup(value, "ghcr.io"),
            Some(("127.0.0.1:5000".into(), true))
        );
        assert_eq!(
            lookup(value, "GHCR.io"),
            Some(("127.0.0.1:5000".into(), true))
        );
        assert_eq!(
            lookup(value, "quay.io"),
            Some(("mirror.example".into(), false))
        );
        assert_eq!(lookup(value, "docker.io"), None);
        assert_eq!(lookup("x=ftp://y", "x"), None);
    }
}
