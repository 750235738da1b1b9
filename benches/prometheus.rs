//! Collection against a real Prometheus (Debian's package): 500 models × 4 variants × 4 pods,
//! half the models with scale-to-zero. Reports queries per cycle and collection latency, next to
//! upstream's shape (two queries per model, models one after another).
//!
//! Run: `cargo bench --bench prometheus` (needs `prometheus`: `make tools`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::prometheus::{Exporter, Prometheus, line};
use wva::prometheus::promql::{KV_CACHE_METRIC, QUEUE_METRIC, REQUEST_SUCCESS_METRIC};
use wva::prometheus::{ClientOptions, ModelKey, ModelRequest, PrometheusClient, collect, promql};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let (models, cycles) = if full { (500, 20) } else { (20, 2) };
    let _ = rustls::crypto::ring::default_provider().install_default();

    let exporter = Exporter::start();
    let mut text = String::new();
    for m in 0..models {
        let ns = format!("ns-{:02}", m % 50);
        let model = format!("org/model-{m:03}");
        for v in 0..4 {
            for p in 0..4 {
                let pod = format!("model-{m:03}-v{v}-{p}");
                text += &line(
                    KV_CACHE_METRIC,
                    &ns,
                    &model,
                    &pod,
                    ((m + v + p) % 90) as f64 / 100.0,
                );
                text += &line(QUEUE_METRIC, &ns, &model, &pod, ((m + p) % 7) as f64);
                text += &line(REQUEST_SUCCESS_METRIC, &ns, &model, &pod, (m * 10) as f64);
            }
        }
    }
    exporter.set(&text);
    let prometheus = Prometheus::start("bench", &[exporter.addr], None);
    let url = prometheus.http_url();
    let config = support::prometheus::plain_config(&url);
    let requests: Vec<ModelRequest> = (0..models)
        .map(|m| ModelRequest {
            key: ModelKey::new(format!("ns-{:02}", m % 50), format!("org/model-{m:03}")),
            retention: (m % 2 == 0).then_some(600_000_000_000),
            served_rate: false,
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = PrometheusClient::new(config, ClientOptions::default()).unwrap();
        // Wait until every pod and the counters (two scrapes) are in.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = collect(&client, &requests, now()).await.unwrap();
            let pods: usize = c.models.iter().map(|m| m.pods.len()).sum();
            let counted = c.models.iter().filter(|m| m.request_count.is_some()).count();
            if pods == models * 16 && counted == models / 2 {
                break;
            }
            assert!(Instant::now() < deadline, "data not scraped: {pods} pods, {counted} counts");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut ours = Vec::new();
        let mut queries = 0;
        let mut query_bytes = 0;
        for _ in 0..cycles {
            let started = Instant::now();
            let c = collect(&client, &requests, now()).await.unwrap();
            ours.push(started.elapsed());
            queries = c.queries.len();
            query_bytes = c.queries.iter().map(String::len).sum();
        }
        ours.sort();
        // Each query alone, to see where the time goes.
        let texts = wva::prometheus::collect::queries(&requests).unwrap().texts();
        let mut each = Vec::new();
        for (name, text) in ["KV cache", "queue", "request count"].iter().zip(&texts) {
            let started = Instant::now();
            client.query(text).await.unwrap();
            each.push(format!("{name} {:.1} ms", started.elapsed().as_secs_f64() * 1e3));
        }
        // Upstream's shape: per model, the KV and queue queries together; models in sequence.
        let started = Instant::now();
        let mut upstream_queries = 0;
        for r in &requests {
            let keys = [r.key.clone()];
            let (kv_query, queue_query) = (promql::kv_cache_usage(&keys).unwrap(), promql::queue_length(&keys).unwrap());
            let (kv, queue) = tokio::join!(client.query(&kv_query), client.query(&queue_query));
            kv.unwrap();
            queue.unwrap();
            upstream_queries += 2;
        }
        let upstream = started.elapsed();
        println!("\n{models} models × 4 variants × 4 pods ({} pods), {} with scale-to-zero", models * 16, models / 2);
        println!("| shape | queries per cycle | cycle time p50 | max |");
        println!("|---|---|---|---|");
        println!("| wva (batched, {query_bytes} bytes of PromQL) | {queries} | {:.1} ms | {:.1} ms |", percentile(&ours, 0.5).as_secs_f64() * 1e3, percentile(&ours, 1.0).as_secs_f64() * 1e3);
        println!("(one query at a time: {})", each.join(", "));
        println!("| upstream shape (per model, request counts not included) | {upstream_queries} | {:.1} ms | (one cycle) |", upstream.as_secs_f64() * 1e3);
    });
    drop(prometheus);
}
