//! `build --push`: the built image to every repository its tags name, with credentials
//! resolved per registry and base layers mounted from their own repositories.

use std::collections::BTreeMap;

use super::report::{Event, Reporter};
use super::{BuildError, BuildOptions, BuildOutcome};
use crate::registry::{
    self, Authenticator, ExplicitCredentials, ImageRef, PushBlob, PushOptions, resolve_credentials,
};
use crate::store::Store;

/// The tags given, grouped by the repository they push to, in a stable order.
fn group_tags(tags: &[String]) -> Result<BTreeMap<(String, String), Vec<String>>, BuildError> {
    if tags.is_empty() {
        return Err(BuildError::Options(
            "--push needs at least one `-t REGISTRY/REPOSITORY[:TAG]` to know where to push"
                .to_string(),
        ));
    }
    let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for tag in tags {
        let reference = ImageRef::parse(tag).map_err(|e| BuildError::Options(e.to_string()))?;
        let name = reference
            .tag
            .clone()
            .unwrap_or_else(|| "latest".to_string());
        let names = groups
            .entry((reference.registry, reference.repository))
            .or_default();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(groups)
}

/// The blobs to push: config and layers, each base layer with its own repository as a
/// mount source when it lives in the target's registry.
fn push_blobs(outcome: &BuildOutcome, registry: &str) -> Vec<PushBlob> {
    outcome
        .layers
        .iter()
        .map(|layer| {
            let mount_from = layer
                .source
                .as_deref()
                .and_then(|source| ImageRef::parse(source).ok())
                .filter(|source| source.registry == registry)
                .map(|source| source.repository);
            PushBlob {
                descriptor: crate::oci::Descriptor {
                    media_type: layer.media_type.clone(),
                    digest: layer.digest,
                    size: layer.size,
                    annotations: None,
                    platform: None,
                },
                mount_from,
            }
        })
        .collect()
}

/// Pushes `outcome` to every repository of `options.tags`.
pub fn push(
    store: &Store,
    outcome: &BuildOutcome,
    layers: &[super::stage::LayerRecord],
    options: &BuildOptions,
    credentials: Option<&ExplicitCredentials>,
    reporter: &dyn Reporter,
) -> Result<(), BuildError> {
    let push_options = PushOptions {
        insecure_registries: options.insecure_registries.clone(),
        extra_ca: options.registry_ca.clone(),
        ..PushOptions::default()
    };
    for ((registry, repository), tags) in group_tags(&options.tags)? {
        // Layers the target registry cannot mount must be uploaded, so their bytes are
        // needed here; mountable ones stay unfetched.
        let foreign: Vec<super::stage::LayerRecord> = layers
            .iter()
            .filter(|l| {
                l.source
                    .as_deref()
                    .and_then(|s| ImageRef::parse(s).ok())
                    .is_none_or(|s| s.registry != registry)
            })
            .cloned()
            .collect();
        super::sources::ensure_blobs(store, &foreign, &options.registry_access())
            .map_err(BuildError::Options)?;
        let target = ImageRef::parse(&format!("{registry}/{repository}"))
            .map_err(|e| BuildError::Options(e.to_string()))?;
        let env = |name: &str| std::env::var(name).ok();
        let credential = resolve_credentials(&registry, credentials.cloned(), &env)
            .map_err(|e| BuildError::Credentials(Box::new(e)))?;
        let http =
            registry::http_client(&push_options).map_err(|e| BuildError::Push(Box::new(e)))?;
        let base = registry::base_url(&registry, &options.insecure_registries);
        let auth = Authenticator::new(http, base, registry.clone(), credential);
        let blobs = push_blobs(outcome, &registry);
        let report = registry::push_image_blocking(
            store,
            &outcome.manifest,
            &blobs,
            &target,
            &tags,
            &auth,
            &push_options,
        )
        .map_err(|e| BuildError::Push(Box::new(e)))?;
        reporter.report(&Event::Pushed {
            reference: format!("{registry}/{repository}"),
            tags: report.tags.clone(),
            uploaded: report.blobs_uploaded,
            mounted: report.blobs_mounted,
            existing: report.blobs_existing,
            bytes: report.blob_bytes_sent,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_group_by_repository() {
        let tags: Vec<String> = [
            "ghcr.io/acme/app:1",
            "ghcr.io/acme/app:latest",
            "localhost:5000/x",
            "ghcr.io/acme/app:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let groups = group_tags(&tags).unwrap_or_default();
        let keys: Vec<String> = groups.keys().map(|(r, p)| format!("{r}/{p}")).collect();
        assert_eq!(keys, ["ghcr.io/acme/app", "localhost:5000/x"]);
        assert_eq!(
            groups[&("ghcr.io".to_string(), "acme/app".to_string())],
            ["1", "latest"]
        );
        assert!(group_tags(&[]).is_err());
        assert!(group_tags(&["ghcr.io/Acme/App:1".to_string()]).is_err());
    }
}
