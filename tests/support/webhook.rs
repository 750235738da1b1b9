//! `wva webhook` as a process for tests: started on 127.0.0.1 with port 0, its bound addresses
//! read from the line it prints.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::pki::CertFiles;

pub struct WebhookProcess {
    pub child: Child,
    /// `https://127.0.0.1:<port>`.
    pub admission: String,
    /// `http://127.0.0.1:<port>`.
    pub probes: String,
}

impl WebhookProcess {
    /// Starts `wva webhook` with `serving` and `extra` arguments; `env` adds variables;
    /// standard error goes to `stderr`.
    pub fn spawn(serving: &CertFiles, extra: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wva"));
        command
            .args(["webhook", "--cert"])
            .arg(&serving.cert_path)
            .arg("--key")
            .arg(&serving.key_path)
            .args(["--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start wva webhook");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in the first line of wva webhook: {line:?}"))
                .to_owned()
        };
        Self {
            admission: field("admission="),
            probes: field("probes="),
            child,
        }
    }

    pub fn probe_port(&self) -> u16 {
        self.probes.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Sends SIGTERM and waits: (exit status, standard error if it was piped).
    pub fn terminate(&mut self) -> (std::process::ExitStatus, String) {
        use std::io::Read;
        let mut stderr = self.child.stderr.take();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_string(&mut text);
        }
        (status, text)
    }
}

impl Drop for WebhookProcess {
    /// A failing test must not leave the server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WebhookProcess {
    /// `wva webhook` without a cluster, on fresh certificates for `localhost` written to `dir`,
    /// logging at `log` level to nowhere (benchmarks). Returns the process and its CA.
    pub fn standalone(dir: &std::path::Path, log: &str) -> (Self, super::pki::TestCa) {
        std::fs::create_dir_all(dir).unwrap();
        let ca = super::pki::TestCa::new("bench-ca");
        let serving = ca.server_cert(dir, "tls", &["localhost"]);
        let process = Self::spawn(&serving, &[], &[("RUST_LOG", log)], Stdio::null());
        (process, ca)
    }

    /// The admission port.
    pub fn admission_port(&self) -> u16 {
        self.admission.rsplit(':').next().unwrap().parse().unwrap()
    }
}
