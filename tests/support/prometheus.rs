//! A real Prometheus (Debian's `prometheus` package) for the tests, on 127.0.0.1, scraping a
//! test exporter every second; optionally behind TLS, mTLS (`--web.config.file`, re-read by
//! Prometheus on every connection) or an nginx reverse proxy that checks a bearer token.
//! Stopped by PID when the test binary ends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::process::{Reaper, Server, free_port, http_ok, temp_dir, wait_until};

/// The test binary's scratch dir and reaper for servers started outside the control plane.
pub fn scratch() -> &'static (PathBuf, Reaper) {
    static SCRATCH: OnceLock<(PathBuf, Reaper)> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = temp_dir("wva-test-servers");
        let reaper = Reaper::start(&dir);
        (dir, reaper)
    })
}

fn binary(name: &str, candidates: &[&str], install: &str) -> PathBuf {
    for c in candidates {
        if Path::new(c).is_file() {
            return PathBuf::from(c);
        }
    }
    if let Ok(out) = Command::new("bash")
        .args(["-c", &format!("command -v {name}")])
        .output()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !path.is_empty() {
            return PathBuf::from(path);
        }
    }
    panic!("{name} is not installed. Install it with: {install}   (or: make tools)");
}

/// Serves a Prometheus text exposition that tests replace at will. Runs on its own thread, so
/// it outlives any one test's runtime. Clones share the exposition.
#[derive(Clone)]
pub struct Exporter {
    pub addr: SocketAddr,
    text: Arc<Mutex<String>>,
}

impl Exporter {
    pub fn start() -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = text.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let shared = shared.clone();
                        async move { shared.lock().unwrap().clone() }
                    }),
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { addr, text }
    }

    /// Replaces the exposition.
    pub fn set(&self, exposition: &str) {
        *self.text.lock().unwrap() = exposition.to_owned();
    }
}

/// Escapes a label value for the text exposition format.
pub fn exposition_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One exposition line: `metric{namespace="…",model_name="…",pod="…"} value`.
pub fn line(metric: &str, namespace: &str, model: &str, pod: &str, value: f64) -> String {
    format!(
        "{metric}{{namespace=\"{}\",model_name=\"{}\",pod=\"{}\"}} {value}\n",
        exposition_escape(namespace),
        exposition_escape(model),
        exposition_escape(pod)
    )
}

/// A running Prometheus.
pub struct Prometheus {
    pub port: u16,
    pub dir: PathBuf,
    pub server: Server,
    bin: PathBuf,
    args: Vec<String>,
    tls: bool,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every second. `web_config` (YAML) turns on TLS.
    pub fn start(name: &str, targets: &[SocketAddr], web_config: Option<&str>) -> Self {
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let jobs = format!(
            "- job_name: vllm\n  honor_labels: true\n  static_configs:\n  - targets: [{}]\n",
            targets.join(", ")
        );
        Self::start_jobs(name, &jobs, web_config)
    }

    /// Starts Prometheus scraping `target` every second as a pod in `namespace` would be
    /// scraped through Kubernetes service discovery: the target's own `namespace` label loses
    /// to the target label and becomes `exported_namespace` (what upstream's HPA selects on).
    pub fn start_pod_scrape(name: &str, target: &str, namespace: &str) -> Self {
        let jobs = format!(
            "- job_name: wva\n  static_configs:\n  - targets: ['{target}']\n    labels: {{namespace: '{namespace}'}}\n"
        );
        Self::start_jobs(name, &jobs, None)
    }

    fn start_jobs(name: &str, jobs: &str, web_config: Option<&str>) -> Self {
        let bin = binary(
            "prometheus",
            &["/usr/bin/prometheus"],
            "apt-get install prometheus",
        );
        let (scratch_dir, reaper) = scratch();
        let dir = scratch_dir.join(format!("prometheus-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}"
            ),
        )
        .unwrap();
        let port = free_port();
        let mut args = vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".into(),
        ];
        if let Some(web) = web_config {
            std::fs::write(dir.join("web.yml"), web).unwrap();
            args.push(format!(
                "--web.config.file={}",
                dir.join("web.yml").display()
            ));
        }
        let server = Server::spawn("prometheus", &bin, &args, &dir, reaper);
        let mut prometheus = Self {
            port,
            dir,
            server,
            bin,
            args,
            tls: web_config.is_some(),
        };
        prometheus.wait_ready();
        prometheus
    }

    fn wait_ready(&mut self) {
        let (port, tls) = (self.port, self.tls);
        wait_until(&mut self.server, Duration::from_secs(30), || {
            if tls {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                http_ok(port, "/-/ready")
            }
        });
    }

    /// Starts it again after [`Self::stop`]: same port, configuration and data.
    pub fn restart(&mut self) {
        self.server = Server::spawn("prometheus", &self.bin, &self.args, &self.dir, &scratch().1);
        self.wait_ready();
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Rewrites the web config (Prometheus re-reads it for new connections).
    pub fn set_web_config(&self, web: &str) {
        let tmp = self.dir.join("web.yml.new");
        std::fs::write(&tmp, web).unwrap();
        std::fs::rename(tmp, self.dir.join("web.yml")).unwrap();
    }

    pub fn stop(&mut self) {
        self.server.stop();
    }
}

/// nginx in front of `upstream_port`: TLS with `cert`/`key`, and 401 unless the request carries
/// `Authorization: Bearer <token>`.
pub struct Nginx {
    pub port: u16,
    dir: PathBuf,
    server: Server,
    cert: PathBuf,
    key: PathBuf,
    upstream_port: u16,
}

impl Nginx {
    pub fn start(name: &str, upstream_port: u16, cert: &Path, key: &Path, token: &str) -> Self {
        let bin = binary("nginx", &["/usr/sbin/nginx"], "apt-get install nginx-light");
        let (scratch_dir, reaper) = scratch();
        let dir = scratch_dir.join(format!("nginx-{name}"));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let port = free_port();
        write_nginx_config(&dir, port, cert, key, upstream_port, token);
        let args = vec![
            "-p".into(),
            dir.display().to_string(),
            "-c".into(),
            dir.join("nginx.conf").display().to_string(),
            "-g".into(),
            "daemon off;".into(),
        ];
        let mut server = Server::spawn("nginx", &bin, &args, &dir, reaper);
        wait_until(&mut server, Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            port,
            dir,
            server,
            cert: cert.into(),
            key: key.into(),
            upstream_port,
        }
    }

    /// Accepts `token` from now on (config rewrite and SIGHUP).
    pub fn rotate_token(&self, token: &str) {
        write_nginx_config(
            &self.dir,
            self.port,
            &self.cert,
            &self.key,
            self.upstream_port,
            token,
        );
        let status = Command::new("kill")
            .args(["-HUP", &self.server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // Give the workers a moment to pick up the new configuration.
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn write_nginx_config(dir: &Path, port: u16, cert: &Path, key: &Path, upstream: u16, token: &str) {
    let d = dir.display();
    let conf = format!(
        r#"worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{
      if ($http_authorization != "Bearer {token}") {{ return 401; }}
      proxy_pass http://127.0.0.1:{upstream};
    }}
  }}
}}
"#,
        cert = cert.display(),
        key = key.display(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
}

/// A configuration for `url` over plain http (a test Prometheus on loopback).
pub fn plain_config(url: &str) -> wva::config::prometheus::PrometheusConfig {
    let url = url.to_owned();
    wva::config::prometheus::PrometheusConfig::from_lookup(
        &|k| match k {
            "PROMETHEUS_BASE_URL" => Some(url.clone()),
            "PROMETHEUS_ALLOW_HTTP" => Some("true".into()),
            _ => None,
        },
        wva::config::prometheus::Source::Environment,
    )
    .expect("a base URL")
}
