//! OCI labels and annotations: the `org.opencontainers.image.*` keys computed from the
//! run, overridden by the `labels` and `annotations` inputs.
//!
//! The same computed keys go to the image config's labels, to each manifest's
//! annotations, and to the index's annotations of a multi-platform image (ghcr.io
//! reads a multi-platform package's description from the index). The `annotations`
//! input takes build-push-action's level prefix: `manifest:key=value` or
//! `index:key=value`, and no prefix means `manifest:`. Its descriptor levels and
//! per-platform qualifiers (`manifest[linux/amd64]:`) are rejected as unsupported;
//! so is a key holding `:` before its `=`, which would read as a level.

use std::collections::BTreeMap;

use crate::action::context::{GitHubContext, UtcTime};

/// `org.opencontainers.image.source`: links a ghcr.io package to its repository.
pub const SOURCE: &str = "org.opencontainers.image.source";
/// `org.opencontainers.image.revision`: the commit SHA.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// `org.opencontainers.image.created`: the commit time, RFC 3339.
pub const CREATED: &str = "org.opencontainers.image.created";
/// `org.opencontainers.image.version`: the first tag.
pub const VERSION: &str = "org.opencontainers.image.version";
/// `org.opencontainers.image.title`: the repository's name.
pub const TITLE: &str = "org.opencontainers.image.title";
/// `org.opencontainers.image.description`: the repository's description.
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
/// `org.opencontainers.image.url`: the repository's page.
pub const URL: &str = "org.opencontainers.image.url";
/// `org.opencontainers.image.licenses`: the repository's SPDX license.
pub const LICENSES: &str = "org.opencontainers.image.licenses";

/// Where an annotation of the `annotations` input goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationLevel {
    /// Each image manifest (`manifest:`, the default).
    Manifest,
    /// The image index of a multi-platform image (`index:`).
    Index,
}

/// One line of the `annotations` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Where it goes.
    pub level: AnnotationLevel,
    /// The annotation key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// Parses `[manifest:|index:]key=value`; the error says what is wrong.
pub fn parse_annotation(text: &str) -> Result<Annotation, String> {
    let shape = || format!("`{text}` is not [manifest:|index:]key=value");
    let (left, value) = text.split_once('=').ok_or_else(shape)?;
    let (level, key) = match left.split_once(':') {
        Some(("manifest", key)) => (AnnotationLevel::Manifest, key),
        Some(("index", key)) => (AnnotationLevel::Index, key),
        Some((level, _)) => {
            return Err(format!(
                "level `{level}` is not supported, accepted: manifest, index"
            ));
        }
        None => (AnnotationLevel::Manifest, left),
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(shape());
    }
    Ok(Annotation {
        level,
        key: key.to_string(),
        value: value.trim().to_string(),
    })
}

/// What [`image_metadata`] reads.
#[derive(Debug, Clone, Copy)]
pub struct LabelRequest<'a> {
    /// The run's context, with API-filled fields (description, license) already set.
    pub context: &'a GitHubContext,
    /// The image version: the first computed tag.
    pub version: Option<&'a str>,
    /// The creation time: `source-date-epoch` when given, else the commit time; never
    /// the wall clock, so rebuilding a commit yields the same labels.
    pub created: Option<UtcTime>,
    /// The `labels` input, applied over the computed labels in order.
    pub labels: &'a [(String, String)],
    /// The `annotations` input, applied over the computed annotations in order.
    pub annotations: &'a [Annotation],
}

/// Labels for the image config and annotations for manifests and the index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageMetadata {
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
    /// Each manifest's annotations.
    pub manifest_annotations: BTreeMap<String, String>,
    /// The index's annotations (used only for a multi-platform image).
    pub index_annotations: BTreeMap<String, String>,
}

/// Computes the OCI keys from the run and applies the user's labels and annotations.
/// A key whose value is unknown is left out rather than set empty.
pub fn image_metadata(request: &LabelRequest<'_>) -> ImageMetadata {
    let context = request.context;
    let page = context
        .html_url
        .clone()
        .unwrap_or_else(|| format!("{}/{}", context.server_url, context.repository));
    let title = context.repository.rsplit('/').next().unwrap_or_default();
    let computed = [
        (TITLE, Some(title.to_string())),
        (DESCRIPTION, context.description.clone()),
        (URL, Some(page.clone())),
        (SOURCE, Some(page)),
        (VERSION, request.version.map(str::to_string)),
        (CREATED, request.created.map(UtcTime::to_rfc3339)),
        (REVISION, Some(context.sha.clone())),
        (LICENSES, context.license.clone()),
    ];
    let base: BTreeMap<String, String> = computed
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_string(), value.filter(|v| !v.is_empty())?)))
        .collect();
    let mut metadata = ImageMetadata {
        labels: base.clone(),
        manifest_annotations: base.clone(),
        index_annotations: base,
    };
    // FIXME: user labels are taken literally; metadata-action expands the tag
    // templates (`{{branch}}`, `{{date ...}}`) in them. Fixed means rendering them
    // with `tags::Template` against the same context before applying them here.
    for (key, value) in request.labels {
        metadata.labels.insert(key.clone(), value.clone());
    }
    for annotation in request.annotations {
        let target = match annotation.level {
            AnnotationLevel::Manifest => &mut metadata.manifest_annotations,
            AnnotationLevel::Index => &mut metadata.index_annotations,
        };
        target.insert(annotation.key.clone(), annotation.value.clone());
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::context::fixtures;

    fn pairs(map: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
        map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn computed_from_a_push() {
        let context = fixtures::push_tag().context();
        let request = LabelRequest {
            context: &context,
            version: Some("1.2.3"),
            created: context.commit_time,
            labels: &[],
            annotations: &[],
        };
        let metadata = image_metadata(&request);
        let expected = [
            (CREATED, "2026-11-30T08:15:42Z"),
            (DESCRIPTION, "The Acme web application"),
            (LICENSES, "Apache-2.0"),
            (REVISION, fixtures::SHA),
            (SOURCE, "https://github.com/Acme-Corp/Web-App"),
            (TITLE, "Web-App"),
            (URL, "https://github.com/Acme-Corp/Web-App"),
            (VERSION, "1.2.3"),
        ];
        assert_eq!(pairs(&metadata.labels), expected);
        assert_eq!(metadata.manifest_annotations, metadata.labels);
        assert_eq!(metadata.index_annotations, metadata.labels);
    }

    #[test]
    fn unknown_values_are_left_out_and_source_falls_back() {
        // A schedule payload has no repository: no description, license, or page URL.
        let context = fixtures::schedule().context();
        let request = LabelRequest {
            context: &context,
            version: None,
            created: None,
            labels: &[],
            annotations: &[],
        };
        let metadata = image_metadata(&request);
        let expected = [
            (REVISION, fixtures::SHA),
            (SOURCE, "https://github.com/Acme-Corp/Web-App"),
            (TITLE, "Web-App"),
            (URL, "https://github.com/Acme-Corp/Web-App"),
        ];
        assert_eq!(pairs(&metadata.labels), expected);
    }

    #[test]
    fn user_values_override() {
        let context = fixtures::push_main().context();
        let labels = [
            (TITLE.to_string(), "Acme Web".to_string()),
            ("com.acme.team".to_string(), "web".to_string()),
        ];
        let annotations = [
            parse_annotation("index:org.opencontainers.image.description=Multi-arch web").unwrap(),
            parse_annotation("org.opencontainers.image.licenses=MIT").unwrap(),
        ];
        let request = LabelRequest {
            context: &context,
            version: Some("main"),
            created: Some(UtcTime::from_unix(1_700_000_000)),
            labels: &labels,
            annotations: &annotations,
        };
        let metadata = image_metadata(&request);
        assert_eq!(metadata.labels[TITLE], "Acme Web");
        assert_eq!(metadata.labels["com.acme.team"], "web");
        assert_eq!(metadata.labels[CREATED], "2023-11-14T22:13:20Z");
        assert_eq!(
            metadata.labels[LICENSES], "Apache-2.0",
            "annotations leave labels alone"
        );
        assert_eq!(metadata.manifest_annotations[LICENSES], "MIT");
        assert_eq!(
            metadata.manifest_annotations[TITLE], "Web-App",
            "labels leave annotations"
        );
        assert_eq!(metadata.index_annotations[DESCRIPTION], "Multi-arch web");
        assert_eq!(
            metadata.manifest_annotations[DESCRIPTION],
            "The Acme web application"
        );
    }

    #[test]
    fn annotation_syntax() {
        let ok = [
            ("a=b", AnnotationLevel::Manifest, "a", "b"),
            ("manifest:a=b=c", AnnotationLevel::Manifest, "a", "b=c"),
            ("index: a = b ", AnnotationLevel::Index, "a", "b"),
            ("index:a=", AnnotationLevel::Index, "a", ""),
        ];
        for (text, level, key, value) in ok {
            let annotation = parse_annotation(text).unwrap();
            assert_eq!(
                (annotation.level, annotation.key.as_str()),
                (level, key),
                "{text}"
            );
            assert_eq!(annotation.value, value, "{text}");
        }
        let bad = [
            ("novalue", "`novalue` is not [manifest:|index:]key=value"),
            ("index:=x", "`index:=x` is not [manifest:|index:]key=value"),
            (
                "manifest-descriptor:a=b",
                "level `manifest-descriptor` is not supported, accepted: manifest, index",
            ),
            (
                "manifest[linux/amd64]:a=b",
                "level `manifest[linux/amd64]` is not supported, accepted: manifest, index",
            ),
        ];
        for (text, expected) in bad {
            assert_eq!(parse_annotation(text).unwrap_err(), expected, "{text}");
        }
    }
}
