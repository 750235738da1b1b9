//! What users configure, parsed and validated: the saturation-scaling ConfigMap, the
//! scale-to-zero ConfigMap, and ConfigMap manifests as files. Pure: callers hand in the data
//! (from the API server, a snapshot or a file); nothing here reads the environment, the
//! cluster or the clock.
//!
//! One parser serves the ConfigMaps (YAML text per key) and `wva analyze` snapshots (a JSON
//! object per key): both become a [`serde_json::Value`] per entry first.

pub mod duration;
pub mod label_selector;
pub mod manifest;
pub mod next;
pub mod prometheus;
pub mod saturation;
pub mod scale_to_zero;

use std::fmt;

use serde_json::Value;

pub use saturation::{SaturationConfigSet, SaturationScalingConfig};
pub use scale_to_zero::{ModelScaleToZeroConfig, ScaleToZeroConfigSet};

/// Cost per replica when a VA's `spec.variantCost` is absent, empty or unparsable (upstream's
/// default, `"10.0"`).
pub const DEFAULT_VARIANT_COST: f64 = 10.0;

/// The key of the global entry in both ConfigMaps.
pub const DEFAULT_KEY: &str = "default";

/// One problem found in user input — a ConfigMap entry, a snapshot, a scenario file: `path`
/// names where (a data key, a JSON path such as `variants[2].cost`), `message` says what is
/// wrong and what is expected. The one type every parser of user input reports with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same problem one level down: `outer.path`.
    pub fn within(self, outer: &str) -> Self {
        Self {
            path: format!("{outer}.{}", self.path),
            message: self.message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A successfully parsed configuration and what was accepted but looks wrong (unknown keys,
/// shadowed overrides).
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed<T> {
    pub value: T,
    pub warnings: Vec<Problem>,
}

/// Parses one ConfigMap value (a YAML document) into a JSON value. Non-finite numbers
/// (`.nan`, `.inf`) are refused here: no threshold can be NaN.
pub(crate) fn yaml_entry_to_json(text: &str) -> Result<Value, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    // `<<: *anchor` merges as in Go's YAML, so a merged-in value is checked like any other.
    yaml.apply_merge()
        .map_err(|e| format!("invalid YAML merge key: {e}"))?;
    yaml_to_json(yaml)
}

fn yaml_to_json(yaml: serde_yaml_ng::Value) -> Result<Value, String> {
    use serde_yaml_ng::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{n} is not a finite number"))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut object = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_yaml_ng::to_string(&other)
                        .map(|s| s.trim().to_owned())
                        .unwrap_or_default(),
                };
                object.insert(key, yaml_to_json(v)?);
            }
            Value::Object(object)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value)?,
    })
}

/// Describes a JSON value for an error message: its type and, for scalars, the value itself.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 128 => {
            let head: String = s.chars().take(128).collect();
            format!("{head:?}… ({} characters)", s.chars().count())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// An entry's settings: the JSON object, with type-checked accessors that record problems.
pub(crate) struct EntryReader<'a> {
    key: &'a str,
    object: &'a serde_json::Map<String, Value>,
    pub problems: Vec<Problem>,
}

impl<'a> EntryReader<'a> {
    /// `None` (with a problem recorded) when the entry is not a mapping.
    pub fn new(key: &'a str, value: &'a Value, problems: &mut Vec<Problem>) -> Option<Self> {
        match value {
            Value::Object(object) => Some(Self {
                key,
                object,
                problems: Vec::new(),
            }),
            other => {
                problems.push(Problem::new(
                    key,
                    format!("must be a mapping of settings, got {}", describe(other)),
                ));
                None
            }
        }
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    /// The field's value when present and not null, unchecked.
    pub fn value(&self, field: &str) -> Option<&'a Value> {
        self.present(field)
    }

    /// Records a problem with this entry.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(Problem::new(self.key, message));
    }

    pub fn number(&mut self, field: &str) -> Option<f64> {
        let value = self.present(field)?;
        match value.as_f64() {
            Some(n) => Some(n),
            None => {
                self.problems.push(Problem::new(
                    self.key,
                    format!("{field} must be a number, got {}", describe(value)),
                ));
                None
            }
        }
    }

    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        let value = self.present(field)?;
        match value.as_bool() {
            Some(b) => Some(b),
            None => {
                self.problems.push(Problem::new(
                    self.key,
                    format!("{field} must be true or false, got {}", describe(value)),
                ));
                None
            }
        }
    }

    pub fn string(&mut self, field: &str) -> Option<String> {
        let value = self.present(field)?;
        match value.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.problems.push(Problem::new(
                    self.key,
                    format!("{field} must be a string, got {}", describe(value)),
                ));
                None
            }
        }
    }

    /// Warnings for fields this entry kind does not know (likely typos: they are ignored).
    pub fn unknown_fields(&self, known: &[&str]) -> Vec<Problem> {
        self.object
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| {
                Problem::new(
                    self.key,
                    format!(
                        "unknown field {k:?} is ignored (known fields: {})",
                        known.join(", ")
                    ),
                )
            })
            .collect()
    }
}

/// An override entry: which model (and optionally namespace) it applies to.
pub trait ModelOverride {
    fn model_id(&self) -> Option<&str>;
    fn namespace(&self) -> Option<&str>;
}

/// Picks the override entry for (namespace, model) among `entries` (sorted by key, `default`
/// excluded by the caller's iterator): one whose `model_id` equals the model and whose
/// `namespace`, when given and non-empty, equals the namespace. One naming the namespace beats
/// one that does not; then the smallest key wins.
pub fn select_override<'a, T: ModelOverride + 'a>(
    entries: impl Iterator<Item = (&'a String, &'a T)>,
    namespace: &str,
    model_id: &str,
) -> Option<(&'a String, &'a T)> {
    let mut generic = None;
    for (key, entry) in entries {
        if key == DEFAULT_KEY || entry.model_id() != Some(model_id) {
            continue;
        }
        match entry.namespace().filter(|ns| !ns.is_empty()) {
            Some(ns) if ns == namespace => return Some((key, entry)),
            Some(_) => {}
            None => {
                generic.get_or_insert((key, entry));
            }
        }
    }
    generic
}
