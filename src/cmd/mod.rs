//! The command layer: clap structs, one file per subcommand, the tokio runtime, signals and
//! every read of the process environment. It turns arguments into the library's own option
//! types (durations parsed at this boundary) and maps results to exit codes (0 success, 1
//! failure, 2 invalid input). Nothing in the library imports it; no rule lives here.

mod analyze;
mod check_config;
mod check_prometheus;
mod env;
mod kube;
mod run;
mod simulate;
mod webhook;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::core::Policy;

/// Exit code for invalid input (a snapshot, a ConfigMap, a flag).
pub const EXIT_INVALID: u8 = 2;

/// Parses the process's arguments and runs the subcommand.
pub fn main() -> ExitCode {
    run(Cli::parse())
}

#[derive(Debug, Parser)]
#[command(
    name = "wva",
    version,
    about = "Workload Variant Autoscaler for LLM inference: pending-aware, cost-aware saturation scaling",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one decision cycle on a snapshot and print the report (dry run / explain).
    Analyze(analyze::AnalyzeArgs),
    /// Check saturation-scaling and scale-to-zero ConfigMap manifests.
    CheckConfig(check_config::CheckConfigArgs),
    /// Resolve the Prometheus configuration as `wva run` does, connect, print the PromQL and
    /// the samples (JSON). The first tool to reach for when a VA shows MetricsMissing.
    CheckPrometheus(check_prometheus::CheckPrometheusArgs),
    /// Print the VariantAutoscaling CustomResourceDefinition as YAML.
    Crd,
    /// Run the autoscaler: the controller (and the admission webhook with --webhook-cert) against
    /// a cluster, until SIGTERM.
    Run(run::RunArgs),
    /// Run a virtual cluster on a virtual clock and compare scaling policies on the same load
    /// (the built-in scenario when no file is given).
    Simulate(simulate::SimulateArgs),
    /// Serve the admission webhook alone: validate and default VariantAutoscalings, validate
    /// the wva ConfigMaps.
    Webhook(webhook::WebhookArgs),
    /// Print the version.
    Version,
}

/// `:8443` means every interface; otherwise an `IP:port`.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse().map_err(|_| {
        format!("{text:?} is not an address such as :8443, 127.0.0.1:8443 or [::1]:8443")
    })
}

fn policy_name(name: &str) -> Result<Policy, String> {
    Policy::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Policy::ALL.iter().map(|p| p.name()).collect();
        format!("unknown policy {name:?}; known: {}", known.join(", "))
    })
}

/// A flag given in seconds (`--drain-seconds 5`), as a duration.
fn seconds(value: f64, flag: &str) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{flag} must be a non-negative number of seconds, got {value}"))
}

/// One tokio runtime for the process: multi-threaded for servers, current-thread for one-shot
/// commands. `None` (after saying why) when it cannot start.
fn runtime(multi_thread: bool) -> Option<tokio::runtime::Runtime> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    match builder.enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Analyze(args) => analyze::run(&args),
        Command::CheckConfig(args) => check_config::run(&args),
        Command::CheckPrometheus(args) => check_prometheus::run(&args),
        Command::Crd => print(&crate::api::crd_yaml()),
        Command::Run(args) => run::run(args),
        Command::Webhook(args) => webhook::run(args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Version => print(&format!(
            "wva {} (policy {}, compatible with WVA v0.5.0)\n",
            env!("CARGO_PKG_VERSION"),
            Policy::default().name()
        )),
    }
}

/// Pretty JSON with a final newline.
fn pretty_json(value: &impl serde::Serialize) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        // Reports hold only finite numbers and strings; say so if that ever breaks.
        Err(e) => format!("{{\"error\": \"cannot serialise the report: {e}\"}}\n"),
    }
}

fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`wva crd | head`) is not worth a panic.
        Err(_) => ExitCode::FAILURE,
    }
}

fn read_input(input: &str) -> Result<String, String> {
    let mut text = String::new();
    if input == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
    } else {
        text = std::fs::read_to_string(input).map_err(|e| format!("cannot read {input}: {e}"))?;
    }
    Ok(text)
}
