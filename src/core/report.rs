//! The decision core's output (contract `analyze-snapshot.md`): per model the analysis, per
//! variant one decision with the rule that decided it. Data plus a plain-text table view.

use std::fmt::Write as _;

use serde::Serialize;

use super::analyzer::VariantAnalysis;

/// What one cycle decided.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub policy: String,
    /// Models with at least one pod reporting metrics, by (namespace, modelID).
    pub models: Vec<ModelReport>,
    /// Exactly one per input variant, by (namespace, name).
    pub decisions: Vec<Decision>,
    /// `wva-next`: the state the next cycle starts from (feed it back as the snapshot's
    /// `wvaNextState`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wva_next_state: Option<super::next::State>,
}

/// A model's analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelReport {
    pub namespace: Text,
    #[serde(rename = "modelID")]
    pub model_id: Text,
    pub total_replicas: u32,
    pub non_saturated_count: u32,
    pub avg_spare_kv_capacity: f64,
    pub avg_spare_queue_length: f64,
    pub should_scale_up: bool,
    pub scale_down_safe: bool,
    pub in_transition: bool,
    pub scale_to_zero_applied: bool,
    /// The saturation-scaling entry that applied (`default` or an override key).
    pub saturation_config_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scale_up_reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transition_reasons: Vec<String>,
    /// The enforcer raised a model left with no replica to one replica.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub minimum_enforced: bool,
    /// `wva-next`: the demand and supply it decided on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<super::next::Figures>,
}

/// `scale-up`, `scale-down` or `no-change`, always from target vs current.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    ScaleUp,
    ScaleDown,
    NoChange,
}

impl Action {
    pub fn from_replicas(current: u32, target: u32) -> Self {
        match target.cmp(&current) {
            std::cmp::Ordering::Greater => Self::ScaleUp,
            std::cmp::Ordering::Less => Self::ScaleDown,
            std::cmp::Ordering::Equal => Self::NoChange,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScaleUp => "scale-up",
            Self::ScaleDown => "scale-down",
            Self::NoChange => "no-change",
        }
    }
}

/// One variant's decision and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub namespace: Text,
    pub name: Text,
    pub target_name: Text,
    #[serde(rename = "modelID")]
    pub model_id: Text,
    pub accelerator: Text,
    pub cost: f64,
    pub action: Action,
    pub current_replicas: u32,
    pub target_replicas: u32,
    pub metrics_available: bool,
    /// Which rule decided, in words. Shared text ([`Text`]): a model-wide verdict is written
    /// once and shared by its variants' decisions.
    pub reason: Text,
    pub steps: Vec<Step>,
    pub ready_replicas: u32,
    pub pending_replicas: u32,
    pub previous_desired: u32,
    /// GPUs one replica requests (the limiter's unit); 1 unless the snapshot says otherwise.
    #[serde(skip_serializing_if = "is_one")]
    pub gpus_per_replica: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<VariantAnalysis>,
}

/// One stage of the pipeline and the target it left.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// `analyzer`, `transition`, `planner`, `enforcer`, `gpu-limiter`, `hold` or `inactive`.
    pub stage: &'static str,
    pub target_replicas: u32,
    pub note: Text,
}

/// Shared, immutable text: names (a snapshot's, shared by its decisions and the `wva-next`
/// state) and notes (one note serves every decision it explains). At 10,000 variants a copied
/// `String` per name and note is half of a `wva-next` cycle (docs/performance.md#wva-next).
pub type Text = std::sync::Arc<str>;

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Report {
    /// A fixed-width table for people: one line per model, then one per decision.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "policy: {}", self.policy);
        if !self.models.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<16} {:<32} {:>5} {:>6} {:>8} {:>8} {:<9} {:<10} {:<10} {:<5}",
                "NAMESPACE",
                "MODEL",
                "PODS",
                "UNSAT",
                "SPARE-KV",
                "SPARE-Q",
                "SCALE-UP",
                "DOWN-SAFE",
                "TRANSIT",
                "ZERO"
            );
            for m in &self.models {
                let _ = writeln!(
                    out,
                    "{:<16} {:<32} {:>5} {:>6} {:>8.3} {:>8.2} {:<9} {:<10} {:<10} {:<5}",
                    printable(&m.namespace),
                    printable(&m.model_id),
                    m.total_replicas,
                    m.non_saturated_count,
                    m.avg_spare_kv_capacity,
                    m.avg_spare_queue_length,
                    yes_no(m.should_scale_up),
                    yes_no(m.scale_down_safe),
                    yes_no(m.in_transition),
                    yes_no(m.scale_to_zero_applied),
                );
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<16} {:<28} {:<10} {:>6} {:<11} {:>7} {:>6} {:>7} {:<7} REASON",
            "NAMESPACE",
            "VARIANT",
            "ACCEL",
            "COST",
            "ACTION",
            "CURRENT",
            "TARGET",
            "PENDING",
            "METRICS"
        );
        for d in &self.decisions {
            let _ = writeln!(
                out,
                "{:<16} {:<28} {:<10} {:>6} {:<11} {:>7} {:>6} {:>7} {:<7} {}",
                printable(&d.namespace),
                printable(&d.name),
                if d.accelerator.is_empty() {
                    "-".into()
                } else {
                    printable(&d.accelerator)
                },
                d.cost,
                d.action.as_str(),
                d.current_replicas,
                d.target_replicas,
                d.pending_replicas,
                yes_no(d.metrics_available),
                printable(&d.reason),
            );
        }
        out
    }
}

/// Text for a terminal: control characters (escape sequences, newlines) shown escaped, so a
/// hostile model ID cannot rewrite the screen.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
