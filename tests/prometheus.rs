//! Integration tier for Prometheus: a real Prometheus server (Debian's package) on 127.0.0.1
//! scraping a test exporter; plain HTTP (opt-in), HTTPS with a CA, server-name override, mTLS,
//! a bearer token through an nginx TLS proxy, rotation of those files while querying, hostile
//! model names and namespaces; and faults (server stopped, timeouts, 5xx, garbage, huge or
//! wrongly typed answers) from a fake endpoint.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::pki::TestCa;
use support::prometheus::{Exporter, Nginx, Prometheus, line, scratch};
use wva::config::prometheus::{PrometheusConfig, Source};
use wva::prometheus::client::{Backoff, ClientOptions, QueryError};
use wva::prometheus::collect::{CollectError, ModelRequest};
use wva::prometheus::promql::{KV_CACHE_METRIC, QUEUE_METRIC, REQUEST_SUCCESS_METRIC};
use wva::prometheus::{ModelKey, PrometheusClient, collect};

const HOSTILE: [&str; 6] = [
    "prod\",malicious=\"attack",
    "a\\\"b",
    "x\"} or vector(1) #",
    "trailing\\",
    "new\nline",
    "ünïcödé/模型",
];

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn config(pairs: &[(&str, &str)]) -> PrometheusConfig {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = PrometheusConfig::from_lookup(&|k| map.get(k).cloned(), Source::Environment)
        .expect("PROMETHEUS_BASE_URL");
    config.validate().expect("a valid configuration");
    config
}

fn fast() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(3),
        backoff: Backoff {
            initial: Duration::from_millis(50),
            ..Backoff::default()
        },
        ..ClientOptions::default()
    }
}

fn model(ns: &str, m: &str, retention: Option<i64>) -> ModelRequest {
    ModelRequest {
        key: ModelKey::new(ns, m),
        retention,
        served_rate: false,
    }
}

/// The exposition every plain-HTTP test shares: two namespaces, a hostile model name per the
/// test list, an idle and a busy request counter.
fn exposition() -> String {
    let mut text = String::new();
    text += &line(
        KV_CACHE_METRIC,
        "prod",
        "meta/llama-3.1-8b",
        "llama-a",
        0.42,
    );
    text += &line(QUEUE_METRIC, "prod", "meta/llama-3.1-8b", "llama-a", 2.9);
    text += &line(
        KV_CACHE_METRIC,
        "prod",
        "meta/llama-3.1-8b",
        "llama-b",
        0.81,
    );
    text += &line(QUEUE_METRIC, "prod", "meta/llama-3.1-8b", "llama-b", 6.0);
    text += &line(
        KV_CACHE_METRIC,
        "other",
        "meta/llama-3.1-8b",
        "other-a",
        0.99,
    );
    text += &line(QUEUE_METRIC, "other", "meta/llama-3.1-8b", "other-a", 50.0);
    text += &line(KV_CACHE_METRIC, "prod", "nan/model", "nan-a", f64::NAN);
    text += &line(QUEUE_METRIC, "prod", "nan/model", "nan-a", 1.0);
    text += &line(
        REQUEST_SUCCESS_METRIC,
        "prod",
        "meta/llama-3.1-8b",
        "llama-a",
        1000.0,
    );
    for (i, hostile) in HOSTILE.iter().enumerate() {
        text += &line(
            KV_CACHE_METRIC,
            "prod",
            hostile,
            &format!("hostile-{i}"),
            0.1 + i as f64 / 100.0,
        );
    }
    text
}

struct Shared {
    _exporter: Exporter,
    prometheus: Prometheus,
}

/// One plain-HTTP Prometheus for the binary, with data already scraped.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let exporter = Exporter::start();
        exporter.set(&exposition());
        let prometheus = Prometheus::start("shared", &[exporter.addr], None);
        Shared {
            _exporter: exporter,
            prometheus,
        }
    })
}

fn plain_client() -> PrometheusClient {
    http_client(&shared().prometheus.http_url())
}

/// A client of the plain-HTTP Prometheus at `url`.
fn http_client(url: &str) -> PrometheusClient {
    PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", url),
            ("PROMETHEUS_ALLOW_HTTP", "true"),
        ]),
        fast(),
    )
    .unwrap()
}

/// Polls until `check` is satisfied (scrapes land every second).
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn collection_over_plain_http_in_three_queries() {
    let client = plain_client();
    let models = [
        model("prod", "meta/llama-3.1-8b", Some(600_000_000_000)),
        model("prod", "nan/model", Some(600_000_000_000)),
        model("lab", "absent/model", None),
    ];
    let c = eventually("two llama pods", async || {
        let c = collect(&client, &models, now()).await.unwrap();
        // increase() needs two scrapes of the counter.
        let llama = c
            .models
            .iter()
            .find(|m| m.model_id == "meta/llama-3.1-8b")?;
        (llama.pods.len() == 2 && llama.request_count.is_some()).then_some(c.clone())
    })
    .await;
    assert_eq!(c.queries.len(), 3);
    let llama = c
        .models
        .iter()
        .find(|m| m.model_id == "meta/llama-3.1-8b")
        .unwrap();
    assert_eq!(llama.namespace, "prod");
    assert_eq!(llama.pods["llama-a"].kv_cache_usage, Some(0.42));
    assert_eq!(
        llama.pods["llama-a"].queue_length,
        Some(2),
        "2.9 truncated toward zero"
    );
    assert_eq!(llama.pods["llama-b"].queue_length, Some(6));
    assert!(!llama.pods["llama-a"].stale);
    assert!(
        !llama.pods.contains_key("other-a"),
        "never another namespace's series"
    );
    assert_eq!(
        llama.request_count,
        Some(0.0),
        "a constant counter: no request in the period"
    );
    let nan = c.models.iter().find(|m| m.model_id == "nan/model").unwrap();
    assert_eq!(
        nan.pods["nan-a"].kv_cache_usage, None,
        "NaN is missing, not 0"
    );
    assert_eq!(nan.pods["nan-a"].queue_length, Some(1));
    assert_eq!(
        nan.request_count, None,
        "no counter series: unknown, so scale-to-zero keeps the replicas"
    );
    let absent = c
        .models
        .iter()
        .find(|m| m.model_id == "absent/model")
        .unwrap();
    assert!(absent.pods.is_empty());

    // wva-next also asks for the served rate and the newest waiting count, of its models only:
    // a fourth and a fifth query.
    let mut rated = models.clone();
    rated[0].served_rate = true;
    let c = collect(&client, &rated, now()).await.unwrap();
    assert_eq!(c.queries.len(), 5, "{:?}", c.queries);
    let llama = &c
        .models
        .iter()
        .find(|m| m.model_id == "meta/llama-3.1-8b")
        .unwrap();
    assert_eq!(
        llama.pods["llama-a"].served_rps,
        Some(0.0),
        "a constant counter serves nothing"
    );
    assert_eq!(llama.pods["llama-a"].waiting, Some(2.9), "not truncated");
    let nan = c.models.iter().find(|m| m.model_id == "nan/model").unwrap();
    assert_eq!(nan.pods["nan-a"].served_rps, None, "not asked for");
    assert_eq!(nan.pods["nan-a"].waiting, None, "not asked for");
}

/// `queueLength` is the minute's largest (upstream's query); `waiting`, wva-next's, the newest:
/// a queue that drained shows in the one at once and in the other a minute later.
#[tokio::test]
async fn the_newest_waiting_count_is_not_the_minutes_largest() {
    let exporter = Exporter::start();
    let queue = |n: f64| {
        line(KV_CACHE_METRIC, "prod", "m", "p", 0.5) + &line(QUEUE_METRIC, "prod", "m", "p", n)
    };
    exporter.set(&queue(40.0));
    let prometheus = Prometheus::start("waiting", &[exporter.addr], None);
    let client = http_client(&prometheus.http_url());
    let models = [ModelRequest {
        served_rate: true,
        ..model("prod", "m", None)
    }];
    eventually("40 waiting", async || {
        let c = collect(&client, &models, now()).await.ok()?;
        (c.models[0].pods.get("p")?.waiting == Some(40.0)).then_some(())
    })
    .await;
    exporter.set(&queue(3.0));
    let pod = eventually("3 waiting", async || {
        let c = collect(&client, &models, now()).await.ok()?;
        let pod = c.models[0].pods.get("p")?.clone();
        (pod.waiting == Some(3.0)).then_some(pod)
    })
    .await;
    assert_eq!(pod.queue_length, Some(40), "the minute's largest");
    let c = collect(&client, &models, now()).await.unwrap();
    assert!(
        c.queries[3].starts_with(
            "max by (namespace, model_name, pod) (last_over_time(vllm:num_requests_waiting{"
        ),
        "KV, queue, served rate, waiting: {:?}",
        c.queries
    );
    assert_eq!(c.waiting_error, None);
}

#[tokio::test]
async fn hostile_model_names_match_literally_and_hostile_namespaces_are_refused() {
    let client = plain_client();
    for (i, hostile) in HOSTILE.iter().enumerate() {
        let key = ModelKey::new("prod", *hostile);
        if hostile.contains('\n') {
            let err = collect(
                &client,
                &[ModelRequest {
                    key,
                    retention: None,
                    served_rate: false,
                }],
                now(),
            )
            .await
            .unwrap_err();
            assert!(
                matches!(err, CollectError::Promql(_)),
                "a control character is refused before any query: {err}"
            );
            continue;
        }
        let c = eventually(&format!("the series of {hostile:?}"), async || {
            let c = collect(
                &client,
                &[ModelRequest {
                    key: key.clone(),
                    retention: None,
                    served_rate: false,
                }],
                now(),
            )
            .await
            .unwrap();
            (!c.models[0].pods.is_empty()).then_some(c)
        })
        .await;
        let pods: Vec<&String> = c.models[0].pods.keys().collect();
        assert_eq!(
            pods,
            [&format!("hostile-{i}")],
            "{hostile:?} matched exactly its own series"
        );
    }
    // A hostile name that has no series: no data and no error.
    let c = collect(
        &client,
        &[model("prod", "zz\"} or up{job=~\".+\"} #", None)],
        now(),
    )
    .await
    .unwrap();
    assert!(c.models[0].pods.is_empty());
    for ns in [
        "prod\",malicious=\"attack",
        "x\"} or vector(1) #",
        "Prod",
        "trailing\\",
    ] {
        let err = collect(&client, &[model(ns, "meta/llama-3.1-8b", None)], now())
            .await
            .unwrap_err();
        assert!(matches!(err, CollectError::Promql(_)), "{ns:?}: {err}");
    }
}

fn tls_web_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let mut web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = client_ca {
        web += &format!(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            ca.display()
        );
    }
    web
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = scratch().0.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn up(client: &PrometheusClient) -> Result<usize, QueryError> {
    client
        .query(&wva::prometheus::promql::models_seen())
        .await
        .map(|s| s.len())
}

#[tokio::test]
async fn https_with_a_ca_and_a_server_name_override() {
    let d = dir("https");
    let ca = TestCa::new("prometheus-ca");
    let ca_path = ca.write_cert(&d, "ca.crt");
    // The certificate names prometheus.monitoring.svc only, not 127.0.0.1.
    let serving = ca.server_cert(&d, "tls", &["prometheus.monitoring.svc"]);
    let prometheus = Prometheus::start(
        "https",
        &[],
        Some(&tls_web_config(&serving.cert_path, &serving.key_path, None)),
    );
    let url = format!("https://127.0.0.1:{}", prometheus.port);
    let ca_arg = ca_path.to_str().unwrap();

    let named = PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_CA_CERT_PATH", ca_arg),
            ("PROMETHEUS_SERVER_NAME", "prometheus.monitoring.svc"),
        ]),
        fast(),
    )
    .unwrap();
    up(&named)
        .await
        .expect("verified against the CA, for the configured server name");

    let unnamed = PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_CA_CERT_PATH", ca_arg),
        ]),
        fast(),
    )
    .unwrap();
    assert!(
        matches!(up(&unnamed).await, Err(QueryError::Connect(_))),
        "the certificate does not name 127.0.0.1"
    );

    let system_roots = PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_SERVER_NAME", "prometheus.monitoring.svc"),
        ]),
        fast(),
    )
    .unwrap();
    assert!(
        up(&system_roots).await.is_err(),
        "a private CA is not among the system roots"
    );

    let insecure = PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_TLS_INSECURE_SKIP_VERIFY", "true"),
        ]),
        fast(),
    )
    .unwrap();
    up(&insecure)
        .await
        .expect("insecure-skip-verify accepts any certificate");

    let missing = PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_CA_CERT_PATH", "/nonexistent/ca.crt"),
        ]),
        fast(),
    );
    let err = missing.err().unwrap().to_string();
    assert!(
        err.starts_with("PROMETHEUS_CA_CERT_PATH: cannot read /nonexistent/ca.crt"),
        "{err}"
    );
}

#[tokio::test]
async fn mtls_and_rotation_of_ca_and_client_certificate_while_querying() {
    let d = dir("mtls");
    let server_ca = TestCa::new("prometheus-ca");
    let client_ca = TestCa::new("client-ca");
    let serving = server_ca.server_cert(&d, "tls", &["127.0.0.1"]);
    let client_ca_path = client_ca.write_cert(&d, "client-ca.crt");
    let prometheus = Prometheus::start(
        "mtls",
        &[],
        Some(&tls_web_config(
            &serving.cert_path,
            &serving.key_path,
            Some(&client_ca_path),
        )),
    );
    let url = format!("https://127.0.0.1:{}", prometheus.port);
    let ca_path = server_ca.write_cert(&d, "ca.crt");
    let client_cert = client_ca.client_cert(&d, "client", "wva", &[]);

    let no_cert = PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_CA_CERT_PATH", ca_path.to_str().unwrap()),
        ]),
        fast(),
    )
    .unwrap();
    assert!(
        up(&no_cert).await.is_err(),
        "mTLS: no client certificate, no answer"
    );

    let client = Arc::new(
        PrometheusClient::new(
            config(&[
                ("PROMETHEUS_BASE_URL", &url),
                ("PROMETHEUS_CA_CERT_PATH", ca_path.to_str().unwrap()),
                (
                    "PROMETHEUS_CLIENT_CERT_PATH",
                    client_cert.cert_path.to_str().unwrap(),
                ),
                (
                    "PROMETHEUS_CLIENT_KEY_PATH",
                    client_cert.key_path.to_str().unwrap(),
                ),
            ]),
            fast(),
        )
        .unwrap(),
    );
    up(&client).await.expect("with a client certificate");

    // Query continuously while rotating: the client certificate (same CA), then the server's
    // CA the way operators do it (bundle old+new, switch the server, drop the old CA).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let worker = {
        let (client, stop, failures, answered) = (
            client.clone(),
            stop.clone(),
            failures.clone(),
            answered.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match up(&client).await {
                    Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("query failed during rotation: {e}");
                        failures.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let replace = |path: &Path, text: &str| {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, path).unwrap();
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next_client = client_ca.client_cert(&d, "client-next", "wva", &[]);
    replace(&client_cert.cert_path, &next_client.cert_pem);
    replace(&client_cert.key_path, &next_client.key_pem);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new_ca = TestCa::new("prometheus-ca-2");
    replace(
        &ca_path,
        &format!("{}{}", server_ca.cert_pem(), new_ca.cert_pem()),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new_serving = new_ca.server_cert(&d, "tls-next", &["127.0.0.1"]);
    prometheus.set_web_config(&tls_web_config(
        &new_serving.cert_path,
        &new_serving.key_path,
        Some(&client_ca_path),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    replace(&ca_path, &new_ca.cert_pem());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    worker.await.unwrap();
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(answered.load(Ordering::Relaxed) > 10);
    up(&client)
        .await
        .expect("after the rotation, only the new CA is trusted and it works");
}

#[tokio::test]
async fn bearer_token_through_nginx_and_token_file_rotation() {
    let d = dir("nginx");
    let ca = TestCa::new("proxy-ca");
    let ca_path = ca.write_cert(&d, "ca.crt");
    let serving = ca.server_cert(&d, "tls", &["127.0.0.1"]);
    let nginx = Nginx::start(
        "bearer",
        shared().prometheus.port,
        &serving.cert_path,
        &serving.key_path,
        "first-token",
    );
    let url = format!("https://127.0.0.1:{}", nginx.port);
    let ca_arg = ca_path.to_str().unwrap();

    let by_value = PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_CA_CERT_PATH", ca_arg),
            ("PROMETHEUS_BEARER_TOKEN", "first-token"),
        ]),
        fast(),
    )
    .unwrap();
    up(&by_value).await.expect("the token from the variable");

    let wrong = PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_CA_CERT_PATH", ca_arg),
            ("PROMETHEUS_BEARER_TOKEN", "wrong"),
        ]),
        fast(),
    )
    .unwrap();
    let started = Instant::now();
    match up(&wrong).await {
        Err(QueryError::Status { code: 401, .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "4xx is not retried"
    );

    let token_file = d.join("token");
    std::fs::write(&token_file, "first-token\n").unwrap();
    let by_file = PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_CA_CERT_PATH", ca_arg),
            ("PROMETHEUS_TOKEN_PATH", token_file.to_str().unwrap()),
        ]),
        fast(),
    )
    .unwrap();
    up(&by_file)
        .await
        .expect("the token from the file, whitespace trimmed");

    // A projected service-account token rotates: the proxy accepts the new one, the file changes.
    nginx.rotate_token("second-token");
    std::fs::write(&token_file, "second-token").unwrap();
    up(&by_file)
        .await
        .expect("the new token is read from the file without a restart");
}

/// A fake Prometheus endpoint that misbehaves on purpose.
async fn fake(behaviour: &'static str, hits: Arc<AtomicUsize>) -> String {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/api/v1/query",
        axum::routing::post(move || {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                match behaviour {
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        "{}".into_response()
                    }
                    "500" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
                    "bad_data" => (
                        StatusCode::BAD_REQUEST,
                        r#"{"status":"error","errorType":"bad_data","error":"1:1: parse error"}"#,
                    )
                        .into_response(),
                    "garbage" => "{\"status\": \"success\", \"data\": [".into_response(),
                    "string" => {
                        r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#
                            .into_response()
                    }
                    "redirect" => (
                        StatusCode::FOUND,
                        [(
                            axum::http::header::LOCATION,
                            "http://user:hunter2@plain-http.example/api/v1/query",
                        )],
                        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                    )
                        .into_response(),
                    "huge" => {
                        let chunk = axum::body::Bytes::from(vec![b' '; 1024 * 1024]);
                        let stream = futures::stream::iter(
                            (0..100).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                        );
                        axum::body::Body::from_stream(stream).into_response()
                    }
                    _ => unreachable!(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn fake_client(url: &str, timeout: Duration) -> PrometheusClient {
    let options = ClientOptions {
        timeout,
        backoff: Backoff {
            initial: Duration::from_millis(20),
            ..Backoff::default()
        },
        ..ClientOptions::default()
    };
    PrometheusClient::new(
        config(&[
            ("PROMETHEUS_BASE_URL", url),
            ("PROMETHEUS_ALLOW_HTTP", "true"),
        ]),
        options,
    )
    .unwrap()
}

#[tokio::test]
async fn faults_are_typed_errors_and_only_5xx_and_connection_errors_are_retried() {
    let cases: [(&str, Duration, usize); 7] = [
        ("redirect", Duration::from_secs(5), 1),
        ("slow", Duration::from_secs(1), 1),
        ("500", Duration::from_secs(5), 5),
        ("bad_data", Duration::from_secs(5), 1),
        ("garbage", Duration::from_secs(5), 1),
        ("string", Duration::from_secs(5), 1),
        ("huge", Duration::from_secs(5), 1),
    ];
    for (behaviour, timeout, want_hits) in cases {
        let hits = Arc::new(AtomicUsize::new(0));
        let url = fake(behaviour, hits.clone()).await;
        let client = fake_client(&url, timeout);
        let started = Instant::now();
        let err = client.query("up").await.unwrap_err();
        let ok = match behaviour {
            "slow" => {
                matches!(err, QueryError::Timeout(_)) && started.elapsed() < Duration::from_secs(2)
            }
            "500" => matches!(err, QueryError::Status { code: 500, .. }),
            "bad_data" => err.to_string() == "Prometheus answered bad_data: 1:1: parse error",
            "garbage" => err.to_string().starts_with("not a Prometheus query answer"),
            "string" => err
                .to_string()
                .contains("unexpected result type \"string\""),
            "huge" => matches!(err, QueryError::TooLarge(_)),
            // Not followed, reported with its target, the password redacted.
            "redirect" => {
                matches!(err, QueryError::Redirect { code: 302, ref location } if location == "http://<redacted>@plain-http.example/api/v1/query")
                    && !err.to_string().contains("hunter2")
            }
            _ => false,
        };
        assert!(ok, "{behaviour}: {err:?}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            want_hits,
            "{behaviour}: attempts"
        );
    }
}

#[tokio::test]
async fn prometheus_stopped_mid_run_is_an_error_not_empty_data() {
    let exporter = Exporter::start();
    exporter.set(&line(KV_CACHE_METRIC, "prod", "m", "p", 0.5));
    let mut prometheus = Prometheus::start("stopped", &[exporter.addr], None);
    let client = http_client(&prometheus.http_url());
    let models = [model("prod", "m", None)];
    eventually("the pod", async || {
        let c = collect(&client, &models, now()).await.ok()?;
        (!c.models[0].pods.is_empty()).then_some(())
    })
    .await;
    prometheus.stop();
    let started = Instant::now();
    match collect(&client, &models, now()).await {
        Err(CollectError::Query {
            error: QueryError::Connect(_),
            ..
        }) => {}
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by the query budget"
    );
}

fn check_prometheus(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, serde_json::Value, String, Duration) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wva"));
    command.arg("check-prometheus").args(args);
    for var in [
        "PROMETHEUS_BASE_URL",
        "PROMETHEUS_ALLOW_HTTP",
        "PROMETHEUS_CA_CERT_PATH",
        "PROMETHEUS_BEARER_TOKEN",
        "PROMETHEUS_TOKEN_PATH",
        "KUBERNETES_SERVICE_HOST",
    ] {
        command.env_remove(var);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let started = Instant::now();
    let out = command.output().unwrap();
    let elapsed = started.elapsed();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    )
}

#[tokio::test]
async fn check_prometheus_prints_the_promql_and_the_samples() {
    let url = shared().prometheus.http_url();
    let env = [
        ("PROMETHEUS_BASE_URL", url.as_str()),
        ("PROMETHEUS_ALLOW_HTTP", "true"),
    ];
    // Wait for the scrape through the library first.
    let client = plain_client();
    eventually("the llama pods", async || {
        let c = collect(&client, &[model("prod", "meta/llama-3.1-8b", None)], now())
            .await
            .ok()?;
        (c.models[0].pods.len() == 2).then_some(())
    })
    .await;

    // The model `wva check-prometheus` is asked about below.
    let llama = ["--namespace", "prod", "--model", "meta/llama-3.1-8b"];
    let (code, json, stderr, _) =
        check_prometheus(&[&llama[..], &["--retention", "10m"]].concat(), &env);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: PROMETHEUS_BASE_URL http://"),
        "the plain-http warning: {stderr}"
    );
    assert_eq!(json["prometheus"]["source"], "environment");
    assert_eq!(json["queries"].as_array().unwrap().len(), 3);
    assert!(
        json["queries"][0]
            .as_str()
            .unwrap()
            .contains("model_name=\"meta/llama-3.1-8b\"")
    );
    assert_eq!(json["models"][0]["pods"]["llama-a"]["kvCacheUsage"], 0.42);
    assert!(
        json["models"][0]["pods"]["llama-a"]["servedRps"].is_null(),
        "the served rate is wva-next's"
    );

    // `--policy wva-next` collects what `wva run --policy wva-next` does: the served rate too
    // (once Prometheus has the two scrapes a rate needs).
    let rated = ModelRequest {
        served_rate: true,
        ..model("prod", "meta/llama-3.1-8b", None)
    };
    eventually("a served rate", async || {
        let c = collect(&client, std::slice::from_ref(&rated), now())
            .await
            .ok()?;
        c.models[0].pods.get("llama-a")?.served_rps.map(|_| ())
    })
    .await;
    let (code, json, stderr, _) =
        check_prometheus(&[&llama[..], &["--policy", "wva-next"]].concat(), &env);
    assert_eq!(code, Some(0), "{stderr}");
    let queries = json["queries"].as_array().unwrap();
    assert_eq!(
        queries.len(),
        4,
        "KV, queue, the served rate and the newest waiting count: {queries:?}"
    );
    assert!(
        queries[2]
            .as_str()
            .unwrap()
            .contains("rate(vllm:request_success_total{"),
        "{queries:?}"
    );
    assert_eq!(json["models"][0]["pods"]["llama-a"]["servedRps"], 0.0);
    assert_eq!(json["models"][0]["pods"]["llama-a"]["waiting"], 2.9);
    assert!(json["servedRateError"].is_null(), "{json}");
    assert!(json["waitingError"].is_null(), "{json}");
    let (code, _, stderr, _) = check_prometheus(&["--policy", "wva-nxt"], &env);
    assert_eq!(code, Some(2), "a typo is refused: {stderr}");

    let (code, json, _, _) = check_prometheus(
        &["--namespace", "prod", "--model", "x\"} or vector(1) #"],
        &env,
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        json["models"][0]["pods"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["hostile-2"],
        "matched literally"
    );

    let (code, json, _, _) = check_prometheus(&[], &env);
    assert_eq!(code, Some(0));
    assert!(
        json["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["namespace"] == "other"),
        "{json}"
    );

    let (code, _, stderr, _) = check_prometheus(&["--namespace", "Bad\"NS", "--model", "m"], &env);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("namespace \"Bad\\\"NS\" cannot be queried"),
        "{stderr}"
    );
}

#[test]
fn check_prometheus_fails_fast_with_the_reason() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{closed}");
    let (code, _, stderr, elapsed) = check_prometheus(
        &[],
        &[
            ("PROMETHEUS_BASE_URL", &url),
            ("PROMETHEUS_ALLOW_HTTP", "true"),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot reach Prometheus"), "{stderr}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");

    let (code, _, stderr, _) =
        check_prometheus(&[], &[("PROMETHEUS_BASE_URL", "http://127.0.0.1:1")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("HTTPS is required"), "{stderr}");

    let (code, _, stderr, _) = check_prometheus(&[], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("PROMETHEUS_BASE_URL is not set and ConfigMap workload-variant-autoscaler-system/workload-variant-autoscaler-variantautoscaling-config cannot be read: no cluster"), "{stderr}");

    let (code, _, stderr, _) = check_prometheus(
        &[],
        &[
            ("PROMETHEUS_BASE_URL", "https://127.0.0.1:1"),
            ("PROMETHEUS_CLIENT_CERT_PATH", "/c.crt"),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("PROMETHEUS_CLIENT_CERT_PATH is set but PROMETHEUS_CLIENT_KEY_PATH is not"),
        "{stderr}"
    );
}

/// The environment's proxy is not used (the token must not go through a proxy nobody set up for
/// wva), and a password in the URL is never shown.
#[tokio::test]
async fn proxies_are_ignored_and_url_credentials_never_shown() {
    let url = shared().prometheus.http_url();
    let with_password = url.replacen("http://", "http://admin:hunter2@", 1);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = format!("http://{dead}");
    let (code, json, stderr, _) = check_prometheus(
        &[],
        &[
            ("PROMETHEUS_BASE_URL", with_password.as_str()),
            ("PROMETHEUS_ALLOW_HTTP", "true"),
            ("HTTP_PROXY", proxy.as_str()),
            ("HTTPS_PROXY", proxy.as_str()),
            ("ALL_PROXY", proxy.as_str()),
        ],
    );
    assert_eq!(
        code,
        Some(0),
        "reached Prometheus directly despite the proxy variables: {stderr}"
    );
    let shown = json["prometheus"]["url"].as_str().unwrap();
    assert!(shown.starts_with("http://<redacted>@127.0.0.1:"), "{shown}");
    assert!(
        !json.to_string().contains("hunter2") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}
