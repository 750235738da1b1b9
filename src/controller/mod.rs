//! The controller (`wva run`): one decision cycle a period, never
//! overlapping itself. Each step is its own file; only the edges do IO.
//!
//! ```text
//!  cluster caches ─┐                                   ┌─> exported gauges (HPA / KEDA read them)
//!  (VAs, targets,  ├─> snapshot ──> core::decide ──> report ──┼─> /scale patches (direct mode)
//!   pods, config)  │    (data)       (pure fn)       (data)   ├─> VA status + conditions
//!  Prometheus ─────┘                                          └─> Kubernetes Events
//!  (≤ 3 queries per cycle)
//! ```
//!
//! One file per job: [`pods`] (which pods belong to which variant, which are stuck, which
//! accelerator a variant runs on), [`snapshot`] (cached objects and a collection in, the core's
//! snapshot and per-VA notes out), [`settings`] (the ConfigMaps in, the configuration in force
//! out, last good kept), [`status`] (the status a VA should have; written only when it changed),
//! [`actuate`] (publish, or patch `/scale`, or hold for an HPA), [`events`] (Events, warnings
//! throttled), [`metrics`] (upstream's four replica metrics, exact) — pure or a single API call —
//! and [`cycle`], the loop that joins them and does the IO. Knows nothing of admission.

pub mod actuate;
pub mod cycle;
pub mod events;
pub mod inventory;
pub mod metrics;
#[cfg(test)]
mod mock;
pub mod pods;
pub mod settings;
pub mod snapshot;
pub mod status;
pub mod wake;
