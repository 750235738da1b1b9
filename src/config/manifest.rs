//! ConfigMap manifests as files (`wva check-config`): multi-document YAML in, the wva
//! ConfigMaps recognised by name, every problem out as `<configmap>/<key>: <message>`.
//! Pure: the caller reads the file.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Problem, SaturationConfigSet, ScaleToZeroConfigSet, saturation, scale_to_zero};

/// Which wva ConfigMap a manifest is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigMapKind {
    Saturation,
    ScaleToZero,
}

/// Recognises a ConfigMap by name: the configured saturation name, or a name that is or ends in
/// `-saturation-scaling-config` / `-model-scale-to-zero-config` (Helm and v0.5.1 add prefixes).
pub fn kind_of(name: &str, saturation_name: &str) -> Option<ConfigMapKind> {
    let matches = |suffix: &str| name == suffix || name.ends_with(&format!("-{suffix}"));
    if name == saturation_name || matches(saturation::CONFIG_MAP_NAME) {
        Some(ConfigMapKind::Saturation)
    } else if matches(scale_to_zero::CONFIG_MAP_NAME) {
        Some(ConfigMapKind::ScaleToZero)
    } else {
        None
    }
}

/// The CEL expression of the validating webhook's `matchConditions` that sends exactly the
/// ConfigMaps [`kind_of`] recognises to the webhook (the shipped manifest and the chart use it).
pub fn match_condition(saturation_name: &str) -> String {
    let mut names = vec![saturation::CONFIG_MAP_NAME, scale_to_zero::CONFIG_MAP_NAME];
    let mut terms: Vec<String> = Vec::new();
    if !names.contains(&saturation_name) {
        terms.push(format!("object.metadata.name == '{saturation_name}'"));
    }
    for suffix in names.drain(..) {
        terms.push(format!(
            "object.metadata.name == '{suffix}' || object.metadata.name.endsWith('-{suffix}')"
        ));
    }
    terms.join(" || ")
}

/// One ConfigMap document.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigMapManifest {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

/// What checking one file found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckReport {
    /// `<configmap>/<key>: <message>` lines that make the file invalid.
    pub errors: Vec<String>,
    /// Accepted but suspicious (unknown fields, shadowed overrides).
    pub warnings: Vec<String>,
    /// Names of the wva ConfigMaps checked, with their kind.
    pub checked: Vec<(String, ConfigMapKind)>,
    /// Documents that are not wva ConfigMaps, by a description.
    pub skipped: Vec<String>,
}

/// A file that cannot be checked.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML; names the document (1-based).
    #[error("document {document}: invalid YAML: {source}")]
    Yaml {
        document: usize,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error(
        "{0} bytes is more than any ConfigMap the API server accepts (1 MiB); refused unread (at most {MAX_MANIFEST_BYTES} bytes)"
    )]
    TooLarge(usize),
}

/// The largest manifest file read: the API server's 1 MiB object limit plus room for several
/// small documents. Larger input is refused before parsing.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024 + 256 * 1024;

/// Splits multi-document YAML into ConfigMap manifests; other kinds are listed in `skipped`.
/// A UTF-8 byte-order mark is accepted; merge keys (`<<`) are applied as Go's YAML does.
pub fn check_manifests(text: &str, saturation_name: &str) -> Result<CheckReport, ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge(text.len()));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut report = CheckReport::default();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let invalid = |source| ManifestError::Yaml {
            document: index + 1,
            source,
        };
        let mut value =
            <serde_yaml_ng::Value as serde::Deserialize>::deserialize(document).map_err(invalid)?;
        value.apply_merge().map_err(invalid)?;
        if value.is_null() {
            continue;
        }
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("");
        if kind != "ConfigMap" {
            report.skipped.push(format!(
                "document {}: kind {kind:?} is not a ConfigMap",
                index + 1
            ));
            continue;
        }
        let Some(cm_kind) = kind_of(name, saturation_name) else {
            report.skipped.push(format!(
                "ConfigMap {name:?}: not a wva ConfigMap (names end in {} or {})",
                saturation::CONFIG_MAP_NAME,
                scale_to_zero::CONFIG_MAP_NAME
            ));
            continue;
        };
        let mut data = BTreeMap::new();
        if let Some(mapping) = value.get("data").and_then(|d| d.as_mapping()) {
            for (k, v) in mapping {
                let Some(key) = k.as_str().map(str::to_owned) else {
                    let shown = serde_yaml_ng::to_string(k).unwrap_or_default();
                    report.errors.push(format!(
                        "{name}: data key {} is not a string; quote it (\"{}\")",
                        shown.trim(),
                        shown.trim()
                    ));
                    continue;
                };
                match v.as_str() {
                    Some(s) => {
                        data.insert(key, s.to_owned());
                    }
                    None => report.errors.push(format!(
                        "{name}/{key}: ConfigMap data values must be strings (use a `|` block for YAML settings)"
                    )),
                }
            }
        }
        let manifest = ConfigMapManifest {
            name: name.to_owned(),
            data,
        };
        check_config_map(&manifest, cm_kind, &mut report);
    }
    Ok(report)
}

/// Checks one recognised ConfigMap and adds its problems to `report`.
pub fn check_config_map(
    manifest: &ConfigMapManifest,
    kind: ConfigMapKind,
    report: &mut CheckReport,
) {
    let outcome: Result<Vec<Problem>, Vec<Problem>> = match kind {
        ConfigMapKind::Saturation => {
            SaturationConfigSet::parse_config_map_data(&manifest.data).map(|p| p.warnings)
        }
        ConfigMapKind::ScaleToZero => {
            ScaleToZeroConfigSet::parse_config_map_data(&manifest.data).map(|p| p.warnings)
        }
    };
    let prefix = |p: &Problem| format!("{}/{p}", manifest.name);
    for key in manifest.data.keys() {
        if let Err(why) = check_data_key(key) {
            report
                .errors
                .push(format!("{}/{key}: {why}", manifest.name));
        }
    }
    match outcome {
        Ok(warnings) => report.warnings.extend(warnings.iter().map(prefix)),
        Err(errors) => report.errors.extend(errors.iter().map(prefix)),
    }
    report.checked.push((manifest.name.clone(), kind));
}

/// A ConfigMap data key the API server accepts: 1 to 253 characters of `[-._a-zA-Z0-9]`.
pub fn check_data_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() || key.len() > 253 {
        return Err("a ConfigMap data key must be 1 to 253 characters long");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(
            "a ConfigMap data key must consist of alphanumeric characters, '-', '_' or '.' (the API server refuses it)",
        );
    }
    Ok(())
}

/// Parses ConfigMap data (a YAML document per key) with `parse`, the entry parser the
/// snapshots use too. An entry whose YAML is unreadable is reported once, not again by `parse`
/// (e.g. as a missing `default`).
pub fn parse_data<T>(
    data: &BTreeMap<String, String>,
    parse: impl FnOnce(&BTreeMap<String, Value>) -> Result<super::Parsed<T>, Vec<Problem>>,
) -> Result<super::Parsed<T>, Vec<Problem>> {
    let (values, mut problems) = entries_as_json(data);
    match parse(&values) {
        Ok(parsed) if problems.is_empty() => Ok(parsed),
        Ok(_) => Err(problems),
        Err(more) => {
            let unreadable: Vec<String> = problems.iter().map(|p| p.path.clone()).collect();
            problems.extend(more.into_iter().filter(|p| !unreadable.contains(&p.path)));
            problems.sort_by(|a, b| a.path.cmp(&b.path));
            Err(problems)
        }
    }
}

/// Parses every value of ConfigMap data as YAML; keys whose YAML is unreadable are reported
/// and left out.
pub fn entries_as_json(data: &BTreeMap<String, String>) -> (BTreeMap<String, Value>, Vec<Problem>) {
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, text) in data {
        match super::yaml_entry_to_json(text) {
            Ok(value) => {
                values.insert(key.clone(), value);
            }
            Err(message) => problems.push(Problem::new(key.as_str(), message)),
        }
    }
    (values, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> CheckReport {
        check_manifests(text, saturation::CONFIG_MAP_NAME).unwrap()
    }

    const VALID: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: saturation-scaling-config\ndata:\n  default: |\n    kvCacheThreshold: 0.8\n";

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let report = check(&format!("\u{feff}{VALID}"));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.checked.len(), 1);
    }

    #[test]
    fn merge_keys_are_applied_before_checking() {
        // Inside an entry: the merged-in threshold is checked like a written one.
        let inside = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: saturation-scaling-config\ndata:\n  default: |\n    base: &b {kvCacheThreshold: 9}\n    <<: *b\n";
        let report = check(inside);
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.contains("kvCacheThreshold must be between 0 and 1, got 9.00")),
            "{:?}",
            report.errors
        );
        // In the manifest: data merged from an anchor.
        let outside = "x: &d\n  default: \"kvCacheThreshold: 9\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: saturation-scaling-config\ndata:\n  <<: {default: \"kvCacheThreshold: 7\"}\n";
        let report = check(outside);
        assert!(
            report.errors.iter().any(|e| e.contains("got 7.00")),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn keys_the_api_server_refuses_are_reported_by_name() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: saturation-scaling-config\ndata:\n  default: \"kvCacheThreshold: 0.8\"\n  bad key/x: \"kvCacheThreshold: 0.8\"\n  7: \"kvCacheThreshold: 0.8\"\n";
        let report = check(text);
        assert!(
            report.errors.iter().any(|e| e.starts_with(
                "saturation-scaling-config/bad key/x: a ConfigMap data key must consist"
            )),
            "{:?}",
            report.errors
        );
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.contains("data key 7 is not a string")),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn oversized_input_is_refused_unread() {
        let big = format!("{VALID}#{}\n", "x".repeat(MAX_MANIFEST_BYTES));
        assert!(matches!(
            check_manifests(&big, saturation::CONFIG_MAP_NAME),
            Err(ManifestError::TooLarge(_))
        ));
    }

    #[test]
    fn the_match_condition_lists_the_recognised_names() {
        assert_eq!(
            match_condition("saturation-scaling-config"),
            "object.metadata.name == 'saturation-scaling-config' || object.metadata.name.endsWith('-saturation-scaling-config') || object.metadata.name == 'model-scale-to-zero-config' || object.metadata.name.endsWith('-model-scale-to-zero-config')"
        );
    }
}
