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
//! Landed so far: [`pods`], the pure reading of cached Deployments and Pods that the snapshot
//! needs (which pods belong to which variant, which of them are stuck, which accelerator a
//! variant runs on). The cycle, actuation, status and events follow.

pub mod pods;
