//! Test support: starts real components (etcd, kube-apiserver, kube-controller-manager) on
//! loopback with temp dirs and generated certificates, and stops them by PID when the test
//! binary exits — also after a panic or a kill. Shared by the integration test binaries; each
//! binary uses what it needs.
#![allow(dead_code)]

pub mod control_plane;
pub mod controller;
pub mod ecosystem;
pub mod https;
pub mod pki;
pub mod process;
pub mod prometheus;
pub mod webhook;
