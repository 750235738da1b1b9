//! The ecosystem the chart tier runs for real, built by `make tools` (scripts/ecosystem.sh):
//! helm against the test API server (its own config and cache dirs), cert-manager's controller
//! and cainjector (one pair per test binary, with cert-manager's CRDs), and a look at the
//! certificate a TLS server presents.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::control_plane::{ControlPlane, control_plane};
use super::controller::{Scene, WvaRun};
use super::process::Server;
use super::prometheus::Prometheus;

/// The bin folder of an ecosystem component, or a panic that says how to build it.
pub fn ecosystem_dir(name: &str) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ecosystem.sh");
    let out = Command::new("bash")
        .args([script, "--check", name])
        .output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        Ok(o) => panic!(
            "{name} is not built.\nInstall it with: make tools   (or: bash scripts/ecosystem.sh {name})\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run {script}: {e}"),
    }
}

pub const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/wva");

/// The Kubernetes version `helm template` renders for (the test control plane's).
pub const KUBE_VERSION: &str = "1.36.3";

/// `helm template` of the chart as release `release` in `namespace` with `args` (`--set` ...);
/// helm's standard error when it refuses.
pub fn render(
    cp: &ControlPlane,
    release: &str,
    namespace: &str,
    args: &[&str],
) -> Result<String, String> {
    let mut all = vec![
        "template",
        release,
        CHART,
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
    ];
    all.extend_from_slice(args);
    let out = helm(cp, &all);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs helm against the test API server; its config, cache and data live in the control
/// plane's directory, never in the user's home.
pub fn helm(cp: &ControlPlane, args: &[&str]) -> Output {
    let home = cp.dir.join("helm");
    Command::new(ecosystem_dir("helm").join("helm"))
        .args(args)
        .env("KUBECONFIG", &cp.kubeconfig)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm")
}

/// [`helm`] that must succeed; returns standard output.
pub fn helm_ok(cp: &ControlPlane, args: &[&str]) -> String {
    let out = helm(cp, args);
    assert!(
        out.status.success(),
        "helm {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// cert-manager's controller and cainjector, running against the control plane.
pub struct CertManager {
    _controller: Server,
    _cainjector: Server,
}

static CERT_MANAGER: OnceLock<CertManager> = OnceLock::new();

/// cert-manager for this test binary: its CRDs installed, controller and cainjector started
/// on first use (stopped by the reaper).
pub fn cert_manager() -> &'static CertManager {
    CERT_MANAGER.get_or_init(|| {
        let cp = control_plane();
        let bin = ecosystem_dir("cert-manager");
        let crds = bin.join("cert-manager.crds.yaml");
        cp.kubectl_ok(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
        for crd in [
            "certificates",
            "certificaterequests",
            "issuers",
            "clusterissuers",
        ] {
            cp.wait_established(&format!("{crd}.cert-manager.io"));
        }
        let _ = cp.kubectl(&["create", "namespace", "cert-manager"]);
        let kubeconfig = format!("--kubeconfig={}", cp.kubeconfig.display());
        let controller = cp.spawn(
            "cert-manager-controller",
            &bin.join("cert-manager-controller"),
            &[kubeconfig.clone(), "--v=1".into()],
        );
        let cainjector = cp.spawn(
            "cert-manager-cainjector",
            &bin.join("cert-manager-cainjector"),
            &[kubeconfig, "--v=1".into()],
        );
        CertManager {
            _controller: controller,
            _cainjector: cainjector,
        }
    })
}

/// The leaf certificate (DER) the TLS server on 127.0.0.1:`port` presents for `server_name`,
/// verified against `ca_pem`; `None` while it does not answer or does not verify.
pub fn served_certificate(port: u16, ca_pem: &str, server_name: &str) -> Option<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.ok()?).ok()?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).ok()?;
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).ok()?;
    }
    conn.peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.to_vec())
}

/// The first certificate of a PEM text, as DER.
pub fn first_der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .expect("a certificate in the PEM text")
        .unwrap()
        .to_vec()
}

/// Writes `files` into `dir` the way the kubelet updates a Secret volume: a new timestamped
/// directory, then one atomic swap of the `..data` link, so a reader never sees a new
/// certificate with an old key.
pub fn write_secret_volume(dir: &std::path::Path, files: &[(&str, &[u8])]) {
    use std::os::unix::fs::symlink;
    std::fs::create_dir_all(dir).unwrap();
    let stamp = format!(
        "..{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let version = dir.join(&stamp);
    std::fs::create_dir(&version).unwrap();
    for (name, data) in files {
        std::fs::write(version.join(name), data).unwrap();
        let link = dir.join(name);
        if !link.exists() {
            symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&stamp, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

/// prometheus-adapter as the aggregated `external.metrics.k8s.io` server, with upstream's
/// external rule for `wva_desired_replicas` (WVA's `config/samples/prometheus-adapter-values.yaml`,
/// unchanged), reached by the API server through an ExternalName Service to localhost.
pub struct PrometheusAdapter {
    pub server: Server,
}

/// Upstream's prometheus-adapter rule, as its sample values ship it.
pub const UPSTREAM_ADAPTER_RULES: &str = r#"externalRules:
- seriesQuery: 'wva_desired_replicas{variant_name!="",exported_namespace!=""}'
  resources:
    overrides:
      exported_namespace: {resource: "namespace"}
      variant_name: {resource: "deployment"}
  name: {matches: "^wva_desired_replicas", as: "wva_desired_replicas"}
  metricsQuery: 'wva_desired_replicas{<<.LabelMatchers>>}'
"#;

impl PrometheusAdapter {
    /// Starts the adapter on `prometheus_url` and registers it for `v1beta1.external.metrics.k8s.io`
    /// (one provider per cluster: one adapter per test binary at a time).
    pub fn start(cp: &ControlPlane, prometheus_url: &str) -> Self {
        let bin = ecosystem_dir("prometheus-adapter").join("prometheus-adapter");
        let dir = cp.dir.join("prometheus-adapter");
        std::fs::create_dir_all(&dir).unwrap();
        let ns = "wva-metrics-adapter";
        let service = "prometheus-adapter";
        let _ = cp.kubectl(&["create", "namespace", ns]);
        let ca = super::pki::TestCa::new("prometheus-adapter-ca");
        let host = format!("{service}.{ns}.svc");
        let serving = ca.server_cert(&dir, "serving", &[&host, "localhost", "127.0.0.1"]);
        std::fs::write(dir.join("config.yaml"), UPSTREAM_ADAPTER_RULES).unwrap();
        let port = super::process::free_port();
        let kubeconfig = cp.kubeconfig.display().to_string();
        let server = cp.spawn(
            "prometheus-adapter",
            &bin,
            &[
                format!("--prometheus-url={prometheus_url}"),
                format!("--config={}", dir.join("config.yaml").display()),
                format!("--lister-kubeconfig={kubeconfig}"),
                format!("--authentication-kubeconfig={kubeconfig}"),
                format!("--authorization-kubeconfig={kubeconfig}"),
                format!("--secure-port={port}"),
                "--bind-address=127.0.0.1".into(),
                format!("--tls-cert-file={}", serving.cert_path.display()),
                format!("--tls-private-key-file={}", serving.key_path.display()),
                "--metrics-relist-interval=2s".into(),
                "--v=1".into(),
            ],
        );
        register_external_metrics(cp, ns, service, port, &ca.cert_pem());
        Self { server }
    }
}

/// KEDA's operator and metrics adapter out of cluster: the adapter is the aggregated
/// `external.metrics.k8s.io` server (ExternalName Service to localhost), both share one cert dir
/// for their gRPC link, and KEDA's CRDs are installed from its module.
pub struct Keda {
    pub operator: Server,
    pub adapter: Server,
}

impl Keda {
    pub fn start(cp: &ControlPlane) -> Self {
        let bin = ecosystem_dir("keda");
        let crds = ecosystem_dir("crds");
        cp.kubectl_ok(&[
            "apply",
            "--server-side",
            "-f",
            crds.join("keda.sh_scaledobjects.yaml").to_str().unwrap(),
        ]);
        cp.wait_established("scaledobjects.keda.sh");
        let ns = "keda";
        let _ = cp.kubectl(&["create", "namespace", ns]);
        let dir = cp.dir.join("keda-certs");
        std::fs::create_dir_all(&dir).unwrap();
        let ca = super::pki::TestCa::new("keda-test-ca");
        ca.write_cert(&dir, "ca.crt");
        let service = "keda-metrics-apiserver";
        let cert = ca.server_and_client_cert(
            &dir,
            "tls",
            &[
                &format!("{service}.{ns}.svc"),
                "keda-operator.keda.svc.cluster.local",
                "localhost",
                "127.0.0.1",
            ],
        );
        // rcgen writes <name>.crt / <name>.key: KEDA reads tls.crt / tls.key.
        assert!(cert.cert_path.ends_with("tls.crt") && cert.key_path.ends_with("tls.key"));
        let free = super::process::free_port;
        let (grpc, secure) = (free(), free());
        let operator = cp.spawn_with_env(
            "keda-operator",
            &bin.join("keda-operator"),
            &[
                "--leader-elect=false".into(),
                "--enable-cert-rotation=false".into(),
                "--enable-webhook-patching=false".into(),
                "--enable-apiservice-patching=false".into(),
                format!("--cert-dir={}", dir.display()),
                format!("--metrics-bind-address=127.0.0.1:{}", free()),
                format!("--health-probe-bind-address=127.0.0.1:{}", free()),
                format!("--metrics-service-bind-address=127.0.0.1:{grpc}"),
            ],
            &keda_env(cp, ns),
        );
        let adapter = cp.spawn_with_env(
            "keda-adapter",
            &bin.join("keda-adapter"),
            &[
                format!("--secure-port={secure}"),
                "--bind-address=127.0.0.1".into(),
                format!("--cert-dir={}", dir.display()),
                format!("--tls-cert-file={}", cert.cert_path.display()),
                format!("--tls-private-key-file={}", cert.key_path.display()),
                format!("--port={}", free()),
                format!("--metrics-service-address=localhost:{grpc}"),
                format!("--lister-kubeconfig={}", cp.kubeconfig.display()),
                format!("--authentication-kubeconfig={}", cp.kubeconfig.display()),
                format!("--authorization-kubeconfig={}", cp.kubeconfig.display()),
            ],
            &keda_env(cp, ns),
        );
        register_external_metrics(cp, ns, service, secure, &ca.cert_pem());
        Self { operator, adapter }
    }
}

fn keda_env(cp: &ControlPlane, ns: &str) -> Vec<(String, String)> {
    vec![
        ("KUBECONFIG".into(), cp.kubeconfig.display().to_string()),
        ("POD_NAMESPACE".into(), ns.into()),
        ("KEDA_CLUSTER_OBJECT_NAMESPACE".into(), ns.into()),
        ("WATCH_NAMESPACE".into(), String::new()),
    ]
}

/// Registers the server on 127.0.0.1:`port` (serving a certificate signed by `ca_pem` for
/// `<service>.<ns>.svc`) as `v1beta1.external.metrics.k8s.io`, through an ExternalName Service to
/// localhost, and waits until the API server reports it Available.
fn register_external_metrics(cp: &ControlPlane, ns: &str, service: &str, port: u16, ca_pem: &str) {
    use base64::Engine;
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let objects = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service, "namespace": ns},
         "spec": {"type": "ExternalName", "externalName": "localhost", "ports": [{"port": port}]}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
         "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1",
                  "service": {"name": service, "namespace": ns, "port": port},
                  "caBundle": bundle, "groupPriorityMinimum": 100, "versionPriority": 100}}]});
    cp.kubectl_stdin_ok(&["apply", "-f", "-"], &objects.to_string());
    cp.kubectl_ok(&[
        "wait",
        "--for=condition=Available",
        "--timeout=90s",
        "apiservice/v1beta1.external.metrics.k8s.io",
    ]);
}

/// The metrics-path scene: one variant `llama` at one replica reporting, `wva run` in metrics
/// mode, and a Prometheus scraping wva as a pod of the controller namespace.
pub async fn metrics_path_scene(prefix: &str) -> (Scene, WvaRun, Prometheus) {
    let scene = Scene::new(prefix, "1s").await;
    scene.variant("llama", 1, "10").await;
    scene.wait_reported(1).await;
    let wva = scene.wva("metrics", &[]);
    let target = wva.metrics.trim_start_matches("http://").to_owned();
    let prometheus =
        Prometheus::start_pod_scrape(&format!("{}-wva", scene.sys), &target, &scene.sys);
    (scene, wva, prometheus)
}
