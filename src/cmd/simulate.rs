//! `wva simulate`: a virtual cluster on a virtual clock comparing scaling policies on one load.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_INVALID, print};

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Scenario file (YAML, see docs/simulation.md); the built-in scenario when absent.
    pub scenario: Option<PathBuf>,
    /// Folder for the chart (wva-simulation.svg) and the timeline (wva-simulation.csv).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Seed of the random start-up times and arrival noise (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Policies to compare, comma-separated (default: the scenario's, else all).
    #[arg(long, value_delimiter = ',')]
    pub policies: Vec<String>,
    /// Print the summary only; write no file.
    #[arg(long)]
    pub no_files: bool,
    /// Sweep each policy's main knob and print the Pareto front of (SLO attainment, cost)
    /// instead of the one-point comparison; writes no file.
    #[arg(long)]
    pub frontier: bool,
    /// Judge one policy against the bar of a new policy (docs/simulation.md#judging) instead of
    /// the comparison; exit 1 when a check fails. Writes no file.
    #[arg(long, value_name = "POLICY", conflicts_with = "frontier")]
    pub judge: Option<String>,
    /// `text` (a table) or `json` (the same figures as data; file names go to stderr).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

pub fn run(args: &SimulateArgs) -> ExitCode {
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
    // Trace files are read next to the scenario file.
    let folder = args
        .scenario
        .as_ref()
        .and_then(|p| p.parent())
        .map(|p| p.to_path_buf());
    let read = |name: &str| -> Result<String, String> {
        let Some(folder) = &folder else {
            return Err("the built-in scenario reads no file".into());
        };
        let path = folder.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let mut scenario = match crate::sim::scenario::parse_with_files(&text, &read) {
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
    let mut progress = |fraction: f64| {
        if terminal && started.elapsed().as_secs_f64() > 1.0 {
            eprint!(
                "\rsimulating {} … {:>3.0}%",
                scenario.name,
                fraction * 100.0
            );
            shown = true;
        }
    };
    let json = args.output == "json";
    if let Some(name) = &args.judge {
        if !crate::sim::POLICIES.contains(&name.as_str()) {
            eprintln!(
                "error: --judge: unknown policy {name:?}; known: {}",
                crate::sim::POLICIES.join(", ")
            );
            return ExitCode::from(EXIT_INVALID);
        }
        let card = crate::sim::judge::judge(&scenario, name, &mut progress);
        if shown {
            eprintln!();
        }
        let text = if json {
            crate::sim::report::scorecard_json(&card)
        } else {
            crate::sim::report::scorecard(&card)
        };
        let printed = print(&text);
        return if card.passed() {
            printed
        } else {
            ExitCode::FAILURE
        };
    }
    if args.frontier {
        let frontier = crate::sim::frontier::sweep(&scenario, &mut progress);
        if shown {
            eprintln!();
        }
        return print(&if json {
            crate::sim::report::frontier_json(&frontier)
        } else {
            crate::sim::report::frontier(&frontier)
        });
    }
    let simulation = crate::sim::run(&scenario, &mut progress);
    if shown {
        eprintln!();
    }
    let mut text = if json {
        crate::sim::report::json(&simulation)
    } else {
        crate::sim::report::summary(&simulation)
    };
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
        let written = format!(
            "\nchart: {}\ntimeline: {}\n",
            chart.display(),
            timeline.display()
        );
        if json {
            eprint!("{}", written.trim_start());
        } else {
            text.push_str(&written);
        }
    }
    print(&text)
}
