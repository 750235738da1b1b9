//! The `wva-next` policy's settings: extra fields of a saturation-scaling ConfigMap entry
//! (docs/configuration.md#wva-next), inherited from `default` like the thresholds. Parsing and
//! validation only; the policy itself is `core::next`. Durations are Go durations in the
//! ConfigMap and seconds here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::duration::{SECOND, format_go_duration, parse_go_duration};
use super::{EntryReader, describe};

/// The ConfigMap fields this module reads.
pub const FIELDS: [&str; 12] = [
    "scaleUpUtilisation",
    "targetUtilisation",
    "scaleDownUtilisation",
    "stableWindow",
    "panicWindow",
    "scaleDownDelay",
    "startupTime",
    "stuckMargin",
    "unavailableBackoff",
    "drainTime",
    "capacityRps",
    "sloThroughputFraction",
];

/// `wva-next`'s settings for one model (defaults in [`Default`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextSettings {
    /// Scale up when the demand one start-up ahead exceeds this share of the coming capacity.
    #[serde(skip_serializing_if = "is_default_up")]
    pub scale_up_utilisation: f64,
    /// Size so that the demand uses this share of the capacity (up and down).
    #[serde(skip_serializing_if = "is_default_target")]
    pub target_utilisation: f64,
    /// Scale down only while the window's peak demand stays under this share of ready capacity.
    #[serde(skip_serializing_if = "is_default_down")]
    pub scale_down_utilisation: f64,
    /// Seconds of the stable demand window.
    #[serde(
        skip_serializing_if = "is_default_stable",
        serialize_with = "seconds_as_duration"
    )]
    pub stable_window: f64,
    /// Seconds of the short (panic) window.
    #[serde(
        skip_serializing_if = "is_default_panic",
        serialize_with = "seconds_as_duration"
    )]
    pub panic_window: f64,
    /// Seconds the demand must stay low before a scale-down.
    #[serde(
        skip_serializing_if = "is_default_delay",
        serialize_with = "seconds_as_duration"
    )]
    pub scale_down_delay: f64,
    /// Seconds from creation to Ready assumed (as the p90) until a variant's are learned.
    #[serde(
        skip_serializing_if = "is_default_startup",
        serialize_with = "seconds_as_duration"
    )]
    pub startup_time: f64,
    /// Seconds past the p99 time-to-ready after which a starting pod counts as stuck.
    #[serde(
        skip_serializing_if = "is_default_margin",
        serialize_with = "seconds_as_duration"
    )]
    pub stuck_margin: f64,
    /// Seconds a variant with a stuck pod gets no new replicas.
    #[serde(
        skip_serializing_if = "is_default_backoff",
        serialize_with = "seconds_as_duration"
    )]
    pub unavailable_backoff: f64,
    /// Seconds in which a backlog of waiting requests should be served, on top of the demand.
    #[serde(
        skip_serializing_if = "is_default_drain",
        serialize_with = "seconds_as_duration"
    )]
    pub drain_time: f64,
    /// Requests/s one replica serves within the latency objective, per accelerator (as the
    /// variant's `accelerator` label says it). Benchmarked; absent = learned.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity_rps: BTreeMap<String, f64>,
    /// Where `capacityRps` is not set: the share of a replica's learned throughput limit
    /// (served ÷ KV-cache use) that stays within the latency objective.
    #[serde(skip_serializing_if = "is_default_fraction")]
    pub slo_throughput_fraction: f64,
}

const DEFAULT: NextSettings = NextSettings {
    scale_up_utilisation: 0.85,
    target_utilisation: 0.8,
    scale_down_utilisation: 0.7,
    stable_window: 180.0,
    panic_window: 30.0,
    scale_down_delay: 300.0,
    startup_time: 300.0,
    stuck_margin: 120.0,
    unavailable_backoff: 600.0,
    drain_time: 60.0,
    capacity_rps: BTreeMap::new(),
    slo_throughput_fraction: 0.5,
};

impl Default for NextSettings {
    fn default() -> Self {
        DEFAULT
    }
}

macro_rules! default_check {
    ($($name:ident => $field:ident),* $(,)?) => {
        $(fn $name(v: &f64) -> bool {
            *v == DEFAULT.$field
        })*
    };
}

default_check! {
    is_default_up => scale_up_utilisation,
    is_default_target => target_utilisation,
    is_default_down => scale_down_utilisation,
    is_default_stable => stable_window,
    is_default_panic => panic_window,
    is_default_delay => scale_down_delay,
    is_default_startup => startup_time,
    is_default_margin => stuck_margin,
    is_default_backoff => unavailable_backoff,
    is_default_drain => drain_time,
    is_default_fraction => slo_throughput_fraction,
}

fn seconds_as_duration<S: serde::Serializer>(
    seconds: &f64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_go_duration((*seconds * SECOND as f64) as i64))
}

impl NextSettings {
    /// Reads the fields of one entry over `base` (the `default` entry's, or the documented
    /// defaults); problems name the entry and the field.
    pub(crate) fn read(reader: &mut EntryReader<'_>, base: &Self) -> Self {
        let duration = |reader: &mut EntryReader<'_>, field: &str, base: f64| match reader
            .string(field)
        {
            None => base,
            Some(text) => match parse_go_duration(&text) {
                Ok(nanos) if nanos > 0 => nanos as f64 / SECOND as f64,
                Ok(_) => {
                    reader.problem(format!("{field} must be a positive duration, got {text:?}"));
                    base
                }
                Err(e) => {
                    reader.problem(format!("{field} must be a Go duration such as 3m: {e}"));
                    base
                }
            },
        };
        let settings = Self {
            scale_up_utilisation: reader
                .number("scaleUpUtilisation")
                .unwrap_or(base.scale_up_utilisation),
            target_utilisation: reader
                .number("targetUtilisation")
                .unwrap_or(base.target_utilisation),
            scale_down_utilisation: reader
                .number("scaleDownUtilisation")
                .unwrap_or(base.scale_down_utilisation),
            stable_window: duration(reader, "stableWindow", base.stable_window),
            panic_window: duration(reader, "panicWindow", base.panic_window),
            scale_down_delay: duration(reader, "scaleDownDelay", base.scale_down_delay),
            startup_time: duration(reader, "startupTime", base.startup_time),
            stuck_margin: duration(reader, "stuckMargin", base.stuck_margin),
            unavailable_backoff: duration(reader, "unavailableBackoff", base.unavailable_backoff),
            drain_time: duration(reader, "drainTime", base.drain_time),
            capacity_rps: match reader.value("capacityRps") {
                None => base.capacity_rps.clone(),
                Some(value) => capacities(value).unwrap_or_else(|message| {
                    reader.problem(message);
                    base.capacity_rps.clone()
                }),
            },
            slo_throughput_fraction: reader
                .number("sloThroughputFraction")
                .unwrap_or(base.slo_throughput_fraction),
        };
        for message in settings.validate() {
            reader.problem(message);
        }
        settings
    }

    /// Every broken rule, each naming its field and the accepted range.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (field, value) in [
            ("scaleUpUtilisation", self.scale_up_utilisation),
            ("targetUtilisation", self.target_utilisation),
            ("scaleDownUtilisation", self.scale_down_utilisation),
            ("sloThroughputFraction", self.slo_throughput_fraction),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                problems.push(format!("{field} must be in (0, 1], got {value}"));
            }
        }
        if !(self.scale_down_utilisation < self.target_utilisation
            && self.target_utilisation <= self.scale_up_utilisation)
        {
            problems.push(format!(
                "scaleDownUtilisation ({}) < targetUtilisation ({}) <= scaleUpUtilisation ({}) is required: \
                 without the gap every scale-up is followed by a scale-down",
                self.scale_down_utilisation, self.target_utilisation, self.scale_up_utilisation
            ));
        }
        if self.panic_window > self.stable_window {
            problems.push(format!(
                "panicWindow ({}) must not be longer than stableWindow ({})",
                format_seconds(self.panic_window),
                format_seconds(self.stable_window)
            ));
        }
        problems
    }
}

fn format_seconds(seconds: f64) -> String {
    format_go_duration((seconds * SECOND as f64) as i64)
}

/// `capacityRps`: a mapping of accelerator → requests/s > 0.
fn capacities(value: &Value) -> Result<BTreeMap<String, f64>, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "capacityRps must be a mapping of accelerator to requests/s (e.g. {{H100: 5}}), got {}",
            describe(value)
        ));
    };
    map.iter()
        .map(|(accelerator, rps)| match rps.as_f64() {
            Some(r) if r > 0.0 && r.is_finite() => Ok((accelerator.clone(), r)),
            _ => Err(format!(
                "capacityRps.{accelerator} must be a number of requests/s > 0, got {}",
                describe(rps)
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Problem, SaturationConfigSet};

    fn parse(yaml: &str) -> Result<SaturationConfigSet, Vec<Problem>> {
        let data = BTreeMap::from([("default".to_owned(), yaml.to_owned())]);
        SaturationConfigSet::parse_config_map_data(&data).map(|p| p.value)
    }

    #[test]
    fn defaults_and_overrides_are_read_and_inherited() {
        let set =
            parse("scaleUpUtilisation: 0.9\nstableWindow: 5m\ncapacityRps: {H100: 5, A100: 2.5}")
                .unwrap();
        let next = &set.default_entry().next;
        assert_eq!(next.scale_up_utilisation, 0.9);
        assert_eq!(next.stable_window, 300.0);
        assert_eq!(next.capacity_rps["A100"], 2.5);
        assert_eq!(next.scale_down_delay, 300.0);
    }

    #[test]
    fn bad_values_name_the_field_and_the_fix() {
        let problems = parse(
            "scaleDownUtilisation: 0.9\ncapacityRps: {H100: 0}\nstableWindow: 10s\npanicWindow: soon",
        )
        .unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let text = text.join("\n");
        for expected in [
            "capacityRps.H100 must be a number of requests/s > 0, got 0",
            "scaleDownUtilisation (0.9) < targetUtilisation (0.8)",
            "panicWindow must be a Go duration",
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text}");
        }
        assert!(parse("panicWindow: 5m").unwrap_err().iter().any(|p| {
            p.message
                .contains("must not be longer than stableWindow (3m0s)")
        }));
    }
}
