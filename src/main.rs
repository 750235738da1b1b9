//! The `wva` binary: install the TLS crypto provider, parse the command line and dispatch.
//! Everything else is in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // ring is the only crypto provider wva links; every TLS client and server uses it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    wva::cli::run(wva::cli::Cli::parse())
}
