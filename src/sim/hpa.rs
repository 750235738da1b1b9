//! The HorizontalPodAutoscaler as Kubernetes implements it (`pkg/controller/podautoscaler`:
//! `replica_calculator.go` and `horizontal.go`'s `normalizeDesiredReplicasWithBehaviors`): per
//! sync, each metric's proposal with the tolerance, the largest proposal, the stabilization
//! windows over past recommendations, then the `behavior.policies` rate limits over past scale
//! events, then min/max. Pure arithmetic on a virtual clock; knows nothing of the simulator.

use std::collections::VecDeque;

/// One scaling policy of `behavior.scaleUp` / `behavior.scaleDown`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RatePolicy {
    /// At most this many pods per period.
    Pods { value: u32, period_seconds: u64 },
    /// At most this percentage of the replicas at the period's start per period.
    Percent { value: u32, period_seconds: u64 },
}

impl RatePolicy {
    fn period(&self) -> f64 {
        match self {
            RatePolicy::Pods { period_seconds, .. }
            | RatePolicy::Percent { period_seconds, .. } => *period_seconds as f64,
        }
    }
}

/// `selectPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// The policy allowing the largest change (Kubernetes' default).
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// `behavior.scaleUp` or `behavior.scaleDown`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub stabilization_seconds: u64,
    pub select: Select,
    pub policies: Vec<RatePolicy>,
}

impl Rules {
    /// A window and one rate policy.
    pub fn max_of(stabilization_seconds: u64, policy: RatePolicy) -> Self {
        Self {
            stabilization_seconds,
            select: Select::Max,
            policies: vec![policy],
        }
    }
}

/// `spec.behavior`.
#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    pub up: Rules,
    pub down: Rules,
}

impl Behavior {
    /// What the API server fills in when `behavior` is left out: up by max(100 %, 4 pods) per
    /// 15 s without a window, down by 100 % per 15 s after a 300 s window.
    pub fn kubernetes_default() -> Self {
        Self {
            up: Rules {
                stabilization_seconds: 0,
                select: Select::Max,
                policies: vec![
                    RatePolicy::Pods {
                        value: 4,
                        period_seconds: 15,
                    },
                    RatePolicy::Percent {
                        value: 100,
                        period_seconds: 15,
                    },
                ],
            },
            down: Rules {
                stabilization_seconds: 300,
                select: Select::Max,
                policies: vec![RatePolicy::Percent {
                    value: 100,
                    period_seconds: 15,
                }],
            },
        }
    }

    /// Given windows, the same single rate policy both ways.
    pub fn both_ways(up_window: u64, down_window: u64, policy: RatePolicy) -> Self {
        Self {
            up: Rules::max_of(up_window, policy),
            down: Rules::max_of(down_window, policy),
        }
    }
}

/// One metric of the HPA (or of the ScaledObject KEDA turns into one), with its current value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// An External metric with an `AverageValue` target: `total` is the metric's value (the
    /// query's result), compared with `target × status.replicas`.
    AverageValue { total: f64, target: f64 },
    /// An External metric with a `Value` target: the proposal scales the ready pods by
    /// `value / target`.
    Value { value: f64, target: f64 },
}

/// The HPA's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1).
    pub tolerance: f64,
    pub behavior: Behavior,
}

/// What the Deployment looks like at a sync.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    /// `spec.replicas` (the HPA's "current replicas").
    pub spec_replicas: u32,
    /// `status.replicas`.
    pub status_replicas: u32,
    /// Ready pods.
    pub ready: u32,
}

/// One HPA's state: its past recommendations and scale events.
#[derive(Clone, Debug)]
pub struct Hpa {
    pub spec: Spec,
    /// (time, unstabilized recommendation).
    recommendations: VecDeque<(f64, u32)>,
    /// (time, replicas added) and (time, replicas removed).
    up_events: VecDeque<(f64, u32)>,
    down_events: VecDeque<(f64, u32)>,
    seen: bool,
}

impl Hpa {
    pub fn new(spec: Spec) -> Self {
        Self {
            spec,
            recommendations: VecDeque::new(),
            up_events: VecDeque::new(),
            down_events: VecDeque::new(),
            seen: false,
        }
    }

    /// One sync at time `t`: the replica count the HPA sets. With no metric (the metrics API
    /// answered nothing) it changes nothing.
    pub fn sync(&mut self, t: f64, target: Target, metrics: &[Metric]) -> u32 {
        let current = target.spec_replicas;
        if !self.seen {
            // `maybeInitScaleDownStabilizationWindow`: a new HPA's window starts with the
            // current count, so it does not scale down within its first window.
            self.seen = true;
            self.recommendations.push_back((t, current));
        }
        let desired = if current == 0 {
            // Kubernetes: scaled to zero by someone else = autoscaling disabled.
            return 0;
        } else if current > self.spec.max_replicas {
            self.spec.max_replicas
        } else if current < self.spec.min_replicas {
            self.spec.min_replicas
        } else {
            let Some(proposal) = metrics.iter().map(|m| self.proposal(target, *m)).max() else {
                return current;
            };
            let stabilized = self.stabilize(t, current, proposal);
            self.limit_rate(t, current, stabilized)
        };
        self.record_event(t, current, desired);
        desired
    }

    /// `replica_calculator.go`: one metric's replica proposal, with the tolerance.
    fn proposal(&self, target: Target, metric: Metric) -> u32 {
        let tolerance = self.spec.tolerance;
        match metric {
            Metric::AverageValue {
                total,
                target: per_pod,
            } => {
                let replicas = target.status_replicas;
                let ratio = total / (per_pod * replicas as f64);
                if replicas > 0 && (1.0 - ratio).abs() <= tolerance {
                    replicas
                } else {
                    ceil_u32(total / per_pod)
                }
            }
            Metric::Value {
                value,
                target: goal,
            } => {
                let ratio = value / goal;
                if (1.0 - ratio).abs() <= tolerance {
                    target.spec_replicas
                } else {
                    ceil_u32(ratio * target.ready as f64)
                }
            }
        }
    }

    /// `stabilizeRecommendationWithBehaviors`: up to the lowest recommendation within the up
    /// window, down to the highest within the down window; the raw proposal is remembered.
    fn stabilize(&mut self, t: f64, current: u32, proposal: u32) -> u32 {
        let up_cutoff = t - self.spec.behavior.up.stabilization_seconds as f64;
        let down_cutoff = t - self.spec.behavior.down.stabilization_seconds as f64;
        let (mut up, mut down) = (proposal, proposal);
        for &(at, r) in &self.recommendations {
            if at > up_cutoff {
                up = up.min(r);
            }
            if at > down_cutoff {
                down = down.max(r);
            }
        }
        let horizon = up_cutoff.min(down_cutoff);
        while self
            .recommendations
            .front()
            .is_some_and(|(at, _)| *at < horizon)
        {
            self.recommendations.pop_front();
        }
        self.recommendations.push_back((t, proposal));
        current.max(up).min(down)
    }

    /// `convertDesiredReplicasWithBehaviorRate`: the rate policies over the scale events of
    /// their periods, then min/max.
    fn limit_rate(&self, t: f64, current: u32, desired: u32) -> u32 {
        let (min, max) = (self.spec.min_replicas, self.spec.max_replicas);
        let behavior = &self.spec.behavior;
        if desired > current {
            let limit = self
                .limit(t, current, &behavior.up, true)
                .max(current as i64);
            let most = (max as i64).min(limit) as u32;
            if desired > most {
                return most;
            }
        } else if desired < current {
            let limit = self
                .limit(t, current, &behavior.down, false)
                .min(current as i64);
            let least = (min as i64).max(limit) as u32;
            if desired < least {
                return least;
            }
        }
        desired.clamp(min, max)
    }

    /// `calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`.
    fn limit(&self, t: f64, current: u32, rules: &Rules, up: bool) -> i64 {
        if rules.select == Select::Disabled {
            return current as i64;
        }
        // For scale-down, "Min" (the smallest change) is the largest count.
        let pick_larger = (rules.select == Select::Max) == up;
        let mut result: Option<i64> = None;
        for policy in &rules.policies {
            let cutoff = t - policy.period();
            let added: u32 = sum_after(&self.up_events, cutoff);
            let removed: u32 = sum_after(&self.down_events, cutoff);
            let start = current as i64 - added as i64 + removed as i64;
            let proposed = match (policy, up) {
                (RatePolicy::Pods { value, .. }, true) => start + *value as i64,
                (RatePolicy::Pods { value, .. }, false) => start - *value as i64,
                (RatePolicy::Percent { value, .. }, true) => {
                    (start as f64 * (1.0 + *value as f64 / 100.0)).ceil() as i64
                }
                (RatePolicy::Percent { value, .. }, false) => {
                    (start as f64 * (1.0 - *value as f64 / 100.0)) as i64
                }
            };
            result = Some(match result {
                None => proposed,
                Some(r) if pick_larger => r.max(proposed),
                Some(r) => r.min(proposed),
            });
        }
        result.unwrap_or(current as i64)
    }

    /// `storeScaleEvent`, dropping events older than the longest period.
    fn record_event(&mut self, t: f64, from: u32, to: u32) {
        let longest = |rules: &Rules| {
            rules
                .policies
                .iter()
                .map(RatePolicy::period)
                .fold(0.0, f64::max)
        };
        let keep = longest(&self.spec.behavior.up).max(longest(&self.spec.behavior.down));
        for events in [&mut self.up_events, &mut self.down_events] {
            while events.front().is_some_and(|(at, _)| *at <= t - keep) {
                events.pop_front();
            }
        }
        if to > from {
            self.up_events.push_back((t, to - from));
        } else if to < from {
            self.down_events.push_back((t, from - to));
        }
    }
}

fn sum_after(events: &VecDeque<(f64, u32)>, cutoff: f64) -> u32 {
    events
        .iter()
        .filter(|(at, _)| *at > cutoff)
        .map(|(_, n)| n)
        .sum()
}

/// `ceil` into a replica count (NaN and negatives are 0, huge values saturate).
fn ceil_u32(x: f64) -> u32 {
    if x.is_nan() || x <= 0.0 {
        0
    } else {
        x.ceil().min(u32::MAX as f64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// upstream's chart: 10 pods per 150 s.
    const TEN_PODS_PER_150: RatePolicy = RatePolicy::Pods {
        value: 10,
        period_seconds: 150,
    };

    fn hpa(min: u32, max: u32, behavior: Behavior) -> Hpa {
        Hpa::new(Spec {
            min_replicas: min,
            max_replicas: max,
            tolerance: 0.1,
            behavior,
        })
    }

    fn at(replicas: u32) -> Target {
        Target {
            spec_replicas: replicas,
            status_replicas: replicas,
            ready: replicas,
        }
    }

    /// Syncs every 15 s with a fixed metric, the Deployment following; the counts set.
    fn sequence(h: &mut Hpa, start: u32, metric: Metric, syncs: usize) -> Vec<u32> {
        let mut current = start;
        (0..syncs)
            .map(|i| {
                current = h.sync(i as f64 * 15.0, at(current), &[metric]);
                current
            })
            .collect()
    }

    fn queue(total: f64, target: f64) -> Metric {
        Metric::AverageValue { total, target }
    }

    #[test]
    fn the_tolerance_ignores_ratios_within_ten_percent() {
        let mut h = hpa(1, 100, Behavior::kubernetes_default());
        // 10 replicas, target 1 each: 10.9 is within tolerance, 11.1 is not.
        assert_eq!(h.sync(0.0, at(10), &[queue(10.9, 1.0)]), 10);
        assert_eq!(h.sync(15.0, at(10), &[queue(11.1, 1.0)]), 12);
        // Upstream's note: wva's +1 on 11 replicas (12/11) is inside it, so is −1 on 10.
        let mut h = hpa(1, 100, Behavior::both_ways(0, 0, TEN_PODS_PER_150));
        assert_eq!(h.sync(0.0, at(11), &[queue(12.0, 1.0)]), 11);
        assert_eq!(h.sync(15.0, at(10), &[queue(9.0, 1.0)]), 10);
        // A Value target scales the ready pods by the ratio.
        let mut h = hpa(1, 100, Behavior::kubernetes_default());
        let target = Target {
            spec_replicas: 4,
            status_replicas: 4,
            ready: 3,
        };
        let kv = Metric::Value {
            value: 0.95,
            target: 0.7,
        };
        assert_eq!(h.sync(0.0, target, &[kv]), 5, "ceil(0.95 / 0.7 × 3)");
    }

    #[test]
    fn the_default_scale_up_doubles_or_adds_four_pods_every_fifteen_seconds() {
        let mut h = hpa(1, 100, Behavior::kubernetes_default());
        // max(1 + 4, 2) = 5, max(5 + 4, 10) = 10, then 20, then the metric's 30.
        assert_eq!(
            sequence(&mut h, 1, queue(30.0, 1.0), 5),
            [5, 10, 20, 30, 30]
        );
    }

    #[test]
    fn the_default_scale_down_waits_for_its_300_second_window() {
        let mut h = hpa(1, 100, Behavior::kubernetes_default());
        let mut current = 10;
        let mut downs = Vec::new();
        for i in 0..24 {
            let t = i as f64 * 15.0;
            let next = h.sync(t, at(current), &[queue(2.0, 1.0)]);
            if next != current {
                downs.push((t as u32, next));
            }
            current = next;
        }
        // The window starts with the current 10 at t = 0; it leaves the window at 300 s, and
        // 100 % per 15 s allows the whole step at once.
        assert_eq!(downs, [(300, 2)]);
    }

    /// The Kubernetes documentation's example: scale-down policies of 4 pods and 10 % per
    /// 60 s, the larger change selected — 10 % while above 40 replicas.
    #[test]
    fn the_documented_scale_down_policies_pick_the_larger_change() {
        let down = Rules {
            stabilization_seconds: 0,
            select: Select::Max,
            policies: vec![
                RatePolicy::Pods {
                    value: 4,
                    period_seconds: 60,
                },
                RatePolicy::Percent {
                    value: 10,
                    period_seconds: 60,
                },
            ],
        };
        let behavior = Behavior {
            up: Behavior::kubernetes_default().up,
            down: down.clone(),
        };
        let mut h = hpa(1, 100, behavior);
        // 80 → 72 (10 % of 80 beats 4), nothing more within the minute, then 72 → 64 (int
        // truncation of 64.8), 64 → 57, 57 → 51, 51 → 45, 45 → 40, 40 → 36 (both 4).
        let counts = sequence(&mut h, 80, queue(10.0, 1.0), 29);
        let changes: Vec<u32> = counts
            .windows(2)
            .filter(|w| w[0] != w[1])
            .map(|w| w[1])
            .collect();
        assert_eq!(counts[0], 72);
        assert_eq!(changes, [64, 57, 51, 45, 40, 36, 32]);
        // selectPolicy Min: the smaller change, 4 pods at a time.
        let behavior = Behavior {
            up: Behavior::kubernetes_default().up,
            down: Rules {
                select: Select::Min,
                ..down
            },
        };
        let mut h = hpa(1, 100, behavior);
        assert_eq!(
            sequence(&mut h, 80, queue(10.0, 1.0), 5)[..],
            [76, 76, 76, 76, 72]
        );
    }

    /// upstream's chart: 240 s windows, 10 pods per 150 s both ways.
    #[test]
    fn the_wva_chart_behaviour_waits_240_seconds_and_moves_ten_pods_per_150() {
        let mut h = hpa(1, 100, Behavior::both_ways(240, 240, TEN_PODS_PER_150));
        let counts = sequence(&mut h, 2, queue(30.0, 1.0), 40);
        let changes: Vec<(usize, u32)> = counts
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] != w[1])
            .map(|(i, w)| ((i + 1) * 15, w[1]))
            .collect();
        // The window starts with the current 2 at t = 0, which leaves it at 240 s; then +10
        // per 150 s (an event exactly one period old no longer counts).
        assert_eq!(changes, [(240, 12), (390, 22), (540, 30)]);
        // Disabled: never down.
        let mut behavior = Behavior::kubernetes_default();
        behavior.down.select = Select::Disabled;
        let mut h = hpa(1, 100, behavior);
        assert_eq!(sequence(&mut h, 8, queue(1.0, 1.0), 30).last(), Some(&8));
    }

    #[test]
    fn bounds_and_missing_metrics() {
        let mut h = hpa(2, 5, Behavior::kubernetes_default());
        assert_eq!(h.sync(0.0, at(3), &[queue(100.0, 1.0)]), 5, "max");
        assert_eq!(
            h.sync(15.0, at(9), &[]),
            5,
            "above max: to max, metrics or not"
        );
        assert_eq!(h.sync(30.0, at(1), &[]), 2, "below min: to min");
        assert_eq!(h.sync(45.0, at(4), &[]), 4, "no metric: no change");
        assert_eq!(
            h.sync(60.0, at(0), &[queue(9.0, 1.0)]),
            0,
            "scaled to 0: disabled"
        );
        // Several metrics: the largest proposal.
        let mut h = hpa(1, 100, Behavior::kubernetes_default());
        let both = [queue(3.0, 1.0), queue(64.0, 16.0)];
        assert_eq!(h.sync(0.0, at(1), &both), 4, "max(3, 4) within +4");
    }
}
