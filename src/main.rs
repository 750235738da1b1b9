//! The `wva` binary: install the TLS crypto provider, then hand over to the command layer.
//! Everything else is in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    // ring is the only crypto provider wva links; every TLS client and server uses it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    wva::cmd::main()
}
