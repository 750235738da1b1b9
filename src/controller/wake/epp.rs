//! The endpoint picker's queue, as scale-from-zero reads it (upstream
//! `internal/collector/source/pod/*`): scrape each ready EPP pod's `/metrics` over plain HTTP
//! (5 s timeout, at most 10 at once, an optional bearer token) and sum
//! `inference_extension_flow_control_queue_size` per `target_model_name`. The parser reads the
//! Prometheus text exposition and only that one family; a pod that fails or answers garbage is
//! skipped, never fatal. Touches no Kubernetes object.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;

/// The EPP's gauge of requests waiting in its flow-control queue.
pub const QUEUE_METRIC: &str = "inference_extension_flow_control_queue_size";
/// Per scrape.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes in flight at once (per pool).
pub const MAX_CONCURRENT_SCRAPES: usize = 10;
/// A `/metrics` answer larger than this is refused (an EPP's is a few hundred KiB).
const MAX_BODY: usize = 8 << 20;

/// Σ queue sizes per target model in one exposition text.
pub fn queued_by_model(text: &str, into: &mut BTreeMap<String, f64>) {
    for line in text.lines() {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix(QUEUE_METRIC) else {
            continue;
        };
        // `…_size_bucket` and the like are other families.
        let Some((labels, value)) = split_sample(rest) else {
            continue;
        };
        let Some(value) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if !value.is_finite() || value <= 0.0 {
            continue;
        }
        if let Some(model) = label(labels, "target_model_name") {
            *into.entry(model).or_default() += value;
        }
    }
}

/// `{labels} value` or ` value` → (labels text, value text).
fn split_sample(rest: &str) -> Option<(&str, &str)> {
    if let Some(inner) = rest.strip_prefix('{') {
        let end = closing_brace(inner)?;
        Some((&inner[..end], &inner[end + 1..]))
    } else if rest.starts_with([' ', '\t']) {
        Some(("", rest))
    } else {
        None
    }
}

/// The index of the `}` that closes a label set, skipping quoted values.
fn closing_brace(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The unescaped value of label `name` in a label set's text.
fn label(labels: &str, name: &str) -> Option<String> {
    let mut rest = labels;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            return None;
        }
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = &after[end + 1..];
    }
}

/// One EPP pod to scrape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub pod: String,
    pub ip: String,
    pub port: u16,
}

/// Scrapes `targets` (at most [`MAX_CONCURRENT_SCRAPES`] at once) and sums their queues per
/// model. Returns the sums and the pods that could not be read, with why.
pub async fn scrape(
    http: &reqwest::Client,
    targets: &[Target],
    bearer_token: Option<&str>,
) -> (BTreeMap<String, f64>, Vec<(String, String)>) {
    // Owned futures: a borrowing closure here makes the caller's future not `Send`.
    let scrapes: Vec<_> = targets
        .iter()
        .cloned()
        .map(|t| {
            let http = http.clone();
            let token = bearer_token.map(str::to_owned);
            async move {
                let result = scrape_one(&http, &t, token.as_deref()).await;
                (t.pod, result)
            }
        })
        .collect();
    let results: Vec<(String, Result<String, String>)> = futures::stream::iter(scrapes)
        .buffer_unordered(MAX_CONCURRENT_SCRAPES)
        .collect()
        .await;
    let mut queued = BTreeMap::new();
    let mut failed = Vec::new();
    for (pod, result) in results {
        match result {
            Ok(text) => queued_by_model(&text, &mut queued),
            Err(why) => failed.push((pod, why)),
        }
    }
    failed.sort();
    (queued, failed)
}

async fn scrape_one(
    http: &reqwest::Client,
    target: &Target,
    bearer_token: Option<&str>,
) -> Result<String, String> {
    let host = if target.ip.contains(':') {
        format!("[{}]", target.ip)
    } else {
        target.ip.clone()
    };
    let url = format!("http://{host}:{}/metrics", target.port);
    let mut request = http.get(&url).timeout(SCRAPE_TIMEOUT);
    if let Some(token) = bearer_token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("GET {url}: answer larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| format!("GET {url}: not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_summed_per_model_and_everything_else_is_ignored() {
        let text = r#"# HELP inference_extension_flow_control_queue_size Requests waiting.
# TYPE inference_extension_flow_control_queue_size gauge
inference_extension_flow_control_queue_size{fairness_id="a",priority="0",target_model_name="meta/llama-3.1-8b"} 3
inference_extension_flow_control_queue_size{priority="1", target_model_name="meta/llama-3.1-8b",fairness_id="b"} 2
inference_extension_flow_control_queue_size{target_model_name="with \"quotes\" and } brace"} 1 1700000000000
inference_extension_flow_control_queue_size{target_model_name="idle"} 0
inference_extension_flow_control_queue_size{target_model_name="nan"} NaN
inference_extension_flow_control_queue_size_bytes{target_model_name="meta/llama-3.1-8b"} 999
inference_extension_flow_control_queue_size 7
inference_extension_flow_control_queue_size{target_model_name="broken
other_metric{target_model_name="meta/llama-3.1-8b"} 50
"#;
        let mut queued = BTreeMap::new();
        queued_by_model(text, &mut queued);
        queued_by_model(text, &mut queued);
        assert_eq!(
            queued,
            BTreeMap::from([
                ("meta/llama-3.1-8b".to_owned(), 10.0),
                ("with \"quotes\" and } brace".to_owned(), 2.0),
            ])
        );
    }
}
