//! The `wva` binary: parse the command line and dispatch. Everything else is in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    wva::cli::run(wva::cli::Cli::parse())
}
