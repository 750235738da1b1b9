//! Integration tier for the admission webhook: the real server over real TLS on 127.0.0.1
//! (rcgen certificates), fed AdmissionReview fixtures shaped as the API server sends them;
//! certificate rotation under load, mTLS, malformed input; and `wva webhook` as a process.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::https::{Http, RawTls, client, raw_tls, read_until_closed};
use support::pki::{CertFiles, TestCa};
use support::webhook::WebhookProcess;
use wva::admission::limits::ListenerLimits;
use wva::admission::server::{AdmissionState, RunningServer, ServeOptions, TlsFiles, start};
use wva::admission::{ConfigMapSettings, Route};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/admission");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{name}")).unwrap()
}

struct Setup {
    _guard: DirGuard,
    dir: PathBuf,
    ca: TestCa,
    serving: CertFiles,
    server: RunningServer,
    state: Arc<AdmissionState>,
}

fn temp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wva-admission-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn setup(name: &str, client_ca: Option<&TestCa>) -> Setup {
    setup_with(name, client_ca, ListenerLimits::default()).await
}

async fn setup_with(name: &str, client_ca: Option<&TestCa>, limits: ListenerLimits) -> Setup {
    let dir = temp(name);
    let ca = TestCa::new("webhook-ca");
    let serving = ca.server_cert(&dir, "tls", &["localhost", "127.0.0.1"]);
    let client_ca_path = client_ca.map(|c| c.write_cert(&dir, "client-ca.crt"));
    let options = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: TlsFiles {
            cert: serving.cert_path.clone(),
            key: serving.key_path.clone(),
            client_ca: client_ca_path,
        },
        reload_interval: Duration::from_millis(100),
        limits,
    };
    let state = Arc::new(AdmissionState::new(
        None,
        ConfigMapSettings::default(),
        Default::default(),
        &limits,
    ));
    let server = start(&options, state.clone()).await.unwrap();
    Setup {
        _guard: DirGuard(dir.clone()),
        dir,
        ca,
        serving,
        server,
        state,
    }
}

/// Sends two oversized bodies over raw TLS (HTTP/1.1): a `Content-Length` of 10 MiB with no
/// body byte sent, and a chunked body just over the route's limit. Returns each answer's head and whether the server
/// then closed the connection.
fn oversized_body(port: u16, ca_pem: &str, path: &str) -> (Vec<(&'static str, String)>, Vec<bool>) {
    use std::io::Write;
    let connect = || raw_tls(port, ca_pem, &[b"http/1.1"], Duration::from_secs(10));
    let answer = |stream: &mut RawTls| {
        let (received, closed) = read_until_closed(stream);
        (String::from_utf8_lossy(&received).into_owned(), closed)
    };
    let mut heads = Vec::new();
    let mut closed = Vec::new();

    let mut stream = connect();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        10 * 1024 * 1024
    )
    .unwrap();
    stream.flush().unwrap();
    let (text, was_closed) = answer(&mut stream);
    heads.push(("Content-Length 10 MiB", text));
    closed.push(was_closed);

    let mut stream = connect();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    // One chunk just over the VA routes' limit, then nothing: the server reads past the limit,
    // answers and closes with nothing of ours left unread (so the close is a FIN, not a reset
    // that would discard the answer).
    let size = wva::admission::MAX_VA_BODY_BYTES + 1024;
    write!(stream, "{size:x}\r\n").unwrap();
    stream.write_all(&vec![b' '; size]).unwrap();
    stream.flush().unwrap();
    let (text, was_closed) = answer(&mut stream);
    heads.push(("chunked, over the limit", text));
    closed.push(was_closed);
    (heads, closed)
}

/// The webhook without a cluster.
fn standalone() -> Arc<AdmissionState> {
    Arc::new(AdmissionState::new(
        None,
        ConfigMapSettings::default(),
        Default::default(),
        &ListenerLimits::default(),
    ))
}

/// Removes the test's temp dir when dropped.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Setup {
    fn url(&self, route: Route) -> String {
        format!(
            "https://localhost:{}{}",
            self.server.admission_addr.port(),
            route.path()
        )
    }

    fn client(&self, http: Http) -> reqwest::Client {
        client(&[&self.ca.cert_pem()], None, http, false)
    }
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn fixtures_get_the_expected_answers() {
    let s = setup("fixtures", None).await;
    let c = s.client(Http::Any);
    let validate = s.url(Route::ValidateVariantAutoscaling);

    let (code, r) = post(&c, &validate, fixture("create-valid.json")).await;
    assert_eq!(code, 200);
    assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(r["response"]["uid"], "7c6f2ec5-5a0e-4b5e-9a65-1d3c1b2f0001");
    assert_eq!(r["response"]["allowed"], true);

    let (code, r) = post(&c, &validate, fixture("create-invalid.json")).await;
    assert_eq!(code, 200, "a readable review is always answered with 200");
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 422);
    let message = r["response"]["status"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "[spec.scaleTargetRef: Required value: name the Deployment to scale, e.g. {kind: Deployment, name: my-model-decode}, spec.modelID: Required value, spec.variantCost: Invalid value: \"abc\": must be a non-negative decimal number such as \"10\" or \"12.5\"]"
    );

    let (_, r) = post(&c, &validate, fixture("update-with-old-object.json")).await;
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(
        r["response"]["warnings"][0],
        "spec.scaleTargetRef changed from Deployment/llama-decode: the variant now scales another workload"
    );

    let (_, r) = post(&c, &validate, fixture("delete.json")).await;
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(r["response"]["uid"], "7c6f2ec5-5a0e-4b5e-9a65-1d3c1b2f0004");

    let (_, r) = post(&c, &validate, fixture("create-dry-run.json")).await;
    assert_eq!(
        r["response"]["allowed"], false,
        "dry runs are checked like real requests"
    );

    let (_, r) = post(
        &c,
        &s.url(Route::ValidateConfig),
        fixture("configmap-invalid.json"),
    )
    .await;
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(
        r["response"]["status"]["message"],
        "saturation-scaling-config/default: kvCacheThreshold (0.50) should be >= kvSpareTrigger (0.60)"
    );

    let (_, r) = post(
        &c,
        &s.url(Route::MutateVariantAutoscaling),
        fixture("create-valid.json"),
    )
    .await;
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(r["response"]["patchType"], "JSONPatch");
    s.server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn http1_http2_and_tls12_all_work() {
    let s = setup("versions", None).await;
    let url = s.url(Route::ValidateVariantAutoscaling);
    for (http, want) in [
        (Http::Http1, reqwest::Version::HTTP_11),
        (Http::Http2, reqwest::Version::HTTP_2),
        (Http::Any, reqwest::Version::HTTP_2),
    ] {
        let response = s
            .client(http)
            .post(&url)
            .body(fixture("create-valid.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), want, "{http:?}");
        assert_eq!(response.status(), 200);
    }
    let tls12 = client(&[&s.ca.cert_pem()], None, Http::Any, true);
    assert_eq!(
        tls12
            .post(&url)
            .body(fixture("create-valid.json"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn malformed_input_gets_4xx_and_the_server_keeps_serving() {
    let s = setup("malformed", None).await;
    let c = s.client(Http::Http1);
    let url = s.url(Route::ValidateVariantAutoscaling);
    for (name, want) in [
        ("not-json.txt", "body is not JSON"),
        (
            "wrong-api-version.json",
            "apiVersion must be admission.k8s.io/v1",
        ),
        ("wrong-kind.json", "kind must be AdmissionReview"),
        ("no-request.json", "no request object"),
    ] {
        let (code, r) = post(&c, &url, fixture(name)).await;
        assert_eq!(code, 400, "{name}");
        assert!(r["error"].as_str().unwrap().contains(want), "{name}: {r}");
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let (code, r) = post(&c, &url, deep).await;
    assert_eq!(code, 400);
    assert!(
        r["error"].as_str().unwrap().contains("recursion limit"),
        "{r}"
    );

    // Too large: refused with 413 and the connection closed, exactly.
    let port = s.server.admission_addr.port();
    let ca = s.ca.cert_pem();
    let path = Route::ValidateVariantAutoscaling.path();
    let (head, closed) = tokio::task::spawn_blocking(move || oversized_body(port, &ca, path))
        .await
        .unwrap();
    for (how, answer) in &head {
        assert!(
            answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{how}: {answer:?}"
        );
    }
    assert_eq!(
        closed,
        [true, true],
        "the server closes the connection after a 413"
    );
    let response = c.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = c
        .post(format!(
            "https://localhost:{}/nope",
            s.server.admission_addr.port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let (code, r) = post(&c, &url, fixture("create-valid.json")).await;
    assert_eq!(
        (code, r["response"]["allowed"].clone()),
        (200, Value::Bool(true)),
        "still serving"
    );
    s.server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_given_ca() {
    let client_ca = TestCa::new("apiserver-client-ca");
    let s = setup("mtls", Some(&client_ca)).await;
    let url = s.url(Route::ValidateVariantAutoscaling);
    let no_cert = s.client(Http::Any);
    assert!(
        no_cert
            .post(&url)
            .body(fixture("create-valid.json"))
            .send()
            .await
            .is_err(),
        "no client certificate: handshake refused"
    );

    let good = client_ca.client_cert(&s.dir, "apiserver", "kube-apiserver", &[]);
    let with_cert = client(
        &[&s.ca.cert_pem()],
        Some((&good.cert_pem, &good.key_pem)),
        Http::Any,
        false,
    );
    let (code, r) = post(&with_cert, &url, fixture("create-valid.json")).await;
    assert_eq!(
        (code, r["response"]["allowed"].clone()),
        (200, Value::Bool(true))
    );

    let stranger_ca = TestCa::new("someone-else");
    let stranger = stranger_ca.client_cert(&s.dir, "stranger", "stranger", &[]);
    let wrong = client(
        &[&s.ca.cert_pem()],
        Some((&stranger.cert_pem, &stranger.key_pem)),
        Http::Any,
        false,
    );
    assert!(
        wrong
            .post(&url)
            .body(fixture("create-valid.json"))
            .send()
            .await
            .is_err(),
        "a certificate from another CA is refused"
    );
    s.server.shutdown(Duration::from_secs(1)).await;
}

/// Replaces a file the way a Secret volume update appears to a reader: a complete new file
/// renamed into place.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load_drops_no_request() {
    let s = setup("rotation", None).await;
    let url = s.url(Route::ValidateVariantAutoscaling);
    // Rotate to certificates from a new CA, so that only a server really serving the new
    // certificate satisfies a client that trusts the new CA alone.
    let new_ca = TestCa::new("webhook-ca-2");
    let both = client(
        &[&s.ca.cert_pem(), &new_ca.cert_pem()],
        None,
        Http::Any,
        false,
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), url.clone());
        // Half the workers reuse connections, half open a new one per request.
        let fresh = worker % 2 == 1;
        let cas = [s.ca.cert_pem(), new_ca.cert_pem()];
        let shared = both.clone();
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let c = if fresh {
                    client(&[&cas[0], &cas[1]], None, Http::Any, false)
                } else {
                    shared.clone()
                };
                match c.post(&url).body(fixture("create-valid.json")).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("request failed during rotation: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let next = new_ca.server_cert(
            &s.dir,
            &format!("rotated-{round}"),
            &["localhost", "127.0.0.1"],
        );
        // Certificate first, key a moment later: the server must keep the old pair meanwhile.
        replace(&s.serving.cert_path, &next.cert_pem);
        tokio::time::sleep(Duration::from_millis(150)).await;
        replace(&s.serving.key_path, &next.key_pem);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("rotation: {ok} requests answered, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 50, "only {ok} requests during rotation");

    let new_only = client(&[&new_ca.cert_pem()], None, Http::Any, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match new_only
            .post(&url)
            .body(fixture("create-valid.json"))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => break,
            other if Instant::now() > deadline => {
                panic!("the rotated certificate is not served: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let old_only = client(&[&s.ca.cert_pem()], None, Http::Any, false);
    assert!(
        old_only
            .post(&url)
            .body(fixture("create-valid.json"))
            .send()
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
    s.server.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn wva_webhook_process_serves_probes_metrics_and_stops_on_sigterm() {
    use std::process::Stdio;

    let dir = temp("process");
    let ca = TestCa::new("webhook-ca");
    let serving = ca.server_cert(&dir, "tls", &["localhost", "127.0.0.1"]);
    let mut process = WebhookProcess::spawn(&serving, &[], &[], Stdio::piped());
    let (admission, probes) = (process.admission.clone(), process.probes.clone());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let https = client(&[&ca.cert_pem()], None, Http::Any, false);
        let url = format!("{}{}", admission.replace("127.0.0.1", "localhost"), Route::ValidateVariantAutoscaling.path());
        let (code, r) = post(&https, &url, fixture("create-invalid.json")).await;
        assert_eq!((code, r["response"]["allowed"].clone()), (200, Value::Bool(false)));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let plain = reqwest::Client::builder().no_proxy().build().unwrap();
        assert_eq!(plain.get(format!("{probes}/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(plain.get(format!("{probes}/readyz")).send().await.unwrap().status(), 200);
        let metrics = plain.get(format!("{probes}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("wva_admission_requests_total{route=\"/validate-variantautoscaling\",result=\"denied\"} 1"), "{metrics}");
        assert!(metrics.contains("wva_admission_duration_seconds_bucket"), "{metrics}");
    });
    let (status, stderr) = process.terminate();
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(
        stderr.contains(
            "the one-VariantAutoscaling-per-workload rule and the target-exists warning are off"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("shutting down"), "{stderr}");
    drop(DirGuard(dir));
}

#[test]
fn wva_webhook_names_a_missing_certificate_file() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wva"))
        .args([
            "webhook",
            "--cert",
            "/nonexistent/tls.crt",
            "--key",
            "/nonexistent/tls.key",
            "--listen",
            "127.0.0.1:0",
            "--probe-listen",
            "127.0.0.1:0",
        ])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read certificate /nonexistent/tls.crt"),
        "{stderr}"
    );
}

#[tokio::test]
async fn dev_certs_script_makes_a_certificate_the_server_accepts() {
    let dir = temp("devcerts");
    let _guard = DirGuard(dir.clone());
    let out = std::process::Command::new("bash")
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/certs/dev-certs.sh"),
            dir.to_str().unwrap(),
        ])
        .output()
        .expect("run certs/dev-certs.sh (needs bash and openssl: apt-get install openssl)");
    assert!(
        out.status.success(),
        "dev-certs.sh failed (needs openssl: apt-get install openssl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ca_pem = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    use base64::Engine as _;
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap();
    assert_eq!(bundle, ca_pem.as_bytes(), "stdout is the caBundle");
    let options = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            client_ca: None,
        },
        reload_interval: Duration::from_secs(5),
        limits: ListenerLimits::default(),
    };
    let server = start(&options, standalone()).await.unwrap();
    let c = client(&[&ca_pem], None, Http::Any, false);
    for host in ["localhost", "127.0.0.1"] {
        let url = format!(
            "https://{host}:{}{}",
            server.admission_addr.port(),
            Route::ValidateVariantAutoscaling.path()
        );
        let (code, _) = post(&c, &url, fixture("create-valid.json")).await;
        assert_eq!(code, 200, "{host}");
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn readyz_waits_for_the_va_cache_to_sync() {
    use std::process::Stdio;

    let dir = temp("unsynced");
    let _guard = DirGuard(dir.clone());
    let ca = TestCa::new("webhook-ca");
    let serving = ca.server_cert(&dir, "tls", &["localhost"]);
    // A cluster that never answers: the watch cannot list, so the webhook must not be ready.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{dead_port}\n    insecure-skip-tls-verify: true\n\
             users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let process = WebhookProcess::spawn(
        &serving,
        &["--kubeconfig", kubeconfig.to_str().unwrap()],
        &[],
        Stdio::null(),
    );
    let probes = process.probes.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (healthz, readyz, body) = runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let plain = reqwest::Client::builder().no_proxy().build().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let healthz = plain
            .get(format!("{probes}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        let response = plain.get(format!("{probes}/readyz")).send().await.unwrap();
        (
            healthz,
            response.status().as_u16(),
            response.text().await.unwrap(),
        )
    });
    drop(process);
    assert_eq!(healthz, 200, "alive");
    assert_eq!(readyz, 503, "not ready: {body}");
    assert!(body.contains("has not synced"), "{body}");
    assert!(
        body.contains(
            "[-]cache/variantautoscalings failed: the variantautoscalings cache has not synced yet (waiting for the first full list)\n"
        ),
        "the check is named: {body}"
    );
}

/// Fail-stop: the TLS listener's task dies (aborted here, as a crash would end it) → readiness
/// turns false naming it while the other components drain, and the runtime ends with a failure
/// naming the component (`wva webhook` then exits non-zero).
#[tokio::test]
async fn the_process_stops_when_the_tls_listener_task_dies() {
    use wva::runtime::{Runtime, RuntimeError};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp("fail-stop");
    let _guard = DirGuard(dir.clone());
    let ca = TestCa::new("webhook-ca");
    let serving = ca.server_cert(&dir, "tls", &["localhost"]);
    let mut runtime = Runtime::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let probes = format!("http://{}", runtime.probe_addr());
    let options = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: TlsFiles {
            cert: serving.cert_path.clone(),
            key: serving.key_path.clone(),
            client_ca: None,
        },
        reload_interval: Duration::from_secs(5),
        limits: ListenerLimits::default(),
    };
    let server = wva::admission::server::bind(&options, standalone())
        .await
        .unwrap();
    let admission = format!(
        "https://localhost:{}{}",
        server.admission_addr.port(),
        Route::ValidateVariantAutoscaling.path()
    );
    let listener = runtime.spawn(
        "admission-server",
        server.serve_until(runtime.shutdown(), Duration::from_secs(1)),
    );
    // Another component that takes a moment to finish, as the controller finishing its cycle.
    let shutdown = runtime.shutdown();
    runtime.spawn("slow-to-drain", async move {
        shutdown.requested().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok::<(), String>(())
    });
    let run = tokio::spawn(runtime.run(std::future::pending(), Duration::from_secs(5)));

    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let readyz = async || {
        let r = plain
            .get(format!("{probes}/readyz?verbose"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (code, body) = readyz().await;
    assert_eq!(code, 200, "{body}");
    let https = client(&[&ca.cert_pem()], None, Http::Http1, false);
    assert_eq!(
        post(&https, &admission, fixture("create-valid.json"))
            .await
            .0,
        200
    );

    listener.abort();
    let deadline = Instant::now() + Duration::from_secs(1);
    let body = loop {
        let (code, body) = readyz().await;
        if code == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {code} after the listener died: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        body.contains("[-]shutdown failed: component admission-server stopped: aborted"),
        "{body}"
    );
    let fresh = client(&[&ca.cert_pem()], None, Http::Http1, false);
    assert!(
        fresh
            .post(&admission)
            .body(fixture("create-valid.json"))
            .send()
            .await
            .is_err(),
        "the TLS port is closed to new connections"
    );
    match run.await.unwrap() {
        Err(RuntimeError::ComponentStopped { name, why }) => assert_eq!(
            (name.as_str(), why.as_str()),
            ("admission-server", "aborted")
        ),
        other => panic!("expected a fail-stop naming the listener, got {other:?}"),
    }
}

#[test]
fn readyz_verbose_lists_the_named_checks() {
    use std::process::Stdio;
    let dir = temp("verbose");
    let _guard = DirGuard(dir.clone());
    let ca = TestCa::new("webhook-ca");
    let serving = ca.server_cert(&dir, "tls", &["localhost"]);
    let process = WebhookProcess::spawn(&serving, &[], &[], Stdio::null());
    let probes = process.probes.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (all, one, unknown) = runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let plain = reqwest::Client::builder().no_proxy().build().unwrap();
        let get = async |path: &str| {
            let r = plain.get(format!("{probes}{path}")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        };
        (
            get("/readyz?verbose").await,
            get("/readyz/shutdown").await,
            get("/readyz/nope").await,
        )
    });
    assert_eq!(
        all,
        (200, "[+]shutdown ok\nreadyz check passed\n".to_owned())
    );
    assert_eq!(one, (200, "ok".to_owned()));
    assert_eq!(unknown.0, 404, "{unknown:?}");
}

/// One-second time-outs, a cap of 8 connections, a 1 MiB body budget.
fn tight_limits() -> ListenerLimits {
    ListenerLimits {
        handshake_timeout: Duration::from_secs(1),
        first_request_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        max_connections: 8,
        body_budget_bytes: 1024 * 1024,
        ..ListenerLimits::default()
    }
}

/// Slowloris in every form the adversarial run used: each connection is closed by the server
/// within its time-out (1 s here), and an incomplete body gets 408.
#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    use std::io::Write;
    let s = setup_with("slowloris", None, tight_limits()).await;
    let port = s.server.admission_addr.port();
    let ca = s.ca.cert_pem();
    let body = String::from_utf8(fixture("create-valid.json")).unwrap();
    let results = tokio::task::spawn_blocking(move || {
        let mut results: Vec<(&str, bool, Duration, String)> = Vec::new();
        fn closing(what: &'static str, stream: &mut RawTls) -> (&'static str, bool, Duration, String) {
            let started = Instant::now();
            let (received, closed) = read_until_closed(stream);
            (what, closed, started.elapsed(), String::from_utf8_lossy(&received).into_owned())
        }
        let read = Duration::from_secs(5);
        let path = Route::ValidateVariantAutoscaling.path();

        // No TLS handshake at all.
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(read)).unwrap();
        let started = Instant::now();
        let closed = std::io::Read::read(&mut tcp, &mut [0u8; 64]).map_or(true, |n| n == 0);
        results.push(("no handshake", closed, started.elapsed(), String::new()));

        let mut idle = raw_tls(port, &ca, &[b"http/1.1"], read);
        results.push(closing("handshake, then nothing", &mut idle));

        let mut half = raw_tls(port, &ca, &[b"http/1.1"], read);
        write!(half, "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Ty").unwrap();
        results.push(closing("half-sent headers", &mut half));

        let mut short = raw_tls(port, &ca, &[b"http/1.1"], read);
        write!(short, "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{{\"apiVersion\"").unwrap();
        results.push(closing("body shorter than its Content-Length", &mut short));

        let mut chunked = raw_tls(port, &ca, &[b"http/1.1"], read);
        write!(chunked, "POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n").unwrap();
        results.push(closing("unterminated chunked body", &mut chunked));

        let mut kept = raw_tls(port, &ca, &[b"http/1.1"], read);
        write!(kept, "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        kept.flush().unwrap();
        results.push(closing("keep-alive, idle after one review", &mut kept));

        let mut h2 = raw_tls(port, &ca, &[b"h2"], read);
        // The client preface and an empty SETTINGS frame, then no stream.
        h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").unwrap();
        h2.flush().unwrap();
        results.push(closing("HTTP/2 preface, no stream", &mut h2));
        results
    })
    .await
    .unwrap();
    for (what, closed, after, _) in &results {
        eprintln!("{what}: closed={closed} after {after:?}");
        assert!(closed, "{what}: still open after {after:?}");
        assert!(
            *after < Duration::from_secs(4),
            "{what}: closed only after {after:?}"
        );
    }
    let answer = |what: &str| results.iter().find(|r| r.0 == what).unwrap().3.clone();
    assert!(
        answer("body shorter than its Content-Length").starts_with("HTTP/1.1 408 "),
        "{}",
        answer("body shorter than its Content-Length")
    );
    assert!(
        answer("unterminated chunked body").starts_with("HTTP/1.1 408 "),
        "{}",
        answer("unterminated chunked body")
    );
    assert!(
        answer("keep-alive, idle after one review").starts_with("HTTP/1.1 200 "),
        "{}",
        answer("keep-alive, idle after one review")
    );
    // The server's SETTINGS frame: type 4, and MAX_CONCURRENT_STREAMS (0x3) = 32.
    let h2 = results
        .iter()
        .find(|r| r.0 == "HTTP/2 preface, no stream")
        .unwrap();
    let frame = h2.3.as_bytes();
    assert_eq!(
        frame.get(3),
        Some(&4u8),
        "a SETTINGS frame first: {frame:?}"
    );
    let length = usize::from(frame[0]) << 16 | usize::from(frame[1]) << 8 | usize::from(frame[2]);
    let settings = &frame[9..9 + length];
    let max_streams = settings
        .chunks(6)
        .find(|p| p[..2] == [0, 3])
        .map(|p| u32::from_be_bytes([p[2], p[3], p[4], p[5]]));
    assert_eq!(max_streams, Some(32));
    s.server.shutdown(Duration::from_secs(1)).await;
}

/// At the connection cap, idle connections make room: a review still gets through, promptly.
#[tokio::test]
async fn at_the_connection_cap_reviews_still_get_through() {
    let limits = ListenerLimits {
        first_request_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        max_connections: 8,
        ..ListenerLimits::default()
    };
    let s = setup_with("cap", None, limits).await;
    let port = s.server.admission_addr.port();
    let ca = s.ca.cert_pem();
    let held = tokio::task::spawn_blocking(move || {
        (0..40)
            .map(|_| raw_tls(port, &ca, &[b"http/1.1"], Duration::from_secs(1)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let counts = s.server.connections.counts();
    assert!(counts.open <= 8, "{counts:?}");
    assert!(counts.evicted >= 32, "{counts:?}");
    let c = s.client(Http::Http1);
    let started = Instant::now();
    let (code, _) = post(
        &c,
        &s.url(Route::ValidateVariantAutoscaling),
        fixture("create-valid.json"),
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    s.server.shutdown(Duration::from_secs(1)).await;
}

/// Bodies in flight share one budget, counted as bytes arrive: once it is spent, the body that
/// would go over it is answered 503 instead of being read into memory.
#[tokio::test]
async fn the_body_budget_bounds_memory_held_by_unfinished_bodies() {
    use std::io::Write;
    let limits = ListenerLimits {
        body_read_timeout: Duration::from_secs(30),
        body_budget_bytes: 1024 * 1024,
        ..ListenerLimits::default()
    };
    let s = setup_with("budget", None, limits).await;
    let port = s.server.admission_addr.port();
    let ca = s.ca.cert_pem();
    let path = Route::ValidateConfig.path();
    let state = s.state.clone();
    let (held, third) = tokio::task::spawn_blocking(move || {
        // Declares 800 KiB, sends 700 KiB of it, then stalls.
        let open = || {
            let mut stream = raw_tls(port, &ca, &[b"http/1.1"], Duration::from_secs(5));
            write!(
                stream,
                "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
                800 * 1024
            )
            .unwrap();
            let _ = stream.write_all(&vec![b' '; 700 * 1024]);
            let _ = stream.flush();
            stream
        };
        let held = open();
        // The second body starts once the first one's bytes are counted (not after a guess).
        let deadline = Instant::now() + Duration::from_secs(10);
        while state.body_budget.available() > 1024 * 1024 - 700 * 1024 && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut second = open();
        let (answer, _) = read_until_closed(&mut second);
        (held, String::from_utf8_lossy(&answer).into_owned())
    })
    .await
    .unwrap();
    assert!(third.starts_with("HTTP/1.1 503 "), "{third}");
    drop(held);
    s.server.shutdown(Duration::from_secs(1)).await;
}
