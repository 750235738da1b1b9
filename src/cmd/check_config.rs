//! `wva check-config`: checks saturation-scaling and scale-to-zero ConfigMap manifests.

use std::path::PathBuf;
use std::process::ExitCode;

use super::EXIT_INVALID;
use crate::config::manifest::{ConfigMapKind, check_manifests};

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

pub fn run(args: &CheckConfigArgs) -> ExitCode {
    let mut valid = true;
    for file in &args.files {
        let shown = file.display();
        // Refuse what no API server would accept before reading it into memory.
        if let Ok(meta) = std::fs::metadata(file)
            && meta.len() > crate::config::manifest::MAX_MANIFEST_BYTES as u64
        {
            println!(
                "{shown}: {}",
                crate::config::manifest::ManifestError::TooLarge(meta.len() as usize)
            );
            valid = false;
            continue;
        }
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
