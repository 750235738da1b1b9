//! A real Kubernetes control plane for the tests: etcd, kube-apiserver (RBAC, admission
//! webhooks, service-account tokens) and kube-controller-manager (deployments, replica sets,
//! service accounts, namespaces, garbage collection), as local processes on 127.0.0.1 built by
//! `make tools`. One per test binary, started on first use, stopped by PID when the binary ends.
//! There is no kubelet and no scheduler: [`set_pod_ready`] and [`set_pod_waiting`] play the
//! kubelet by writing pod status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;

use super::pki::{TestCa, signing_key};
use super::process::{Reaper, Server, free_port, http_ok, temp_dir, wait_until};

/// Where the test-tier binaries live, or a panic that says how to get them.
pub fn tools_dir() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tools.sh");
    let out = Command::new("bash").args([script, "--check"]).output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        Ok(o) => panic!(
            "control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kubectl) are missing.\n\
             Install them with: make tools   (or: bash scripts/tools.sh; or set KUBEBUILDER_ASSETS)\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run {script}: {e}"),
    }
}

/// The running control plane.
pub struct ControlPlane {
    pub dir: PathBuf,
    pub bin: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// Admin kubeconfig (user `wva-admin`, group `system:masters`), for kubectl and `wva`.
    pub kubeconfig: PathBuf,
    /// The cluster CA (PEM), also signs client certificates.
    pub ca: TestCa,
    processes: Mutex<Vec<Server>>,
    apiserver_args: Vec<String>,
    etcd_port: u16,
    crd_installed: OnceLock<()>,
    reaper: Reaper,
    /// kube-controller-manager runs the HPA controller.
    pub autoscaling: bool,
}

/// Waits until kube-apiserver answers `/readyz` (checking that it is still running).
fn wait_apiserver(apiserver: &mut Server, kubectl: &Path, kubeconfig: &Path) {
    wait_until(apiserver, Duration::from_secs(90), || {
        Command::new(kubectl)
            .args([
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "get",
                "--raw",
                "/readyz",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    });
}

fn audited(e: &serde_json::Value) -> AuditedRequest {
    AuditedRequest {
        verb: e["verb"].as_str().unwrap_or_default().into(),
        resource: e["objectRef"]["resource"]
            .as_str()
            .unwrap_or_default()
            .into(),
        subresource: e["objectRef"]["subresource"]
            .as_str()
            .unwrap_or_default()
            .into(),
        name: e["objectRef"]["name"].as_str().unwrap_or_default().into(),
        namespace: e["objectRef"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .into(),
        code: e["responseStatus"]["code"].as_u64().unwrap_or(0),
        replicas: e["requestObject"]["spec"]["replicas"].as_i64(),
        user: e["user"]["username"].as_str().unwrap_or_default().into(),
        received_us: micros_of_day(&e["requestReceivedTimestamp"]),
        completed_us: micros_of_day(&e["stageTimestamp"]),
    }
}

/// Microseconds since midnight UTC of an audit timestamp (`2026-12-02T12:24:26.019772Z`); 0 when
/// absent. Enough to tell how long the API server spent on a request and when.
fn micros_of_day(value: &serde_json::Value) -> i64 {
    let Some((_, time)) = value.as_str().and_then(|t| t.split_once('T')) else {
        return 0;
    };
    let time = time.trim_end_matches('Z');
    let mut parts = time.splitn(3, ':');
    let (Some(h), Some(m), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return 0;
    };
    let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
    let fraction = format!("{fraction:0<6}");
    let number = |t: &str| t.parse::<i64>().unwrap_or(0);
    ((number(h) * 60 + number(m)) * 60 + number(whole)) * 1_000_000 + number(&fraction[..6])
}

/// One write request, as the API server's audit log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditedRequest {
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub namespace: String,
    pub code: u64,
    /// `spec.replicas` of a `/scale` write (its request body is logged).
    pub replicas: Option<i64>,
    pub user: String,
    /// When the API server received the request and finished it (microseconds of the UTC day).
    pub received_us: i64,
    pub completed_us: i64,
}

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();
static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// The control plane of this test binary, started on first use.
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| ControlPlane::start(false))
}

/// The control plane with kube-controller-manager's HPA controller too (2 s sync, no downscale
/// stabilization), for the binaries that test the HPA path. A binary uses one or the other.
pub fn control_plane_with_autoscaling() -> &'static ControlPlane {
    let cp = CONTROL_PLANE.get_or_init(|| ControlPlane::start(true));
    assert!(
        cp.autoscaling,
        "this binary started its control plane without the HPA controller"
    );
    cp
}

impl ControlPlane {
    fn start(autoscaling: bool) -> Self {
        let started = Instant::now();
        let bin = tools_dir();
        let dir = temp_dir("wva-control-plane");
        let reaper = Reaper::start(&dir);
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki).unwrap();
        let ca = TestCa::new("wva-test-cluster-ca");
        let ca_path = ca.write_cert(&pki, "ca.crt");
        let serving = ca.server_cert(&pki, "apiserver", &["127.0.0.1", "localhost"]);
        let admin = ca.client_cert(&pki, "admin", "wva-admin", &["system:masters"]);
        let (sa_key, sa_pub) = signing_key(&pki, "service-account");
        // The aggregation layer (prometheus-adapter, KEDA) needs a front-proxy CA and a client
        // certificate the API server presents to aggregated servers.
        let front_proxy = TestCa::new("wva-test-front-proxy-ca");
        let front_proxy_ca = front_proxy.write_cert(&pki, "front-proxy-ca.crt");
        let proxy_client =
            front_proxy.client_cert(&pki, "front-proxy-client", "front-proxy-client", &[]);

        // etcd
        let etcd_port = free_port();
        let peer_port = free_port();
        let mut etcd = Server::spawn(
            "etcd",
            &bin.join("etcd"),
            &[
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
            &dir,
            &reaper,
        );
        wait_until(&mut etcd, Duration::from_secs(30), || {
            http_ok(etcd_port, "/health")
        });

        // kube-apiserver, with an audit log of every write (tests count API writes with it).
        let audit_policy = dir.join("audit-policy.yaml");
        std::fs::write(
            &audit_policy,
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Request\n  verbs: [update, patch]\n  resources: [{group: apps, resources: [deployments/scale]}]\n- level: Metadata\n  verbs: [create, update, patch, delete, deletecollection]\n- level: Metadata\n  userGroups: [system:serviceaccounts]\n- level: None\n",
        )
        .unwrap();
        let api_port = free_port();
        let server = format!("https://127.0.0.1:{api_port}");
        let apiserver_args: Vec<String> = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--tls-cert-file={}", serving.cert_path.display()),
            format!("--tls-private-key-file={}", serving.key_path.display()),
            format!("--client-ca-file={}", ca_path.display()),
            "--authorization-mode=RBAC".into(),
            "--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", sa_pub.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--service-cluster-ip-range=10.96.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--audit-policy-file={}", audit_policy.display()),
            format!("--audit-log-path={}", dir.join("audit.log").display()),
            format!(
                "--requestheader-client-ca-file={}",
                front_proxy_ca.display()
            ),
            "--requestheader-allowed-names=front-proxy-client".into(),
            "--requestheader-username-headers=X-Remote-User".into(),
            "--requestheader-group-headers=X-Remote-Group".into(),
            "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
            format!(
                "--proxy-client-cert-file={}",
                proxy_client.cert_path.display()
            ),
            format!(
                "--proxy-client-key-file={}",
                proxy_client.key_path.display()
            ),
        ];
        let mut apiserver = Server::spawn(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &apiserver_args,
            &dir,
            &reaper,
        );
        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(
            &kubeconfig,
            &server,
            &ca_path,
            &admin.cert_path,
            &admin.key_path,
        );
        let kubectl = bin.join("kubectl");
        wait_apiserver(&mut apiserver, &kubectl, &kubeconfig);

        // kube-controller-manager
        let mut controllers = "deployment-controller,replicaset-controller,serviceaccount-controller,serviceaccount-token-controller,namespace-controller,garbage-collector-controller".to_owned();
        let mut extra: Vec<String> = Vec::new();
        if autoscaling {
            controllers.push_str(",horizontal-pod-autoscaler-controller");
            extra.extend([
                "--horizontal-pod-autoscaler-sync-period=2s".into(),
                "--horizontal-pod-autoscaler-downscale-stabilization=0s".into(),
            ]);
        }
        let mut controller_manager = Server::spawn(
            "kube-controller-manager",
            &bin.join("kube-controller-manager"),
            &[
                vec![
                    format!("--kubeconfig={}", kubeconfig.display()),
                    "--bind-address=127.0.0.1".into(),
                    format!("--secure-port={}", free_port()),
                    format!("--controllers={controllers}"),
                    format!("--service-account-private-key-file={}", sa_key.display()),
                    format!("--root-ca-file={}", ca_path.display()),
                    "--leader-elect=false".into(),
                    "--use-service-account-credentials=false".into(),
                    // Scale benchmarks create thousands of pods: the default 20 QPS would take minutes.
                    "--kube-api-qps=500".into(),
                    "--kube-api-burst=1000".into(),
                    "--concurrent-replicaset-syncs=10".into(),
                    format!("--cert-dir={}", dir.join("kcm-certs").display()),
                ],
                extra,
            ]
            .concat(),
            &dir,
            &reaper,
        );
        // The service-account controller creating `default` in `default` shows it is working.
        wait_until(&mut controller_manager, Duration::from_secs(60), || {
            Command::new(&kubectl)
                .args([
                    "--kubeconfig",
                    kubeconfig.to_str().unwrap(),
                    "get",
                    "serviceaccount",
                    "default",
                    "-n",
                    "default",
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        eprintln!(
            "control plane ready at {server} in {:.1}s (dir {})",
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        Self {
            dir,
            bin,
            server,
            kubeconfig,
            ca,
            processes: Mutex::new(vec![etcd, apiserver, controller_manager]),
            apiserver_args,
            etcd_port,
            crd_installed: OnceLock::new(),
            reaper,
            autoscaling,
        }
    }

    /// Every write the API server answered in `namespace`, from its audit log, in order.
    pub fn audited_writes(&self, namespace: &str) -> Vec<AuditedRequest> {
        let text = std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["objectRef"]["namespace"] == namespace)
            .filter(|e| {
                ["create", "update", "patch", "delete", "deletecollection"]
                    .contains(&e["verb"].as_str().unwrap_or_default())
            })
            .map(|e| audited(&e))
            .collect()
    }

    /// Every request of `user` (service accounts' requests are all logged), in order.
    pub fn audited_requests_of(&self, user: &str) -> Vec<AuditedRequest> {
        let text = std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["user"]["username"] == user)
            .map(|e| audited(&e))
            .collect()
    }

    /// Stops kube-apiserver (every watch breaks), runs `between` while it is down, and starts it
    /// again on the same port and data; returns once it answers `/readyz`.
    pub fn restart_apiserver(&self, between: impl FnOnce()) {
        let mut processes = self.processes.lock().unwrap();
        processes[1].stop();
        between();
        processes[1] = Server::spawn(
            "kube-apiserver",
            &self.bin.join("kube-apiserver"),
            &self.apiserver_args,
            &self.dir,
            &self.reaper,
        );
        wait_apiserver(
            &mut processes[1],
            &self.bin.join("kubectl"),
            &self.kubeconfig,
        );
    }

    /// Compacts etcd's history past every resource version handed out so far (watches resuming
    /// from one then get 410 Gone); returns the revision.
    pub fn compact_etcd(&self) -> i64 {
        let post = |path: &str, body: &str| -> serde_json::Value {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.etcd_port)).unwrap();
            write!(
                stream,
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).unwrap();
            let json = &text[text.find('{').unwrap()..=text.rfind('}').unwrap()];
            serde_json::from_str(json).unwrap()
        };
        // A write outside Kubernetes' keys moves the revision past every resource version a
        // client has seen, so that after the compaction no watch can resume.
        let put = post(
            "/v3/kv/put",
            r#"{"key": "d3ZhLXRlc3QtZHVtbXk=", "value": "eA=="}"#,
        );
        let revision: i64 = put["header"]["revision"].as_str().unwrap().parse().unwrap();
        let compacted = post(
            "/v3/kv/compaction",
            &format!(r#"{{"revision": "{revision}", "physical": true}}"#),
        );
        assert!(compacted.get("error").is_none(), "{compacted}");
        revision
    }

    /// Spawns a component of the test tier (logging to `<name>.log` in the control plane's
    /// directory), stopped by the reaper when the test binary ends.
    pub fn spawn(&self, name: &'static str, program: &Path, args: &[String]) -> Server {
        Server::spawn(name, program, args, &self.dir, &self.reaper)
    }

    /// [`Self::spawn`] with extra environment variables.
    pub fn spawn_with_env(
        &self,
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Server {
        Server::spawn_with_env(name, program, args, env, &self.dir, &self.reaper)
    }

    /// Has the reaper stop `pid` too when the test binary ends (for processes a test starts).
    pub fn register_pid(&self, pid: u32) {
        self.reaper.register(pid);
    }

    /// Checks that every process still runs (with its log in the panic message if not).
    pub fn assert_running(&self) {
        for p in self.processes.lock().unwrap().iter_mut() {
            p.assert_running();
        }
    }

    /// A client with cluster-admin rights. Make one per test: a client belongs to the tokio
    /// runtime it was made in.
    pub async fn admin_client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        Client::try_from(config).unwrap()
    }

    /// Runs kubectl against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs kubectl with `stdin` as input (`kubectl apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// A new namespace (`<prefix>-<n>`) whose `default` service account exists, so that pods can
    /// be created in it.
    pub async fn fresh_namespace(&self, client: &Client, prefix: &str) -> String {
        let name = format!("{prefix}-{}", NAMESPACES.fetch_add(1, Ordering::SeqCst));
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
            )
            .await
            .unwrap();
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_for(
            Duration::from_secs(30),
            "the default service account",
            || async { accounts.get_opt("default").await.ok().flatten() },
        )
        .await;
        name
    }

    /// Installs `crds/` (once per binary) and waits until the CRD is Established.
    pub fn install_crd(&self) {
        self.crd_installed.get_or_init(|| {
            let crd = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/crds/llmd.ai_variantautoscalings.yaml"
            );
            self.kubectl_ok(&["apply", "--server-side", "-f", crd]);
            self.wait_established("variantautoscalings.llmd.ai");
        });
    }

    /// Runs kubectl, fails the test with its standard error unless it succeeds, and returns its
    /// standard output.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        succeeded(args, self.kubectl(args))
    }

    /// [`Self::kubectl_stdin`] that must succeed; returns standard output.
    pub fn kubectl_stdin_ok(&self, args: &[&str], stdin: &str) -> String {
        succeeded(args, self.kubectl_stdin(args, stdin))
    }

    /// Waits until the CustomResourceDefinition `name` is Established.
    pub fn wait_established(&self, name: &str) {
        self.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{name}"),
        ]);
    }

    /// A kubeconfig file authenticated as ServiceAccount `ns/name` (created if missing), for
    /// running `wva` with exactly the rights RBAC gives that account.
    pub async fn service_account_kubeconfig(
        &self,
        admin: &Client,
        ns: &str,
        name: &str,
    ) -> PathBuf {
        let token = self.service_account_token(admin, ns, name).await;
        let path = self.dir.join(format!("kubeconfig-{ns}-{name}"));
        let ca = self.dir.join("pki/ca.crt");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: wva-test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
             users:\n- name: {name}\n  user:\n    token: {token}\n\
             contexts:\n- name: sa\n  context:\n    cluster: wva-test\n    user: {name}\n    namespace: {ns}\ncurrent-context: sa\n",
            server = self.server,
            ca = ca.display(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn service_account_token(&self, admin: &Client, ns: &str, name: &str) -> String {
        let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
        if accounts.get_opt(name).await.unwrap().is_none() {
            accounts
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
                )
                .await
                .unwrap();
        }
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .unwrap()
            .status
            .expect("a token request answers with a token")
            .token
            .expect("a token request answers with a token")
    }

    /// A client authenticated as ServiceAccount `ns/name` (created if missing), with only the
    /// rights RBAC gives that account.
    pub async fn service_account_client(&self, admin: &Client, ns: &str, name: &str) -> Client {
        let token = self.service_account_token(admin, ns, name).await;
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.into()),
            ..Default::default()
        };
        Client::try_from(config).unwrap()
    }
}

fn write_kubeconfig(path: &Path, server: &str, ca: &Path, cert: &Path, key: &Path) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: wva-test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
         users:\n- name: wva-admin\n  user:\n    client-certificate: {cert}\n    client-key: {key}\n\
         contexts:\n- name: wva-test\n  context:\n    cluster: wva-test\n    user: wva-admin\n    namespace: default\ncurrent-context: wva-test\n",
        ca = ca.display(),
        cert = cert.display(),
        key = key.display(),
    );
    std::fs::write(path, text).unwrap();
}

/// Polls `check` until it yields a value, or panics naming `what`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

pub async fn patch_pod_status(
    client: &Client,
    ns: &str,
    name: &str,
    status: serde_json::Value,
) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap()
}

/// One status per container of the pod, all `ready` and in `state`.
async fn container_statuses(
    client: &Client,
    ns: &str,
    name: &str,
    ready: bool,
    state: serde_json::Value,
) -> Vec<serde_json::Value> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = pods.get(name).await.unwrap();
    pod.spec
        .map(|s| s.containers)
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            json!({
                "name": c.name, "image": c.image.unwrap_or_default(), "imageID": "", "ready": ready,
                "started": ready, "restartCount": 0, "state": state
            })
        })
        .collect()
}

/// Plays the kubelet: the pod is Running and Ready, every container running.
pub async fn set_pod_ready(client: &Client, ns: &str, name: &str) -> Pod {
    let now = now();
    let statuses = container_statuses(
        client,
        ns,
        name,
        true,
        json!({"running": {"startedAt": now}}),
    )
    .await;
    patch_pod_status(
        client,
        ns,
        name,
        json!({
            "phase": "Running",
            "startTime": now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
            ],
            "containerStatuses": statuses,
        }),
    )
    .await
}

/// Plays the kubelet: the pod is Pending with every container waiting for `reason` (e.g.
/// `ImagePullBackOff`), not Ready.
pub async fn set_pod_waiting(
    client: &Client,
    ns: &str,
    name: &str,
    reason: &str,
    message: &str,
) -> Pod {
    let now = now();
    let statuses = container_statuses(
        client,
        ns,
        name,
        false,
        json!({"waiting": {"reason": reason, "message": message}}),
    )
    .await;
    patch_pod_status(client, ns, name, json!({
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now},
        ],
        "containerStatuses": statuses,
    }))
    .await
}

fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
