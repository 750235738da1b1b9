//! Prometheus: the HTTP client (TLS, mTLS, bearer token, file reload, retries), PromQL building
//! and escaping (the only place PromQL is made), answer parsing, and the batched per-cycle
//! collection. Reads metrics; never writes anything anywhere.

pub mod client;
pub mod collect;
pub mod connect;
pub mod promql;
pub mod response;

pub use client::{ClientOptions, PrometheusClient, QueryError};
pub use collect::{Collection, ModelRequest, collect};
pub use promql::ModelKey;
