//! wva: a Kubernetes autoscaler for LLM inference servers (vLLM), re-implementing llm-d's
//! Workload Variant Autoscaler v0.5.0. This crate root only declares the module tree; each module
//! states its one job and what it must not touch.
#![forbid(unsafe_code)]

pub mod admission;
pub mod api;
pub mod cli;
pub mod config;
pub mod core;
pub mod k8s;
pub mod prometheus;
pub mod sim;
pub mod telemetry;
