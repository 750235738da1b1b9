//! Load generator for the admission webhook (budget: p99 under 2 ms at 1,000 requests/s over TLS
//! on loopback, no errors). Starts `wva webhook` as its own process with fresh certificates, then
//! per route and HTTP version: an open-loop run at a fixed rate (latency measured from each
//! request's scheduled start, so a stall is not hidden), and a closed-loop run at saturation.
//! Reports resident memory of the server process.
//!
//! Run: `cargo bench --bench webhook` (`WVA_BENCH_SECONDS=N` changes the run length, default 10).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::https::{Http, client};
use support::webhook::WebhookProcess;
use tokio::sync::Mutex;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/admission/create-valid.json"
);

struct Stats {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Stats {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
    }

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {:.0} | {:.3} | {:.3} | {:.3} | {} |",
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.percentile(1.0).as_secs_f64() * 1e3,
            self.errors,
        )
    }
}

async fn one(client: &reqwest::Client, url: &str, body: &'static [u8]) -> bool {
    match client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// Open loop: one request every 1/rate seconds, whatever the answers do. Latency runs from the
/// moment each request starts; how late the starts ran behind schedule is reported apart (the
/// timer has 1 ms granularity), so that a stalled server shows up there.
async fn fixed_rate(
    client: &reqwest::Client,
    url: &str,
    body: &'static [u8],
    rate: u32,
    seconds: u64,
) -> (Stats, Duration) {
    let stats = Arc::new(Mutex::new(Stats {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    }));
    let mut max_lag = Duration::ZERO;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now();
    let total = u64::from(rate) * seconds;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + period * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        max_lag = max_lag.max(scheduled.elapsed());
        let (client, url, stats) = (client.clone(), url.to_owned(), stats.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let ok = one(&client, &url, body).await;
            let latency = started.elapsed();
            let mut s = stats.lock().await;
            if ok {
                s.latencies.push(latency)
            } else {
                s.errors += 1
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut s = Arc::try_unwrap(stats).ok().unwrap().into_inner();
    s.elapsed = start.elapsed();
    (s, max_lag)
}

/// Closed loop: `workers` requests in flight all the time.
async fn saturation(
    client: &reqwest::Client,
    url: &str,
    body: &'static [u8],
    workers: usize,
    seconds: u64,
) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut s = Stats {
                latencies: Vec::new(),
                errors: 0,
                elapsed: Duration::ZERO,
            };
            while Instant::now() < deadline {
                let t = Instant::now();
                if one(&client, &url, body).await {
                    s.latencies.push(t.elapsed())
                } else {
                    s.errors += 1
                }
            }
            s
        }));
    }
    let mut all = Stats {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let s = t.await.unwrap();
        all.latencies.extend(s.latencies);
        all.errors += s.errors;
    }
    all.elapsed = start.elapsed();
    all
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --all-targets` asks benches to list themselves.
    }
    let test_mode =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let seconds: u64 = if test_mode {
        1
    } else {
        std::env::var("WVA_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10)
    };
    let _ = rustls::crypto::ring::default_provider().install_default();

    let dir = std::env::temp_dir().join(format!("wva-bench-webhook-{}", std::process::id()));
    let (server, ca) = WebhookProcess::standalone(&dir, "warn");
    let port = server.admission_port();
    let pid = server.child.id();
    let idle_rss = support::process::status_kib(pid, "VmRSS:");

    let body: &'static [u8] = std::fs::read(FIXTURE).unwrap().leak();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    runtime.block_on(async {
        for (path, route) in [
            ("/validate-variantautoscaling", "validate"),
            ("/mutate-variantautoscaling", "mutate"),
        ] {
            let url = format!("https://localhost:{port}{path}");
            for http2 in [false, true] {
                let http = if http2 { Http::Http2 } else { Http::Http1 };
                let c = client(&[&ca.cert_pem()], None, http, false);
                let version = if http2 { "HTTP/2" } else { "HTTP/1.1" };
                let _ = saturation(&c, &url, body, 4, 1).await; // warm up: connections, TLS sessions
                let (fixed, lag) = fixed_rate(&c, &url, body, 1_000, seconds).await;
                rows.push(fixed.row(&format!(
                    "{route}, {version}, 1,000/s (starts ≤ {:.1} ms late)",
                    lag.as_secs_f64() * 1e3
                )));
                let sat = saturation(&c, &url, body, 16, seconds.min(5)).await;
                rows.push(sat.row(&format!("{route}, {version}, saturation (16 in flight)")));
            }
        }
    });
    let rss = support::process::status_kib(pid, "VmRSS:");
    let peak = support::process::status_kib(pid, "VmHWM:");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    println!("\n| run | requests/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!(
        "\nserver resident memory: {:.1} MiB idle, {:.1} MiB after the runs, {:.1} MiB peak",
        idle_rss as f64 / 1024.0,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    if test_mode {
        println!(
            "(test mode: {seconds} s per run; `cargo bench --bench webhook` for the real figures)"
        );
    }
}
