//! A recording stand-in for the API server, for unit tests of request sequences (the real
//! control plane tests the behaviour): every request's method, path and query, and body are
//! kept; each answer is the next canned (status, JSON body). Also the decision the unit tests
//! of the controller's pure parts share.

use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;

/// One request as the API server would see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path_and_query: String,
    pub content_type: Option<String>,
    pub body: serde_json::Value,
}

/// A client whose requests are recorded in the returned list and answered in order.
pub fn client(answers: Vec<(u16, serde_json::Value)>) -> (kube::Client, Arc<Mutex<Vec<Recorded>>>) {
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(std::collections::VecDeque::from(answers)));
    let log = recorded.clone();
    let service = tower::service_fn(move |request: axum::http::Request<kube::client::Body>| {
        let log = log.clone();
        let answers = answers.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            log.lock().unwrap().push(Recorded {
                method: parts.method.to_string(),
                path_and_query: parts
                    .uri
                    .path_and_query()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                content_type: parts
                    .headers
                    .get(axum::http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            });
            let (status, body) = answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or((500, serde_json::json!({"message": "no canned answer left"})));
            Ok::<_, std::convert::Infallible>(
                axum::http::Response::builder()
                    .status(status)
                    .header(axum::http::header::CONTENT_TYPE, "application/json")
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            )
        }
    });
    (kube::Client::new(service, "default"), recorded)
}

/// A decision with metrics for VA `prod/va` on Deployment `decode` (2 replicas, A100, cost 10),
/// target `target`, for the pure functions that take one.
pub fn decision(target: u32, reason: &str) -> crate::core::Decision {
    use crate::core::{Action, Decision, Step};
    Decision {
        namespace: "prod".into(),
        name: "va".into(),
        target_name: "decode".into(),
        model_id: "m".into(),
        accelerator: "A100".into(),
        cost: 10.0,
        action: Action::from_replicas(2, target),
        current_replicas: 2,
        target_replicas: target,
        metrics_available: true,
        reason: reason.into(),
        steps: vec![Step {
            stage: "planner",
            target_replicas: target,
            note: reason.into(),
        }],
        ready_replicas: 2,
        pending_replicas: 0,
        previous_desired: 2,
        gpus_per_replica: 1,
        analysis: None,
    }
}
