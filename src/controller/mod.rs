//! The controller (`wva run`, issue in progress): one decision cycle a period, never
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
//! Landed so far: [`pods`] (which pods belong to which variant, which of them are stuck, which
//! accelerator a variant runs on) and [`snapshot`] (cached objects and a collection in, the
//! core's snapshot and per-VA notes out) and [`settings`] (the ConfigMaps in, the configuration
//! in force out, last good kept), all pure; [`metrics`], upstream's four replica metrics, exact.
//! The cycle, actuation, status and events follow.

pub mod actuate;
pub mod cycle;
pub mod events;
pub mod metrics;
#[cfg(test)]
mod mock;
pub mod pods;
pub mod settings;
pub mod snapshot;
pub mod status;
