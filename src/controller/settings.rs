//! The configuration in force for the controller, from the three ConfigMaps as the cache last
//! saw them (pure): a valid change applies from the next cycle (create and update alike); an
//! invalid one is reported and the last valid configuration stays in force; no saturation
//! ConfigMap at all means the documented defaults, said once. Also the cycle period from the main
//! ConfigMap's `GLOBAL_OPT_INTERVAL` (upstream stores and ignores it).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::duration::parse_go_duration;
use crate::config::{Problem, SaturationConfigSet, ScaleToZeroConfigSet};

/// The main ConfigMap key of the cycle period.
pub const INTERVAL_KEY: &str = "GLOBAL_OPT_INTERVAL";
/// The cycle period when the key is absent (upstream's fixed period).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// The shortest cycle period accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Which ConfigMap a problem or a change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Main,
    Saturation,
    ScaleToZero,
}

/// What applying the ConfigMaps found, for logs, Warning Events and the metric.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Invalid content; the previous value stays in force for that ConfigMap.
    pub rejected: Vec<(Source, Vec<Problem>)>,
    /// Accepted with warnings (unknown fields, shadowed overrides, defaults in use).
    pub warnings: Vec<(Source, Problem)>,
}

/// The configuration in force.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub saturation: SaturationConfigSet,
    pub scale_to_zero: ScaleToZeroConfigSet,
    pub interval: Duration,
    /// `WVA_SCALE_TO_ZERO`: scale-to-zero for models the ConfigMap does not decide.
    scale_to_zero_env: bool,
    /// The data last applied or rejected, per source, so that an unchanged ConfigMap is not
    /// parsed (and reported) again every cycle.
    seen: BTreeMap<&'static str, Option<BTreeMap<String, String>>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            saturation: SaturationConfigSet::default(),
            scale_to_zero: ScaleToZeroConfigSet::default(),
            interval: DEFAULT_INTERVAL,
            scale_to_zero_env: false,
            seen: BTreeMap::new(),
        }
    }
}

/// A valid parse replaces `current` (its warnings reported); an invalid one is reported and
/// `current` stays.
fn keep_if_valid<T>(
    source: Source,
    parsed: Result<crate::config::Parsed<T>, Vec<Problem>>,
    current: &mut T,
    outcome: &mut Outcome,
) {
    match parsed {
        Ok(parsed) => {
            *current = parsed.value;
            outcome
                .warnings
                .extend(parsed.warnings.into_iter().map(|w| (source, w)));
        }
        Err(problems) => outcome.rejected.push((source, problems)),
    }
}

fn name(source: Source) -> &'static str {
    match source {
        Source::Main => "main",
        Source::Saturation => "saturation",
        Source::ScaleToZero => "scale-to-zero",
    }
}

impl Settings {
    /// The defaults, with `WVA_SCALE_TO_ZERO` (`true`, any case) as the lowest-priority
    /// scale-to-zero setting.
    pub fn new(scale_to_zero_env: bool) -> Self {
        Self {
            scale_to_zero: ScaleToZeroConfigSet::default().with_env_default(scale_to_zero_env),
            scale_to_zero_env,
            ..Self::default()
        }
    }

    /// Applies the ConfigMaps' data as the cache holds them now (`None`: no such ConfigMap).
    /// Only what changed since the last call is parsed and reported.
    pub fn apply(
        &mut self,
        main: Option<&BTreeMap<String, String>>,
        saturation: Option<&BTreeMap<String, String>>,
        scale_to_zero: Option<&BTreeMap<String, String>>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        if self.changed(Source::Main, main) {
            self.apply_main(main, &mut outcome);
        }
        if self.changed(Source::Saturation, saturation) {
            match saturation {
                None => {
                    self.saturation = SaturationConfigSet::default();
                    outcome.warnings.push((
                        Source::Saturation,
                        Problem::new(
                            "",
                            "no saturation-scaling ConfigMap: the documented defaults apply (kvCacheThreshold 0.8, queueLengthThreshold 5, kvSpareTrigger 0.1, queueSpareTrigger 3)",
                        ),
                    ));
                }
                Some(data) => {
                    let parsed = SaturationConfigSet::parse_config_map_data(data);
                    keep_if_valid(
                        Source::Saturation,
                        parsed,
                        &mut self.saturation,
                        &mut outcome,
                    );
                }
            }
        }
        if self.changed(Source::ScaleToZero, scale_to_zero) {
            let empty = BTreeMap::new();
            let parsed =
                ScaleToZeroConfigSet::parse_config_map_data(scale_to_zero.unwrap_or(&empty));
            keep_if_valid(
                Source::ScaleToZero,
                parsed.map(|mut p| {
                    p.value = p.value.with_env_default(self.scale_to_zero_env);
                    p
                }),
                &mut self.scale_to_zero,
                &mut outcome,
            );
        }
        outcome
    }

    fn changed(&mut self, source: Source, data: Option<&BTreeMap<String, String>>) -> bool {
        let key = name(source);
        let now = data.cloned();
        if self.seen.get(key) == Some(&now) {
            return false;
        }
        self.seen.insert(key, now);
        true
    }

    fn apply_main(&mut self, main: Option<&BTreeMap<String, String>>, outcome: &mut Outcome) {
        let Some(text) = main.and_then(|d| d.get(INTERVAL_KEY)) else {
            self.interval = DEFAULT_INTERVAL;
            return;
        };
        let problem = match parse_go_duration(text.trim()) {
            Ok(nanos) if nanos >= MIN_INTERVAL.as_nanos() as i64 => {
                self.interval = Duration::from_nanos(nanos as u64);
                return;
            }
            Ok(_) => format!(
                "must be at least 1s (a shorter cycle only repeats the same decision), got {text:?}"
            ),
            Err(e) => format!("must be a Go duration such as 30s: {e}"),
        };
        outcome
            .rejected
            .push((Source::Main, vec![Problem::new(INTERVAL_KEY, problem)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_environment_default_survives_config_map_changes_and_serialises() {
        let mut settings = Settings::new(true);
        assert!(settings.scale_to_zero.enabled("p", "m"));
        let stz = data(&[("default", "retention_period: 5m")]);
        settings.apply(None, None, Some(&stz));
        assert!(settings.scale_to_zero.enabled("p", "m"));
        let json = serde_json::to_value(&settings.scale_to_zero).unwrap();
        assert_eq!(json["default"]["enable_scale_to_zero"], true, "{json}");
        let off = data(&[("default", "enable_scale_to_zero: false")]);
        settings.apply(None, None, Some(&off));
        assert!(
            !settings.scale_to_zero.enabled("p", "m"),
            "the ConfigMap decides first"
        );
        assert!(!Settings::new(false).scale_to_zero.enabled("p", "m"));
    }

    #[test]
    fn a_valid_change_applies_and_an_invalid_one_keeps_the_last_good() {
        let mut settings = Settings::default();
        let good = data(&[("default", "kvCacheThreshold: 0.7")]);
        let outcome = settings.apply(None, Some(&good), None);
        assert!(outcome.rejected.is_empty(), "{outcome:?}");
        assert_eq!(settings.saturation.default_entry().kv_cache_threshold, 0.7);

        let bad = data(&[("default", "kvCacheThreshold: 9")]);
        let outcome = settings.apply(None, Some(&bad), None);
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(outcome.rejected[0].0, Source::Saturation);
        assert!(
            outcome.rejected[0].1[0]
                .to_string()
                .contains("kvCacheThreshold must be between 0 and 1")
        );
        assert_eq!(
            settings.saturation.default_entry().kv_cache_threshold,
            0.7,
            "last good kept"
        );

        // Unchanged data is not reported again every cycle.
        assert_eq!(settings.apply(None, Some(&bad), None), Outcome::default());

        let fixed = data(&[("default", "kvCacheThreshold: 0.9")]);
        assert!(settings.apply(None, Some(&fixed), None).rejected.is_empty());
        assert_eq!(settings.saturation.default_entry().kv_cache_threshold, 0.9);
    }

    #[test]
    fn no_saturation_config_map_means_the_documented_defaults_said_once() {
        let mut settings = Settings::default();
        let outcome = settings.apply(None, None, None);
        assert_eq!(outcome.warnings.len(), 1);
        assert!(
            outcome.warnings[0]
                .1
                .message
                .contains("documented defaults")
        );
        assert_eq!(settings.saturation, SaturationConfigSet::default());
        assert!(
            settings.apply(None, None, None).warnings.is_empty(),
            "said once"
        );
    }

    #[test]
    fn the_interval_is_honoured_and_bounded() {
        let mut settings = Settings::default();
        settings.apply(Some(&data(&[(INTERVAL_KEY, "2s")])), None, None);
        assert_eq!(settings.interval, Duration::from_secs(2));
        let outcome = settings.apply(Some(&data(&[(INTERVAL_KEY, "500ms")])), None, None);
        assert!(
            outcome.rejected[0].1[0]
                .to_string()
                .starts_with("GLOBAL_OPT_INTERVAL: must be at least 1s")
        );
        assert_eq!(settings.interval, Duration::from_secs(2), "last good kept");
        let outcome = settings.apply(Some(&data(&[(INTERVAL_KEY, "soon")])), None, None);
        assert!(outcome.rejected[0].1[0].message.contains("Go duration"));
        settings.apply(Some(&data(&[("OTHER", "x")])), None, None);
        assert_eq!(
            settings.interval, DEFAULT_INTERVAL,
            "absent: upstream's 30s"
        );
    }
}
