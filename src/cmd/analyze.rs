//! `wva analyze`: one decision cycle on a snapshot file, printed as JSON or a table.

use std::process::ExitCode;

use clap::ValueEnum;

use super::{EXIT_INVALID, policy_name, print, read_input};
use crate::core::{Policy, Snapshot, decide};

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

pub fn run(args: &AnalyzeArgs) -> ExitCode {
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
