//! The command line: parses arguments and runs one subcommand, mapping results to exit codes
//! (0 success, 1 failure, 2 invalid input). Subcommands are thin: they read input, call the
//! library and print; no rule lives here.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::manifest::{ConfigMapKind, check_manifests};
use crate::core::{Policy, Snapshot, decide};

/// Exit code for invalid input (a snapshot, a ConfigMap, a flag).
pub const EXIT_INVALID: u8 = 2;

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
    Analyze(AnalyzeArgs),
    /// Check saturation-scaling and scale-to-zero ConfigMap manifests.
    CheckConfig(CheckConfigArgs),
    /// Resolve the Prometheus configuration as `wva run` does, connect, print the PromQL and
    /// the samples (JSON). The first tool to reach for when a VA shows MetricsMissing.
    CheckPrometheus(CheckPrometheusArgs),
    /// Print the VariantAutoscaling CustomResourceDefinition as YAML.
    Crd,
    /// Run a virtual cluster on a virtual clock and compare scaling policies on the same load
    /// (the built-in scenario when no file is given).
    Simulate(SimulateArgs),
    /// Serve the admission webhook alone: validate and default VariantAutoscalings, validate
    /// the wva ConfigMaps.
    Webhook(WebhookArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Snapshot JSON file, or - for standard input.
    #[arg(long, short, default_value = "-")]
    pub input: String,
    /// Scaling policy.
    #[arg(long, default_value = "wva-v0.5.0", value_parser = policy_name)]
    pub policy: Policy,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Table,
}

#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// ConfigMap manifests (YAML, one or several documents per file).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Name of the saturation-scaling ConfigMap, besides names ending in
    /// `saturation-scaling-config`.
    #[arg(long, env = "SATURATION_CONFIG_MAP_NAME", default_value = crate::config::saturation::CONFIG_MAP_NAME)]
    pub saturation_config_map_name: String,
}

/// Arguments of `wva check-prometheus`.
#[derive(Debug, clap::Args)]
pub struct CheckPrometheusArgs {
    /// Namespace of the model to collect (with --model).
    #[arg(long, requires = "model")]
    pub namespace: Option<String>,
    /// Model ID to collect exactly as the controller would (with --namespace); any printable
    /// characters, matched literally.
    #[arg(long, requires = "namespace")]
    pub model: Option<String>,
    /// Also query the request count over this period (a Go duration, e.g. 10m), as for a model
    /// with scale-to-zero.
    #[arg(long)]
    pub retention: Option<String>,
    /// Kubeconfig for reading the main ConfigMap when PROMETHEUS_BASE_URL is not set.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Scenario file (YAML, see docs/simulation.md); the built-in scenario when absent.
    pub scenario: Option<PathBuf>,
    /// Folder for the chart (wva-simulation.svg) and the timeline (wva-simulation.csv).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Seed of the random start-up times (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Policies to compare, comma-separated (default: the scenario's, else all).
    #[arg(long, value_delimiter = ',')]
    pub policies: Vec<String>,
    /// Print the summary only; write no file.
    #[arg(long)]
    pub no_files: bool,
}

#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    /// Serving certificate (PEM), e.g. the cert-manager Secret's tls.crt; re-read when it changes.
    #[arg(long)]
    pub cert: PathBuf,
    /// Private key (PEM) of the serving certificate; re-read when it changes.
    #[arg(long)]
    pub key: PathBuf,
    /// CA bundle (PEM) for client certificates: when set, callers (the API server) must present
    /// a certificate signed by it.
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// Address for admission reviews over TLS (`:8443` = every interface; port 0 = any free port).
    #[arg(long, default_value = ":8443", value_parser = listen_address)]
    pub listen: SocketAddr,
    /// Plain-HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = ":8081", value_parser = listen_address)]
    pub probe_listen: SocketAddr,
    /// Kubeconfig for the cluster view (duplicate-target rule, target-exists warning). Without
    /// it and outside a cluster, the webhook needs no cluster and those checks are off.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the wva ConfigMaps.
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "workload-variant-autoscaler-system"
    )]
    pub namespace: String,
    /// Name of the saturation-scaling ConfigMap.
    #[arg(long, env = "SATURATION_CONFIG_MAP_NAME", default_value = crate::config::saturation::CONFIG_MAP_NAME)]
    pub saturation_config_map_name: String,
    /// How often the certificate files are checked for new content (seconds).
    #[arg(long, default_value_t = 5.0)]
    pub cert_reload_seconds: f64,
    /// On SIGTERM, how long in-flight reviews may take to finish (seconds).
    #[arg(long, default_value_t = 5.0)]
    pub drain_seconds: f64,
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

/// Runs the parsed command.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Analyze(args) => analyze(&args),
        Command::CheckConfig(args) => check_config(&args),
        Command::CheckPrometheus(args) => check_prometheus(&args),
        Command::Crd => print(&crate::api::crd_yaml()),
        Command::Webhook(args) => crate::admission::serve_webhook(args),
        Command::Simulate(args) => simulate(&args),
        Command::Version => print(&format!(
            "wva {} (policy {}, compatible with WVA v0.5.0)\n",
            env!("CARGO_PKG_VERSION"),
            Policy::default().name()
        )),
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

fn analyze(args: &AnalyzeArgs) -> ExitCode {
    let text = match read_input(&args.input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let snapshot = match Snapshot::from_json(&text) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let report = decide(&snapshot, args.policy);
    let rendered = match args.output {
        OutputFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report)
                .expect("invariant: a report holds only finite numbers and strings");
            json.push('\n');
            json
        }
        OutputFormat::Table => report.to_table(),
    };
    print(&rendered)
}

fn check_config(args: &CheckConfigArgs) -> ExitCode {
    let mut valid = true;
    for file in &args.files {
        let shown = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {shown}: {e}");
                valid = false;
                continue;
            }
        };
        let report = match check_manifests(&text, &args.saturation_config_map_name) {
            Ok(r) => r,
            Err(e) => {
                println!("{shown}: {e}");
                valid = false;
                continue;
            }
        };
        for skipped in &report.skipped {
            eprintln!("note: {shown}: skipped {skipped}");
        }
        for warning in &report.warnings {
            eprintln!("warning: {warning}");
        }
        for error in &report.errors {
            println!("{error}");
        }
        if report.checked.is_empty() {
            println!(
                "{shown}: no wva ConfigMap found (expected kind ConfigMap named {} or {}, or ending in -{} / -{})",
                args.saturation_config_map_name,
                crate::config::scale_to_zero::CONFIG_MAP_NAME,
                crate::config::saturation::CONFIG_MAP_NAME,
                crate::config::scale_to_zero::CONFIG_MAP_NAME,
            );
            valid = false;
        } else if report.errors.is_empty() {
            let names: Vec<String> = report
                .checked
                .iter()
                .map(|(name, kind)| {
                    let kind = match kind {
                        ConfigMapKind::Saturation => "saturation scaling",
                        ConfigMapKind::ScaleToZero => "scale to zero",
                    };
                    format!("{name} ({kind})")
                })
                .collect();
            eprintln!("ok: {shown}: {}", names.join(", "));
        }
        valid &= report.errors.is_empty();
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

/// Everything `check-prometheus` does must finish within this, also when Prometheus hangs.
const CHECK_PROMETHEUS_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

fn check_prometheus(args: &CheckPrometheusArgs) -> ExitCode {
    use crate::prometheus::connect::{CheckError, check};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime
        .block_on(async { tokio::time::timeout(CHECK_PROMETHEUS_DEADLINE, check(args)).await });
    match outcome {
        Ok(Ok(report)) => {
            if let Some(warnings) = report["warnings"].as_array() {
                for w in warnings {
                    eprintln!("warning: {}", w.as_str().unwrap_or_default());
                }
            }
            let mut text =
                serde_json::to_string_pretty(&report).expect("invariant: JSON values serialise");
            text.push('\n');
            print(&text)
        }
        Ok(Err(CheckError::Invalid(why))) => {
            eprintln!("error: {why}");
            ExitCode::from(EXIT_INVALID)
        }
        Ok(Err(CheckError::Failed(why))) => {
            eprintln!("error: {why}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!(
                "error: no answer within {}s",
                CHECK_PROMETHEUS_DEADLINE.as_secs()
            );
            ExitCode::FAILURE
        }
    }
}

fn simulate(args: &SimulateArgs) -> ExitCode {
    use std::io::IsTerminal;
    let (source, text) = match &args.scenario {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => (path.display().to_string(), t),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::from(EXIT_INVALID);
            }
        },
        None => (
            "built-in scenario".to_owned(),
            crate::sim::scenario::DEFAULT_SCENARIO.to_owned(),
        ),
    };
    let mut scenario = match crate::sim::scenario::parse(&text) {
        Ok(s) => s,
        Err(problems) => {
            for p in problems {
                eprintln!("{source}: {p}");
            }
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if !args.policies.is_empty() {
        for p in &args.policies {
            if !crate::sim::POLICIES.contains(&p.as_str()) {
                eprintln!(
                    "error: --policies: unknown policy {p:?}; known: {}",
                    crate::sim::POLICIES.join(", ")
                );
                return ExitCode::from(EXIT_INVALID);
            }
        }
        scenario.policies = args.policies.clone();
    }
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut shown = false;
    let simulation = crate::sim::run(&scenario, &mut |fraction| {
        if terminal && started.elapsed().as_secs_f64() > 1.0 {
            eprint!(
                "\rsimulating {} … {:>3.0}%",
                scenario.name,
                fraction * 100.0
            );
            shown = true;
        }
    });
    if shown {
        eprintln!();
    }
    let mut text = crate::sim::report::summary(&simulation);
    if !args.no_files {
        let chart = args.out.join("wva-simulation.svg");
        let timeline = args.out.join("wva-simulation.csv");
        let written = std::fs::create_dir_all(&args.out)
            .and_then(|()| std::fs::write(&chart, crate::sim::report::chart_svg(&simulation)))
            .and_then(|()| {
                std::fs::write(&timeline, crate::sim::report::timeline_csv(&simulation))
            });
        if let Err(e) = written {
            eprintln!("error: cannot write to {}: {e}", args.out.display());
            return ExitCode::FAILURE;
        }
        text.push_str(&format!(
            "\nchart: {}\ntimeline: {}\n",
            chart.display(),
            timeline.display()
        ));
    }
    print(&text)
}
