//! wva: a Kubernetes autoscaler for LLM inference servers (vLLM), re-implementing llm-d's
//! Workload Variant Autoscaler v0.5.0. This crate root only declares the module tree; each module
//! states its one job and what it must not touch. Arrows point down only:
//! `cmd` → `admission`/`sim` → `cache`/`prometheus`/`runtime`/`tls`/`telemetry` → `core`/`config`/`api`.
//! Nothing imports `cmd`.
#![forbid(unsafe_code)]

pub mod admission;
pub mod api;
pub mod cache;
pub mod cmd;
pub mod config;
pub mod controller;
pub mod core;
pub mod leader;
pub mod prometheus;
pub mod runtime;
pub mod sim;
pub mod telemetry;
pub mod tls;
