//! The policies the simulator compares, behind one interface: what a policy sees (the
//! controller's snapshot each cycle, or its pods' scraped queues at each HPA sync) and what it
//! wants. A new policy implements [`SimPolicy`] and gets a name in [`by_name`].

use crate::core::{self, Snapshot};

/// One variant's decision in a controller cycle.
#[derive(Clone, Debug, PartialEq)]
pub struct CycleDecision {
    pub variant: String,
    pub current: u32,
    pub target: u32,
    pub pending: u32,
}

/// A scaling policy under simulation.
pub trait SimPolicy {
    fn name(&self) -> &str;

    /// Every controller cycle (outside Prometheus outages): the decisions from what the
    /// controller sees, or `None` when the policy does not decide on cycles.
    fn on_cycle(&mut self, snapshot: &Snapshot) -> Option<Vec<CycleDecision>>;

    /// For a policy that drives an HPA with its own metric (KEDA): the desired replicas of one
    /// variant from its pods' last scraped queue lengths. `None`: the HPA (if any) follows the
    /// published decision.
    fn hpa_desired(&self, _last_queues: &[f64]) -> Option<u32> {
        None
    }

    /// The HPA stabilization windows (up, down) in seconds when the policy brings its own HPA.
    fn own_hpa_windows(&self) -> Option<(f64, f64)> {
        None
    }
}

/// A policy of the decision core (`wva-v0.5.0`, `no-pending-awareness`).
pub struct Core(pub core::Policy);

impl SimPolicy for Core {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn on_cycle(&mut self, snapshot: &Snapshot) -> Option<Vec<CycleDecision>> {
        let report = core::decide(snapshot, self.0);
        Some(
            report
                .decisions
                .into_iter()
                .map(|d| CycleDecision {
                    variant: d.name,
                    current: d.current_replicas,
                    target: d.target_replicas,
                    pending: d.pending_replicas,
                })
                .collect(),
        )
    }
}

/// KEDA with a Prometheus trigger on `sum(vllm:num_requests_waiting)` and an `AverageValue`
/// target per replica, through the HPA with Kubernetes' default windows (0 s up, 300 s down).
pub struct KedaQueue {
    pub target: f64,
}

impl SimPolicy for KedaQueue {
    fn name(&self) -> &str {
        "keda-queue"
    }

    fn on_cycle(&mut self, _: &Snapshot) -> Option<Vec<CycleDecision>> {
        None
    }

    fn hpa_desired(&self, last_queues: &[f64]) -> Option<u32> {
        let sum: f64 = last_queues.iter().map(|q| q.trunc()).sum();
        Some((sum / self.target).ceil() as u32)
    }

    fn own_hpa_windows(&self) -> Option<(f64, f64)> {
        Some((0.0, 300.0))
    }
}

/// The policy called `name`, configured from the scenario.
pub fn by_name(name: &str, keda_queue_target: f64) -> Option<Box<dyn SimPolicy>> {
    if let Some(p) = core::Policy::from_name(name) {
        return Some(Box::new(Core(p)));
    }
    match name {
        "keda-queue" => Some(Box::new(KedaQueue {
            target: keda_queue_target,
        })),
        _ => None,
    }
}
