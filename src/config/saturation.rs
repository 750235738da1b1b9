//! The saturation-scaling ConfigMap (upstream `SaturationScalingConfig`, docs/upstream.md#configuration): thresholds that say when a replica is saturated
//! and when a model needs another replica. Unlike upstream, overrides are applied, missing fields
//! are filled in (documented defaults for `default`, inherited from `default` for overrides) and
//! invalid entries are errors instead of being skipped silently.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::duration::{MINUTE, Nanos, format_go_duration, parse_go_duration};
use super::next::NextSettings;
use super::{DEFAULT_KEY, EntryReader, ModelOverride, Parsed, Problem, select_override};

/// Default name of the ConfigMap (env `SATURATION_CONFIG_MAP_NAME`; Helm prefixes the release).
pub const CONFIG_MAP_NAME: &str = "saturation-scaling-config";

const KNOWN_FIELDS: [&str; 8 + super::next::FIELDS.len()] = concat_fields([
    "kvCacheThreshold",
    "queueLengthThreshold",
    "kvSpareTrigger",
    "queueSpareTrigger",
    "enableLimiter",
    "maxPendingDuration",
    "model_id",
    "namespace",
]);

/// Upstream's fields followed by `wva-next`'s.
const fn concat_fields(
    upstream: [&'static str; 8],
) -> [&'static str; 8 + super::next::FIELDS.len()] {
    let mut all = [""; 8 + super::next::FIELDS.len()];
    let mut i = 0;
    while i < 8 {
        all[i] = upstream[i];
        i += 1;
    }
    while i < all.len() {
        all[i] = super::next::FIELDS[i - 8];
        i += 1;
    }
    all
}

/// One entry of the saturation-scaling ConfigMap, after filling-in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SaturationScalingConfig {
    /// A replica is saturated when its KV-cache use is `>=` this (0..1).
    #[serde(rename = "kvCacheThreshold")]
    pub kv_cache_threshold: f64,
    /// A replica is saturated when its queue length is `>=` this (>= 0).
    #[serde(rename = "queueLengthThreshold")]
    pub queue_length_threshold: f64,
    /// Scale up when the average spare KV capacity of unsaturated replicas is `<` this (0..1).
    #[serde(rename = "kvSpareTrigger")]
    pub kv_spare_trigger: f64,
    /// Scale up when the average spare queue capacity of unsaturated replicas is `<` this.
    #[serde(rename = "queueSpareTrigger")]
    pub queue_spare_trigger: f64,
    /// GPU limiter on/off (only the `default` entry's value counts).
    #[serde(rename = "enableLimiter")]
    pub enable_limiter: bool,
    /// Beyond upstream: a pod not Ready this long after creation is stuck (a Go duration in the
    /// ConfigMap, default `15m`; model weights load in 2–7 minutes).
    #[serde(
        rename = "maxPendingDuration",
        serialize_with = "serialize_duration",
        skip_serializing_if = "is_default_pending"
    )]
    pub max_pending_duration: Nanos,
    /// Beyond upstream: the `wva-next` policy's settings (only non-default ones serialised).
    #[serde(flatten)]
    pub next: NextSettings,
    /// Override entries: the model they apply to.
    #[serde(rename = "model_id", skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Override entries: the namespace they are limited to (absent or "" = every namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The default `maxPendingDuration`.
pub const DEFAULT_MAX_PENDING_DURATION: Nanos = 15 * MINUTE;

fn is_default_pending(nanos: &Nanos) -> bool {
    *nanos == DEFAULT_MAX_PENDING_DURATION
}

fn serialize_duration<S: serde::Serializer>(
    nanos: &Nanos,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_go_duration(*nanos))
}

impl Default for SaturationScalingConfig {
    /// The documented defaults (upstream's shipped ConfigMap): 0.8 / 5 / 0.1 / 3, limiter off.
    fn default() -> Self {
        Self {
            kv_cache_threshold: 0.8,
            queue_length_threshold: 5.0,
            kv_spare_trigger: 0.1,
            queue_spare_trigger: 3.0,
            enable_limiter: false,
            max_pending_duration: DEFAULT_MAX_PENDING_DURATION,
            next: NextSettings::default(),
            model_id: None,
            namespace: None,
        }
    }
}

impl ModelOverride for SaturationScalingConfig {
    fn model_id(&self) -> Option<&str> {
        self.model_id.as_deref()
    }
    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

/// The largest queue threshold or trigger accepted (a million waiting requests).
pub const MAX_QUEUE_SETTING: f64 = 1e6;

impl SaturationScalingConfig {
    /// Upstream's `Validate()` rules in upstream's order and wording (docs/upstream.md#configuration); every failing
    /// rule is reported, not only the first.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(0.0..=1.0).contains(&self.kv_cache_threshold) {
            problems.push(format!(
                "kvCacheThreshold must be between 0 and 1, got {:.2}",
                self.kv_cache_threshold
            ));
        }
        if self.queue_length_threshold < 0.0 {
            problems.push(format!(
                "queueLengthThreshold must be >= 0, got {:.1}",
                self.queue_length_threshold
            ));
        }
        if !(0.0..=1.0).contains(&self.kv_spare_trigger) {
            problems.push(format!(
                "kvSpareTrigger must be between 0 and 1, got {:.2}",
                self.kv_spare_trigger
            ));
        }
        if self.queue_spare_trigger < 0.0 {
            problems.push(format!(
                "queueSpareTrigger must be >= 0, got {:.1}",
                self.queue_spare_trigger
            ));
        }
        // Beyond upstream: a queue threshold or trigger near f64::MAX overflows the spare sums
        // to infinity (and flips decisions); no queue is that long.
        for (field, value) in [
            ("queueLengthThreshold", self.queue_length_threshold),
            ("queueSpareTrigger", self.queue_spare_trigger),
        ] {
            if value > MAX_QUEUE_SETTING {
                problems.push(format!(
                    "{field} must be at most {MAX_QUEUE_SETTING:.0} requests, got {value:e}"
                ));
            }
        }
        if self.kv_cache_threshold < self.kv_spare_trigger {
            problems.push(format!(
                "kvCacheThreshold ({:.2}) should be >= kvSpareTrigger ({:.2})",
                self.kv_cache_threshold, self.kv_spare_trigger
            ));
        }
        problems
    }
}

/// All entries of the ConfigMap, `default` included, keyed by data key.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct SaturationConfigSet {
    entries: BTreeMap<String, SaturationScalingConfig>,
}

impl Default for SaturationConfigSet {
    /// Only a `default` entry with the documented defaults.
    fn default() -> Self {
        Self {
            entries: BTreeMap::from([(DEFAULT_KEY.to_owned(), SaturationScalingConfig::default())]),
        }
    }
}

impl SaturationConfigSet {
    /// Parses entries (data key → settings object). A `default` entry is required.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = (&'a String, &'a Value)>,
    ) -> Result<Parsed<Self>, Vec<Problem>> {
        let raw: BTreeMap<&String, &Value> = entries.into_iter().collect();
        let mut problems = Vec::new();
        let mut warnings = Vec::new();

        let default = match raw.iter().find(|(k, _)| k.as_str() == DEFAULT_KEY) {
            Some((key, value)) => read_entry(
                key,
                value,
                &SaturationScalingConfig::default(),
                &mut problems,
                &mut warnings,
            ),
            None => {
                problems.push(Problem::new(
                    DEFAULT_KEY,
                    "required entry is missing: without a \"default\" entry no model is scaled \
                     (add `default: {kvCacheThreshold: 0.8, queueLengthThreshold: 5, kvSpareTrigger: 0.1, queueSpareTrigger: 3}`)",
                ));
                None
            }
        };
        let base = default.clone().unwrap_or_default();

        let mut entries = BTreeMap::new();
        if let Some(d) = default {
            entries.insert(DEFAULT_KEY.to_owned(), d);
        }
        for (key, value) in raw.iter().filter(|(k, _)| k.as_str() != DEFAULT_KEY) {
            let mut inherited = base.clone();
            inherited.model_id = None;
            inherited.namespace = None;
            if let Some(entry) = read_entry(key, value, &inherited, &mut problems, &mut warnings) {
                if entry.model_id.as_deref().is_none_or(str::is_empty) {
                    problems.push(Problem::new(
                        key.as_str(),
                        "model_id is required in an override entry (every key other than \"default\" overrides one model)",
                    ));
                    continue;
                }
                entries.insert((*key).clone(), entry);
            }
        }
        warnings.extend(shadowed_overrides(&entries));

        if problems.is_empty() {
            Ok(Parsed {
                value: Self { entries },
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

    /// The `default` entry.
    pub fn default_entry(&self) -> &SaturationScalingConfig {
        static DOCUMENTED: std::sync::OnceLock<SaturationScalingConfig> =
            std::sync::OnceLock::new();
        self.entries
            .get(DEFAULT_KEY)
            .unwrap_or_else(|| DOCUMENTED.get_or_init(SaturationScalingConfig::default))
    }

    /// The entry that applies to a model, and its key: the best matching override, else `default`.
    pub fn for_model(&self, namespace: &str, model_id: &str) -> (&str, &SaturationScalingConfig) {
        match select_override(self.entries.iter(), namespace, model_id) {
            Some((key, entry)) => (key.as_str(), entry),
            None => (DEFAULT_KEY, self.default_entry()),
        }
    }

    /// All entries by key.
    pub fn entries(&self) -> &BTreeMap<String, SaturationScalingConfig> {
        &self.entries
    }
}

fn read_entry(
    key: &str,
    value: &Value,
    base: &SaturationScalingConfig,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<SaturationScalingConfig> {
    let mut reader = EntryReader::new(key, value, problems)?;
    let entry = SaturationScalingConfig {
        kv_cache_threshold: reader
            .number("kvCacheThreshold")
            .unwrap_or(base.kv_cache_threshold),
        queue_length_threshold: reader
            .number("queueLengthThreshold")
            .unwrap_or(base.queue_length_threshold),
        kv_spare_trigger: reader
            .number("kvSpareTrigger")
            .unwrap_or(base.kv_spare_trigger),
        queue_spare_trigger: reader
            .number("queueSpareTrigger")
            .unwrap_or(base.queue_spare_trigger),
        enable_limiter: reader
            .boolean("enableLimiter")
            .unwrap_or(base.enable_limiter),
        max_pending_duration: match reader.string("maxPendingDuration") {
            None => base.max_pending_duration,
            Some(text) => match parse_go_duration(&text) {
                Ok(nanos) if nanos >= MINUTE => nanos,
                Ok(_) => {
                    reader.problems.push(Problem::new(
                        key,
                        format!("maxPendingDuration must be at least 1m (model weights take minutes to load), got {text:?}"),
                    ));
                    base.max_pending_duration
                }
                Err(e) => {
                    reader.problems.push(Problem::new(
                        key,
                        format!("maxPendingDuration must be a Go duration such as 15m: {e}"),
                    ));
                    base.max_pending_duration
                }
            },
        },
        next: NextSettings::read(&mut reader, &base.next),
        model_id: reader.string("model_id"),
        namespace: reader.string("namespace"),
    };
    warnings.extend(reader.unknown_fields(&KNOWN_FIELDS));
    let type_problems = std::mem::take(&mut reader.problems);
    if !type_problems.is_empty() {
        problems.extend(type_problems);
        return None;
    }
    let rule_problems = entry.validate();
    if !rule_problems.is_empty() {
        problems.extend(rule_problems.into_iter().map(|m| Problem::new(key, m)));
        return None;
    }
    Some(entry)
}

/// Overrides that can never apply because an equally specific one with a smaller key wins.
fn shadowed_overrides(entries: &BTreeMap<String, SaturationScalingConfig>) -> Vec<Problem> {
    shadowed(
        entries
            .iter()
            .map(|(k, e)| (k, e.model_id(), e.namespace())),
    )
}

/// Shared by both ConfigMaps: warns about overrides shadowed by a smaller key with the same
/// (model_id, namespace) scope.
pub(crate) fn shadowed<'a>(
    entries: impl Iterator<Item = (&'a String, Option<&'a str>, Option<&'a str>)>,
) -> Vec<Problem> {
    let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (key, model, namespace) in entries {
        let Some(model) = model.filter(|_| key != DEFAULT_KEY) else {
            continue;
        };
        let scope = (model, namespace.unwrap_or(""));
        match seen.get(&scope) {
            Some(winner) => warnings.push(Problem::new(
                key.as_str(),
                format!(
                    "never applies: entry {winner:?} has the same model_id{} and a smaller key",
                    if scope.1.is_empty() {
                        ""
                    } else {
                        " and namespace"
                    }
                ),
            )),
            None => {
                seen.insert(scope, key);
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests;
