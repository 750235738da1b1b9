//! The command line: parses arguments and runs one subcommand, mapping results to exit codes
//! (0 success, 1 failure, 2 invalid input). Subcommands are thin: they read input, call the
//! library and print; no rule lives here.

use std::io::{Read, Write};
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
    /// Print the VariantAutoscaling CustomResourceDefinition as YAML.
    Crd,
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
        Command::Crd => print(&crate::api::crd_yaml()),
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
