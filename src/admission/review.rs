//! AdmissionReview plumbing (`admission.k8s.io/v1`): reads a review from bytes without trusting
//! any of it, and writes the response. Field errors use the Kubernetes wording
//! (`spec.scaleTargetRef.name: Required value`). No IO.

use std::fmt;

use base64::Engine as _;
use serde_json::{Value, json};

/// The largest review body read on any route (a ConfigMap review: the API server's 1 MiB
/// object limit, twice with the old object, plus the envelope).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What the API server asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

/// The parts of an AdmissionReview request the rules use.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewRequest {
    pub uid: String,
    pub operation: Operation,
    /// `request.kind.kind` (e.g. `VariantAutoscaling`).
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
    pub dry_run: bool,
}

/// Why a body is not a readable AdmissionReview (answered with HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableReview(pub String);

impl fmt::Display for UnreadableReview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a request body. serde_json's recursion limit turns absurd nesting into an error, not
/// a stack overflow.
pub fn parse_review(body: &[u8]) -> Result<ReviewRequest, UnreadableReview> {
    let bad = |m: &str| UnreadableReview(m.to_owned());
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| UnreadableReview(format!("body is not JSON: {e}")))?;
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if api_version != "admission.k8s.io/v1" {
        return Err(UnreadableReview(format!(
            "apiVersion must be admission.k8s.io/v1, got {api_version:?} (set admissionReviewVersions: [v1])"
        )));
    }
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "AdmissionReview" {
        return Err(UnreadableReview(format!(
            "kind must be AdmissionReview, got {kind:?}"
        )));
    }
    let request = value
        .get("request")
        .filter(|r| r.is_object())
        .ok_or_else(|| bad("no request object in the AdmissionReview"))?;
    let uid = request
        .get("uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| bad("request.uid is missing"))?
        .to_owned();
    let operation = match request.get("operation").and_then(Value::as_str) {
        Some("CREATE") => Operation::Create,
        Some("UPDATE") => Operation::Update,
        Some("DELETE") => Operation::Delete,
        Some("CONNECT") => Operation::Connect,
        other => {
            return Err(UnreadableReview(format!(
                "request.operation must be CREATE, UPDATE, DELETE or CONNECT, got {other:?}"
            )));
        }
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let object = |field: &str| request.get(field).filter(|o| o.is_object()).cloned();
    if matches!(operation, Operation::Create | Operation::Update) && object("object").is_none() {
        return Err(bad(
            "request.object is missing or not an object: a CREATE or UPDATE review must carry the object",
        ));
    }
    Ok(ReviewRequest {
        uid,
        operation,
        kind: text(request.get("kind").and_then(|k| k.get("kind"))),
        namespace: text(request.get("namespace")),
        name: text(request.get("name")),
        object: object("object"),
        old_object: object("oldObject"),
        dry_run: request
            .get("dryRun")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The most of an offending value a message repeats.
pub const MAX_SHOWN_VALUE_CHARS: usize = 128;

/// A value as JSON, cut to [`MAX_SHOWN_VALUE_CHARS`] characters with its full length said: a
/// 3 MB value must not come back as a 3 MB message (twice, in `message` and in `causes`).
pub fn shown(value: &Value) -> String {
    let json = value.to_string();
    let count = json.chars().count();
    if count <= MAX_SHOWN_VALUE_CHARS {
        return json;
    }
    let head: String = json.chars().take(MAX_SHOWN_VALUE_CHARS).collect();
    format!("{head}… ({count} characters)")
}

/// A field error in the Kubernetes wording (`k8s.io/apimachinery/pkg/util/validation/field`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    /// The offending value, shown as JSON (as the API server shows it).
    Invalid(String),
    /// The offending value and the supported ones.
    NotSupported(String, Vec<String>),
    Duplicate(String),
    /// The maximum length in bytes.
    TooLong(usize),
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorKind::Required,
            detail: detail.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorKind::Invalid(shown(value)),
            detail: detail.into(),
        }
    }

    /// The `StatusCause.reason` the API server uses for this kind of field error.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid(_) => "FieldValueInvalid",
            FieldErrorKind::NotSupported(..) => "FieldValueNotSupported",
            FieldErrorKind::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorKind::TooLong(_) => "FieldValueTooLong",
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.field)?;
        match &self.kind {
            FieldErrorKind::Required => f.write_str("Required value")?,
            FieldErrorKind::Invalid(v) => write!(f, "Invalid value: {v}")?,
            FieldErrorKind::NotSupported(v, supported) => {
                let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
                write!(
                    f,
                    "Unsupported value: {v}: supported values: {}",
                    quoted.join(", ")
                )?
            }
            FieldErrorKind::Duplicate(v) => write!(f, "Duplicate value: {v}")?,
            FieldErrorKind::TooLong(max) => {
                write!(f, "Too long: may not be more than {max} bytes")?
            }
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// What the rules concluded about one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Field errors; any makes the request denied.
    pub violations: Vec<FieldError>,
    /// Problems that are not field errors (ConfigMap entries), also denying.
    pub messages: Vec<String>,
    /// Shown by kubectl; never deny.
    pub warnings: Vec<String>,
    /// A JSON Patch to apply (mutating route).
    pub patch: Option<json_patch::Patch>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.violations.is_empty() && self.messages.is_empty()
    }

    /// The denial message: every violation, as the API server aggregates them.
    pub fn message(&self) -> String {
        let all: Vec<String> = self
            .violations
            .iter()
            .map(ToString::to_string)
            .chain(self.messages.iter().cloned())
            .collect();
        match all.len() {
            0 => String::new(),
            1 => all[0].clone(),
            _ => format!("[{}]", all.join(", ")),
        }
    }
}

/// The AdmissionReview response for `uid`. A denial carries a `Status` (code 422, reason
/// `Invalid`) whose details name the object (`kind`, `name`) and list one cause per violation.
pub fn response(uid: &str, verdict: &Verdict, kind: &str, name: &str) -> Value {
    let mut response = json!({"uid": uid, "allowed": verdict.allowed()});
    if !verdict.allowed() {
        let causes: Vec<Value> = verdict
            .violations
            .iter()
            .map(|v| json!({"reason": v.reason(), "message": v.to_string(), "field": v.field}))
            .chain(
                verdict
                    .messages
                    .iter()
                    .map(|m| json!({"reason": "FieldValueInvalid", "message": m})),
            )
            .collect();
        response["status"] = json!({
            "code": 422,
            "reason": "Invalid",
            "message": verdict.message(),
            "details": {"name": name, "kind": kind, "causes": causes},
        });
    }
    if !verdict.warnings.is_empty() {
        response["warnings"] = json!(verdict.warnings);
    }
    if let Some(patch) = verdict.patch.as_ref().filter(|p| !p.0.is_empty()) {
        let bytes = serde_json::to_vec(patch).expect("invariant: a JSON Patch always serialises");
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_read_like_kubernetes() {
        assert_eq!(
            FieldError::required("spec.scaleTargetRef.name", "").to_string(),
            "spec.scaleTargetRef.name: Required value"
        );
        assert_eq!(
            FieldError::invalid(
                "spec.variantCost",
                &json!("abc"),
                "must be a non-negative decimal number"
            )
            .to_string(),
            "spec.variantCost: Invalid value: \"abc\": must be a non-negative decimal number"
        );
        let unsupported = FieldError {
            field: "spec.scaleTargetRef.kind".into(),
            kind: FieldErrorKind::NotSupported("\"StatefulSet\"".into(), vec!["Deployment".into()]),
            detail: String::new(),
        };
        assert_eq!(
            unsupported.to_string(),
            "spec.scaleTargetRef.kind: Unsupported value: \"StatefulSet\": supported values: \"Deployment\""
        );
        let long = FieldError {
            field: "spec.modelID".into(),
            kind: FieldErrorKind::TooLong(512),
            detail: String::new(),
        };
        assert_eq!(
            long.to_string(),
            "spec.modelID: Too long: may not be more than 512 bytes"
        );
    }

    #[test]
    fn unreadable_reviews_say_why() {
        assert!(
            parse_review(b"nope")
                .unwrap_err()
                .0
                .starts_with("body is not JSON")
        );
        assert!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#)
                .unwrap_err()
                .0
                .contains("admission.k8s.io/v1")
        );
        assert!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#)
                .unwrap_err()
                .0
                .contains("AdmissionReview")
        );
        assert_eq!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
                .unwrap_err()
                .0,
            "no request object in the AdmissionReview"
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(
            parse_review(deep.as_bytes())
                .unwrap_err()
                .0
                .contains("recursion limit")
        );
    }

    #[test]
    fn denial_lists_every_violation_and_echoes_the_uid() {
        let verdict = Verdict {
            violations: vec![
                FieldError::required("spec.scaleTargetRef", ""),
                FieldError::required("spec.modelID", ""),
            ],
            ..Default::default()
        };
        let r = response("abc-123", &verdict, "VariantAutoscaling", "x");
        assert_eq!(r["response"]["uid"], "abc-123");
        assert_eq!(r["response"]["allowed"], false);
        assert_eq!(
            r["response"]["status"]["message"],
            "[spec.scaleTargetRef: Required value, spec.modelID: Required value]"
        );
        assert_eq!(
            r["response"]["status"]["details"]["causes"][1]["field"],
            "spec.modelID"
        );
    }
}
