//! Reading Prometheus query API answers safely: vector, matrix (last sample) and scalar results
//! become samples; a string result, an error status or malformed JSON is a typed error;
//! NaN and ±Inf become "no value" (upstream turns them into 0, which reads as idle and invites a
//! scale-down). Pure.

use std::collections::BTreeMap;

use serde_json::Value;

/// One sample of an instant query.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    /// `None` for NaN and ±Inf.
    pub value: Option<f64>,
    /// Unix seconds.
    pub timestamp: f64,
}

/// What can be wrong with an answer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ResponseError {
    /// Prometheus said `status: error` (e.g. `bad_data` for a query it cannot parse).
    #[error("Prometheus answered {error_type}: {error}")]
    Prometheus { error_type: String, error: String },
    /// Not the query API's JSON.
    #[error("not a Prometheus query answer: {0}")]
    Malformed(String),
    /// A result type wva cannot use (`string`, or an unknown one).
    #[error("unexpected result type {0:?} (expected vector, matrix or scalar)")]
    UnexpectedResultType(String),
}

/// Parses the body of `/api/v1/query`.
pub fn parse(body: &[u8]) -> Result<Vec<Sample>, ResponseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ResponseError::Malformed(e.to_string()))?;
    match value.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some("error") => {
            return Err(ResponseError::Prometheus {
                error_type: value
                    .get("errorType")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                error: value
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        other => return Err(ResponseError::Malformed(format!("status is {other:?}"))),
    }
    let data = value
        .get("data")
        .ok_or_else(|| ResponseError::Malformed("no data".into()))?;
    let result = data
        .get("result")
        .ok_or_else(|| ResponseError::Malformed("no data.result".into()))?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => series(result)?
            .iter()
            .map(|s| {
                let labels = labels(s)?;
                let (timestamp, value) = point(s.get("value").ok_or_else(|| {
                    ResponseError::Malformed("vector sample without value".into())
                })?)?;
                Ok(Sample {
                    labels,
                    value,
                    timestamp,
                })
            })
            .collect(),
        Some("matrix") => {
            let mut samples = Vec::new();
            for s in series(result)? {
                let values = s.get("values").and_then(Value::as_array).ok_or_else(|| {
                    ResponseError::Malformed("matrix series without values".into())
                })?;
                if let Some(last) = values.last() {
                    let (timestamp, value) = point(last)?;
                    samples.push(Sample {
                        labels: labels(s)?,
                        value,
                        timestamp,
                    });
                }
            }
            Ok(samples)
        }
        Some("scalar") => {
            let (timestamp, value) = point(result)?;
            Ok(vec![Sample {
                labels: BTreeMap::new(),
                value,
                timestamp,
            }])
        }
        Some(other) => Err(ResponseError::UnexpectedResultType(other.to_owned())),
        None => Err(ResponseError::Malformed("no data.resultType".into())),
    }
}

fn series(result: &Value) -> Result<&Vec<Value>, ResponseError> {
    result
        .as_array()
        .ok_or_else(|| ResponseError::Malformed("data.result is not a list".into()))
}

fn labels(series: &Value) -> Result<BTreeMap<String, String>, ResponseError> {
    let Some(metric) = series.get("metric") else {
        return Ok(BTreeMap::new());
    };
    let map = metric
        .as_object()
        .ok_or_else(|| ResponseError::Malformed("metric is not an object".into()))?;
    map.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_owned()))
                .ok_or_else(|| ResponseError::Malformed(format!("label {k} is not a string")))
        })
        .collect()
}

/// `[<unix seconds>, "<value>"]`; NaN and ±Inf give `None`.
fn point(pair: &Value) -> Result<(f64, Option<f64>), ResponseError> {
    let bad = || ResponseError::Malformed(format!("sample {pair} is not [time, \"value\"]"));
    let items = pair.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
    let timestamp = items[0].as_f64().ok_or_else(bad)?;
    let text = items[1].as_str().ok_or_else(bad)?;
    let value: f64 = text.parse().map_err(|_| bad())?;
    Ok((timestamp, value.is_finite().then_some(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_matrix_and_scalar() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"a","namespace":"prod"},"value":[1700000000.5,"0.42"]},
            {"metric":{"pod":"b"},"value":[1700000000.5,"NaN"]},
            {"metric":{"pod":"c"},"value":[1700000000.5,"+Inf"]}]}}"#;
        let samples = parse(vector).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].value, Some(0.42));
        assert_eq!(samples[0].labels["pod"], "a");
        assert_eq!(samples[0].timestamp, 1700000000.5);
        assert_eq!(
            (samples[1].value, samples[2].value),
            (None, None),
            "NaN and Inf are missing, not 0"
        );

        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"a"},"values":[[1,"1"],[2,"2"]]},{"metric":{"pod":"empty"},"values":[]}]}}"#;
        let samples = parse(matrix).unwrap();
        assert_eq!(samples.len(), 1, "empty series are skipped");
        assert_eq!(
            (samples[0].timestamp, samples[0].value),
            (2.0, Some(2.0)),
            "last sample"
        );

        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[5,"-Inf"]}}"#;
        assert_eq!(parse(scalar).unwrap()[0].value, None);
    }

    #[test]
    fn everything_else_is_a_typed_error() {
        assert!(matches!(parse(b"<html>"), Err(ResponseError::Malformed(_))));
        assert!(
            matches!(parse(br#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#), Err(ResponseError::UnexpectedResultType(t)) if t == "string")
        );
        assert_eq!(
            parse(br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#),
            Err(ResponseError::Prometheus {
                error_type: "bad_data".into(),
                error: "parse error".into()
            })
        );
        for body in [
            &br#"{"status":"success"}"#[..],
            br#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":1},"value":[1,"1"]}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,1]}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"one"]}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}"#,
            br#"{"status":"weird"}"#,
        ] {
            assert!(matches!(parse(body), Err(ResponseError::Malformed(_))), "{}", String::from_utf8_lossy(body));
        }
    }
}
