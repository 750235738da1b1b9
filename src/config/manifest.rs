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

/// A file that is not YAML; names the document (1-based).
#[derive(Debug, thiserror::Error)]
#[error("document {document}: invalid YAML: {source}")]
pub struct ManifestError {
    pub document: usize,
    #[source]
    pub source: serde_yaml_ng::Error,
}

/// Splits multi-document YAML into ConfigMap manifests; other kinds are listed in `skipped`.
pub fn check_manifests(text: &str, saturation_name: &str) -> Result<CheckReport, ManifestError> {
    let mut report = CheckReport::default();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(document).map_err(
            |source| ManifestError {
                document: index + 1,
                source,
            },
        )?;
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
                let key = k.as_str().unwrap_or_default().to_owned();
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
    match outcome {
        Ok(warnings) => report.warnings.extend(warnings.iter().map(prefix)),
        Err(errors) => report.errors.extend(errors.iter().map(prefix)),
    }
    report.checked.push((manifest.name.clone(), kind));
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
