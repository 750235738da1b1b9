//! The scale-to-zero ConfigMap (upstream `internal/config/scale_to_zero.go`, fixed name `model-scale-to-zero-config`): which models
//! may go to zero replicas after how long without requests. Unlike upstream, the `namespace` of
//! an override is honoured, and invalid entries are errors instead of being skipped.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::duration::{DurationError, MINUTE, Nanos, format_go_duration, parse_go_duration};
use super::{DEFAULT_KEY, EntryReader, ModelOverride, Parsed, Problem, select_override};

/// The ConfigMap's name (not configurable upstream).
pub const CONFIG_MAP_NAME: &str = "model-scale-to-zero-config";
/// Retention period when none is configured.
pub const DEFAULT_RETENTION_PERIOD: Nanos = 10 * MINUTE;

const KNOWN_FIELDS: [&str; 4] = [
    "enable_scale_to_zero",
    "retention_period",
    "model_id",
    "namespace",
];

/// One entry of the scale-to-zero ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelScaleToZeroConfig {
    /// Absent = inherit (override → `default` → `WVA_SCALE_TO_ZERO` → false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_scale_to_zero: Option<bool>,
    /// How long a model must have had no successful request before it goes to zero, as a Go
    /// duration (`15m`). Absent = inherit (override → `default` → 10m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip)]
    retention_nanos: Option<Nanos>,
}

impl ModelOverride for ModelScaleToZeroConfig {
    fn model_id(&self) -> Option<&str> {
        self.model_id.as_deref()
    }
    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

/// Upstream's `ValidateRetentionPeriod` (docs/upstream.md#configuration), same messages.
pub fn validate_retention_period(text: &str) -> Result<Nanos, DurationError> {
    if text.is_empty() {
        return Err("retention period cannot be empty".into());
    }
    let nanos = parse_go_duration(text)
        .map_err(|e| DurationError(format!("invalid duration format: {e}")))?;
    if nanos <= 0 {
        return Err(DurationError(format!(
            "retention period must be positive, got {}",
            format_go_duration(nanos)
        )));
    }
    Ok(nanos)
}

/// All entries of the scale-to-zero ConfigMap, plus the lowest-priority default
/// (`WVA_SCALE_TO_ZERO`, read by the caller; `wva analyze` leaves it false).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ScaleToZeroConfigSet {
    entries: BTreeMap<String, ModelScaleToZeroConfig>,
    #[serde(skip)]
    env_default_enabled: bool,
}

impl ScaleToZeroConfigSet {
    /// Parses entries (data key → settings object). Every key but `default` needs `model_id`.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = (&'a String, &'a Value)>,
    ) -> Result<Parsed<Self>, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut parsed = BTreeMap::new();
        let raw: BTreeMap<&String, &Value> = entries.into_iter().collect();
        for (key, value) in raw {
            let Some(mut reader) = EntryReader::new(key, value, &mut problems) else {
                continue;
            };
            let mut entry = ModelScaleToZeroConfig {
                enable_scale_to_zero: reader.boolean("enable_scale_to_zero"),
                retention_period: None,
                model_id: reader.string("model_id"),
                namespace: reader.string("namespace"),
                retention_nanos: None,
            };
            match value.get("retention_period").filter(|v| !v.is_null()) {
                None => {}
                Some(Value::String(s)) if s.is_empty() => {}
                Some(Value::String(s)) => match validate_retention_period(s) {
                    Ok(nanos) => {
                        entry.retention_period = Some(s.clone());
                        entry.retention_nanos = Some(nanos);
                    }
                    Err(message) => reader.problems.push(Problem::new(
                        key.as_str(),
                        format!("retention_period: {message}"),
                    )),
                },
                Some(other) => reader.problems.push(Problem::new(
                    key.as_str(),
                    format!(
                        "retention_period must be a Go duration string such as \"15m\", got {}",
                        super::describe(other)
                    ),
                )),
            }
            warnings.extend(reader.unknown_fields(&KNOWN_FIELDS));
            if key != DEFAULT_KEY && entry.model_id.as_deref().is_none_or(str::is_empty) {
                reader.problems.push(Problem::new(
                    key.as_str(),
                    "model_id is required in an override entry (every key other than \"default\" overrides one model)",
                ));
            }
            if reader.problems.is_empty() {
                parsed.insert(key.clone(), entry);
            } else {
                problems.append(&mut reader.problems);
            }
        }
        warnings.extend(super::saturation::shadowed(
            parsed.iter().map(|(k, e)| (k, e.model_id(), e.namespace())),
        ));
        if problems.is_empty() {
            Ok(Parsed {
                value: Self {
                    entries: parsed,
                    env_default_enabled: false,
                },
                warnings,
            })
        } else {
            Err(problems)
        }
    }

    /// Parses ConfigMap data: every value is a YAML document.
    pub fn parse_config_map_data(
        data: &BTreeMap<String, String>,
    ) -> Result<Parsed<Self>, Vec<Problem>> {
        super::manifest::parse_data(data, |values| Self::parse(values.iter()))
    }

    /// Sets the lowest-priority default (`WVA_SCALE_TO_ZERO=true`). When enabled it is also
    /// written into the `default` entry (where that entry does not decide), which means the same
    /// for every model and makes a serialised snapshot carry it: `wva analyze` replays a
    /// controller's dump to the same decisions whatever its environment.
    pub fn with_env_default(mut self, enabled: bool) -> Self {
        self.env_default_enabled = enabled;
        if enabled {
            let entry = self.entries.entry(DEFAULT_KEY.to_owned()).or_default();
            entry.enable_scale_to_zero.get_or_insert(true);
        }
        self
    }

    fn entry_for(&self, namespace: &str, model_id: &str) -> Option<&ModelScaleToZeroConfig> {
        select_override(self.entries.iter(), namespace, model_id).map(|(_, e)| e)
    }

    fn default_entry(&self) -> Option<&ModelScaleToZeroConfig> {
        self.entries.get(DEFAULT_KEY)
    }

    /// Whether the model may scale to zero: its override's setting, else `default`'s, else the
    /// environment default, else false.
    pub fn enabled(&self, namespace: &str, model_id: &str) -> bool {
        self.entry_for(namespace, model_id)
            .and_then(|e| e.enable_scale_to_zero)
            .or_else(|| self.default_entry().and_then(|e| e.enable_scale_to_zero))
            .unwrap_or(self.env_default_enabled)
    }

    /// How long without requests before the model goes to zero: its override's period, else
    /// `default`'s, else 10 minutes.
    pub fn retention_period(&self, namespace: &str, model_id: &str) -> Nanos {
        self.entry_for(namespace, model_id)
            .and_then(|e| e.retention_nanos)
            .or_else(|| self.default_entry().and_then(|e| e.retention_nanos))
            .unwrap_or(DEFAULT_RETENTION_PERIOD)
    }

    /// All entries by key.
    pub fn entries(&self) -> &BTreeMap<String, ModelScaleToZeroConfig> {
        &self.entries
    }
}

#[cfg(test)]
mod tests;
