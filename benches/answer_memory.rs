//! Peak memory of one collection cycle when Prometheus answers the most it may: a fake endpoint
//! streams, for each of the cycle's queries (five: `wva-next`'s, for a model with scale-to-zero),
//! an answer just under the client's size cap (16 MiB, about 100,000 series), every series for
//! a model the cycle did not ask about except a few. Budget: the cycle never above 64 MiB, whatever Prometheus answers. Reports the process's
//! resident-memory high-water mark before and after.
//!
//! Run: `cargo bench --bench answer_memory`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use wva::prometheus::{ClientOptions, ModelKey, ModelRequest, PrometheusClient, collect};

fn high_water_mib() -> f64 {
    support::process::status_kib(std::process::id(), "VmHWM:") as f64 / 1024.0
}

/// One answer of `bytes` length at most, streamed from a few reused chunks.
fn answer(bytes: usize) -> (axum::body::Body, usize) {
    let head = r#"{"status":"success","data":{"resultType":"vector","result":["#;
    let mine = r#"{"metric":{"namespace":"prod","model_name":"mine","pod":"mine-0"},"value":[1700000000,"0.5"]}"#;
    let mut chunk = String::new();
    let mut series_in_chunk = 0;
    while chunk.len() < 64 * 1024 {
        chunk.push_str(&format!(
            r#",{{"metric":{{"namespace":"team-{0:03}","model_name":"org/other-model-{0:05}","pod":"other-model-{0:05}-7d9f8c6b5-x2k4q"}},"value":[1700000000.123,"0.{0}"]}}"#,
            series_in_chunk
        ));
        series_in_chunk += 1;
    }
    let tail = "]}}";
    let chunks = (bytes - head.len() - mine.len() - tail.len()) / chunk.len();
    let chunk = axum::body::Bytes::from(chunk);
    let parts = std::iter::once(axum::body::Bytes::from(format!("{head}{mine}")))
        .chain(std::iter::repeat_n(chunk, chunks))
        .chain(std::iter::once(axum::body::Bytes::from(tail)));
    let stream = futures::stream::iter(parts.map(Ok::<_, std::io::Error>));
    (
        axum::body::Body::from_stream(stream),
        chunks * series_in_chunk + 1,
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let limit = ClientOptions::default().max_response_bytes;
        let series = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = series.clone();
        let app = axum::Router::new().route(
            "/api/v1/query",
            axum::routing::post(move || {
                let counter = counter.clone();
                async move {
                    let (body, n) = answer(limit - 1024);
                    counter.store(n, std::sync::atomic::Ordering::Relaxed);
                    body
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}");
        let config = support::prometheus::plain_config(&url);
        let options = ClientOptions {
            timeout: Duration::from_secs(60),
            ..ClientOptions::default()
        };
        let client = PrometheusClient::new(config, options).unwrap();
        let models = [ModelRequest {
            key: ModelKey::new("prod", "mine"),
            retention: Some(600_000_000_000),
            // wva-next's two queries too: the most a cycle sends.
            served_rate: true,
        }];
        let before = high_water_mib();
        let started = Instant::now();
        let collection = collect(&client, &models, 1_700_000_000.0).await.unwrap();
        let took = started.elapsed();
        let after = high_water_mib();
        println!(
            "\n{} answers of {:.1} MiB each ({} series, all but one for other models), collected in {:.2} s",
            collection.queries.len(),
            (limit - 1024) as f64 / (1024.0 * 1024.0),
            series.load(std::sync::atomic::Ordering::Relaxed),
            took.as_secs_f64()
        );
        println!(
            "resident-memory high-water mark: {before:.1} MiB before, {after:.1} MiB after ({:.1} MiB for the cycle; budget 64 MiB)",
            after - before
        );
        println!(
            "kept: {} pod(s) of the one model asked for",
            collection.models[0].pods.len()
        );
    });
}
