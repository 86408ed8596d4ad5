//! Choosing the backend: the one `--isolation` names, or the strongest this environment
//! allows, with one log line saying which and why.
//!
//! `auto` tries, in order: `namespace` (its probe succeeds), `container` (the builder's own
//! image, see [`ContainerBackend::detect`]), `chroot` (a helper may `chroot`). When none is
//! usable the error lists why each was refused.

use super::chroot::ChrootBackend;
use super::container::{ContainerBackend, detect_reason};
use super::{Backend, Isolation, SandboxError, SelectOptions};
use crate::store::Store;

/// Picks and creates the backend for `options`; returns it with the log line explaining the
/// choice, such as `isolation: container (RIA_CONTAINER=1 in a container: ... ; namespace:
/// no permission to mount: operation not permitted)`.
///
/// `namespace_probe` says whether the namespace backend can work here and `namespace`
/// creates it: they are the namespace module's, passed in so this choice does not depend on
/// how that backend is built.
pub fn select(
    store: &Store,
    options: &SelectOptions,
    namespace_probe: impl Fn() -> Result<(), String>,
    namespace: impl FnOnce() -> Box<dyn Backend>,
) -> Result<(Box<dyn Backend>, String), SandboxError> {
    let container_probe = || detect_reason(options);
    let chroot_probe = || ChrootBackend::probe(store).map(|()| "chroot is permitted".to_string());
    let namespace_probe =
        || namespace_probe().map(|()| "namespaces and overlay mounts are available".to_string());
    let probes = Probes {
        namespace: &namespace_probe,
        container: &container_probe,
        chroot: &chroot_probe,
    };
    let (isolation, line) =
        choose(options.isolation, &probes).map_err(SandboxError::Unavailable)?;
    let backend: Box<dyn Backend> = match isolation {
        Isolation::Namespace => namespace(),
        Isolation::Container => Box::new(ContainerBackend::new(store, options)?),
        Isolation::Chroot => Box::new(ChrootBackend::new(store)?),
        Isolation::Auto => unreachable_auto()?,
    };
    Ok((backend, line))
}

/// `choose` never picks `auto`; reaching it is a bug reported as an error, not a panic.
fn unreachable_auto() -> Result<Box<dyn Backend>, SandboxError> {
    Err(SandboxError::Unavailable(
        "internal error: backend selection returned `auto`".to_string(),
    ))
}

/// Each backend's check: why it can run (for the log line), or why not.
struct Probes<'a> {
    namespace: &'a dyn Fn() -> Result<String, String>,
    container: &'a dyn Fn() -> Result<String, String>,
    chroot: &'a dyn Fn() -> Result<String, String>,
}

impl Probes<'_> {
    fn check(&self, isolation: Isolation) -> Result<String, String> {
        match isolation {
            Isolation::Namespace => (self.namespace)(),
            Isolation::Container => (self.container)(),
            Isolation::Chroot => (self.chroot)(),
            Isolation::Auto => Err("`auto` is not a backend".to_string()),
        }
    }
}

/// The backend to use and the log line, or why none can be.
fn choose(requested: Isolation, probes: &Probes<'_>) -> Result<(Isolation, String), String> {
    if requested != Isolation::Auto {
        let name = requested.as_str();
        return match probes.check(requested) {
            Ok(why) => Ok((
                requested,
                format!("isolation: {name} (--isolation {name}; {why})"),
            )),
            Err(why) => Err(format!(
                "`--isolation {name}` cannot be used here: {why}\nhint: leave `--isolation` \
                 at `auto` to use the strongest backend available"
            )),
        };
    }
    let mut refusals: Vec<String> = Vec::new();
    for isolation in [
        Isolation::Namespace,
        Isolation::Container,
        Isolation::Chroot,
    ] {
        match probes.check(isolation) {
            Ok(why) => {
                let mut reasons = vec![why];
                reasons.extend(refusals);
                let line = format!("isolation: {} ({})", isolation.as_str(), reasons.join("; "));
                return Ok((isolation, line));
            }
            Err(why) => refusals.push(format!("{}: {why}", isolation.as_str())),
        }
    }
    Err(format!(
        "no way to isolate RUN steps here: {}\nhint: run as root (or with user namespaces \
         enabled) for the namespace backend, or run the builder's own image",
        refusals.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(why: &str) -> Result<String, String> {
        Ok(why.to_string())
    }

    fn no(why: &str) -> Result<String, String> {
        Err(why.to_string())
    }

    /// Runs `choose` with fixed probe answers for namespace, container and chroot.
    fn check(
        requested: Isolation,
        answers: [Result<String, String>; 3],
        expected: Result<(Isolation, &str), &str>,
    ) {
        let [namespace, container, chroot] = answers;
        let probes = Probes {
            namespace: &move || namespace.clone(),
            container: &move || container.clone(),
            chroot: &move || chroot.clone(),
        };
        let got = choose(requested, &probes);
        match expected {
            Ok((isolation, line)) => assert_eq!(got, Ok((isolation, line.to_string()))),
            Err(text) => {
                let error = got.expect_err("must be refused");
                assert!(error.contains(text), "{error}");
            }
        }
    }

    #[test]
    fn auto_prefers_namespace() {
        check(
            Isolation::Auto,
            [
                ok("as root"),
                ok("RIA_CONTAINER=1"),
                ok("chroot is permitted"),
            ],
            Ok((Isolation::Namespace, "isolation: namespace (as root)")),
        );
    }

    #[test]
    fn auto_falls_back_to_container_saying_why() {
        check(
            Isolation::Auto,
            [
                no("no permission to mount: operation not permitted"),
                ok("RIA_CONTAINER=1"),
                ok("x"),
            ],
            Ok((
                Isolation::Container,
                "isolation: container (RIA_CONTAINER=1; namespace: no permission to mount: \
                 operation not permitted)",
            )),
        );
    }

    #[test]
    fn auto_falls_back_to_chroot() {
        check(
            Isolation::Auto,
            [
                no("no mounts"),
                no("not the builder's image"),
                ok("chroot is permitted"),
            ],
            Ok((
                Isolation::Chroot,
                "isolation: chroot (chroot is permitted; namespace: no mounts; container: not \
                 the builder's image)",
            )),
        );
    }

    #[test]
    fn auto_with_nothing_usable_lists_every_refusal() {
        check(
            Isolation::Auto,
            [
                no("no mounts"),
                no("not the builder's image"),
                no("chroot: operation not permitted"),
            ],
            Err(
                "no way to isolate RUN steps here: namespace: no mounts; container: not the \
                 builder's image; chroot: chroot: operation not permitted",
            ),
        );
    }

    #[test]
    fn explicit_isolation_is_used_only_when_available() {
        check(
            Isolation::Chroot,
            [ok("as root"), ok("x"), ok("chroot is permitted")],
            Ok((
                Isolation::Chroot,
                "isolation: chroot (--isolation chroot; chroot is permitted)",
            )),
        );
        check(
            Isolation::Namespace,
            [no("no permission to mount"), ok("x"), ok("y")],
            Err("`--isolation namespace` cannot be used here: no permission to mount"),
        );
        check(
            Isolation::Container,
            [ok("as root"), no("no sign of a container"), ok("y")],
            Err("`--isolation container` cannot be used here: no sign of a container"),
        );
    }

    #[test]
    fn select_builds_the_chosen_backend() {
        let (_tmp, store) = crate::sandbox::test_support::store();
        let options = SelectOptions {
            env: Some(Default::default()),
            ..SelectOptions::default()
        };
        // The factory's backend is returned as is: a chroot backend stands in for the
        // namespace one, which lives in another module.
        let (backend, line) = select(
            &store,
            &options,
            || Ok(()),
            || Box::new(ChrootBackend::new(&store).expect("backend")),
        )
        .expect("select");
        assert_eq!(backend.isolation(), Isolation::Chroot);
        assert_eq!(
            line,
            "isolation: namespace (namespaces and overlay mounts are available)"
        );
    }

    #[test]
    fn auto_outside_the_builders_image_lists_every_refusal() {
        let (_tmp, store) = crate::sandbox::test_support::store();
        let options = SelectOptions {
            isolation: Isolation::Auto,
            env: Some(Default::default()),
            ..SelectOptions::default()
        };
        // With no marker, `auto` never takes the container backend, wherever this runs; the
        // chroot probe runs this test binary, which has no helper modes and so never leaves
        // the probe's mark: refused too.
        let error = match select(
            &store,
            &options,
            || Err("no mounts".into()),
            || unreachable_box(),
        ) {
            Ok((backend, line)) => panic!("selected {:?}: {line}", backend.isolation()),
            Err(error) => error.to_string(),
        };
        assert!(
            error.contains("container: RIA_CONTAINER=1 is not set"),
            "{error}"
        );
        assert!(error.contains("namespace: no mounts"), "{error}");
        assert!(error.contains("chroot: the chroot probe"), "{error}");
    }

    fn unreachable_box() -> Box<dyn Backend> {
        panic!("the namespace factory must not be called when its probe fails")
    }
}
