//! The admission listener under a slowloris crowd: `wva webhook` as its own process with the
//! default limits (256 connections), and a client that holds many connections in every slow
//! state at once — TLS done and nothing sent, half-sent headers, a body shorter than its
//! `Content-Length` — while normal reviews are timed on fresh connections. Reports the server's
//! open connections and resident memory, and the latency of the normal reviews meanwhile. The
//! crowd connects from 127.0.0.2, the reviews from 127.0.0.1.
//!
//! Run: `cargo bench --bench slowloris` (`WVA_BENCH_SLOW=N` slow connections, default 1,500).

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::https::{Http, client, try_raw_tls_from};
use support::webhook::WebhookProcess;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/admission/create-valid.json"
);

fn memory_mib(pid: u32) -> f64 {
    support::process::status_kib(pid, "VmRSS:") as f64 / 1024.0
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let slow: usize = std::env::var("WVA_BENCH_SLOW")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 1500 } else { 60 });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("wva-bench-slowloris-{}", std::process::id()));
    let (server, ca) = WebhookProcess::standalone(&dir, "error");
    let port = server.admission_port();
    let pid = server.child.id();
    let idle_rss = memory_mib(pid);
    let body = std::fs::read(FIXTURE).unwrap();
    let ca_pem = ca.cert_pem();

    // The crowd: a third in each slow state, opened as fast as the handshakes go.
    let started = Instant::now();
    let mut held = Vec::with_capacity(slow);
    let mut refused = 0;
    for i in 0..slow {
        // The crowd comes from one address, the reviews from another (as the API server would).
        let Ok(mut stream) = try_raw_tls_from(
            [127, 0, 0, 2].into(),
            port,
            &ca_pem,
            &[b"http/1.1"],
            Duration::from_secs(1),
        ) else {
            refused += 1;
            continue;
        };
        let path = "/validate-variantautoscaling";
        let _ = match i % 3 {
            0 => Ok(()),
            1 => write!(
                stream,
                "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Ty"
            ),
            _ => write!(
                stream,
                "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{{"
            ),
        };
        let _ = stream.flush();
        held.push(stream);
    }
    let opened_in = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let crowd_rss = memory_mib(pid);
    let crowd_fds = open_fds(pid);

    // Normal reviews meanwhile, each on a fresh connection (as a new API server would open).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (latencies, errors) = runtime.block_on(async {
        let url = format!("https://localhost:{port}/validate-variantautoscaling");
        let mut latencies = Vec::new();
        let mut errors = 0;
        for _ in 0..200 {
            let c = client(&[&ca_pem], None, Http::Http1, false);
            let t = Instant::now();
            match c.post(&url).body(body.clone()).send().await {
                Ok(r) if r.status() == 200 => latencies.push(t.elapsed()),
                _ => errors += 1,
            }
        }
        (latencies, errors)
    });
    let mut sorted = latencies.clone();
    sorted.sort();
    let pick = |p: f64| {
        sorted
            .get(((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    let after_rss = memory_mib(pid);
    std::thread::sleep(Duration::from_secs(11));
    let later_fds = open_fds(pid);
    drop(held);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "\nslow connections tried: {slow} in {:.1} s from one address; {refused} refused by the server (every slot of that address busy)",
        opened_in.as_secs_f64()
    );
    println!(
        "server: {crowd_fds} descriptors while the crowd is held (caps: 256 connections, 64 per client address), {later_fds} after 11 s (time-outs)"
    );
    println!(
        "server resident memory: {idle_rss:.1} MiB idle, {crowd_rss:.1} MiB with the crowd, {after_rss:.1} MiB after the reviews"
    );
    println!(
        "normal reviews meanwhile (fresh TLS connection each): {} ok, {errors} failed, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}
