//! Reading Prometheus query API answers safely: vector, matrix (last sample) and scalar results
//! become samples; a string result, an error status or malformed JSON is a typed error;
//! NaN and ±Inf become "no value" (upstream turns them into 0, which reads as idle and invites a
//! scale-down). Pure.

use std::collections::BTreeMap;

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

/// Series answered at most, whatever the filter keeps (a runaway query must not exhaust memory).
pub const MAX_SERIES: usize = 250_000;

/// Which series to keep while parsing: the others are dropped as soon as their labels are read.
pub type Keep<'a> = &'a (dyn Fn(&BTreeMap<String, String>) -> bool + Sync);

/// Parses the body of `/api/v1/query`, keeping every series.
pub fn parse(body: &[u8]) -> Result<Vec<Sample>, ResponseError> {
    parse_from(body, &|_| true, MAX_SERIES)
}

/// Parses an answer from `reader` as it streams: one series at a time is held, then kept (as a
/// [`Sample`]) only if `keep` says so. Memory is the kept samples, not the answer. Accepts the
/// fields in any order.
pub fn parse_from(
    reader: impl std::io::Read,
    keep: Keep<'_>,
    max_series: usize,
) -> Result<Vec<Sample>, ResponseError> {
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let seed = AnswerSeed { keep, max_series };
    let answer =
        serde::de::DeserializeSeed::deserialize(seed, &mut deserializer).map_err(malformed)?;
    deserializer.end().map_err(malformed)?;
    answer.into_samples()
}

fn malformed(error: serde_json::Error) -> ResponseError {
    ResponseError::Malformed(error.to_string())
}

/// The answer's fields, as read.
#[derive(Default)]
struct Answer {
    status: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
    result_type: Option<String>,
    result: Option<ResultField>,
    has_data: bool,
}

/// `data.result`: series (vector or matrix) or one `[time, "value"]` pair (scalar, string).
enum ResultField {
    Series(Vec<Series>),
    Pair(Option<(f64, String)>),
}

/// One kept series.
struct Series {
    labels: BTreeMap<String, String>,
    /// Vector: `value`; matrix: the last of `values` (`None` when `values` is empty).
    point: Option<(f64, String)>,
    had_value: bool,
    had_values: bool,
}

impl Answer {
    fn into_samples(self) -> Result<Vec<Sample>, ResponseError> {
        match self.status.as_deref() {
            Some("success") => {}
            Some("error") => {
                return Err(ResponseError::Prometheus {
                    error_type: self.error_type.unwrap_or_else(|| "unknown".into()),
                    error: self.error.unwrap_or_default(),
                });
            }
            other => return Err(ResponseError::Malformed(format!("status is {other:?}"))),
        }
        if !self.has_data {
            return Err(ResponseError::Malformed("no data".into()));
        }
        let result = self
            .result
            .ok_or_else(|| ResponseError::Malformed("no data.result".into()))?;
        let bad = |m: &str| ResponseError::Malformed(m.to_owned());
        match (self.result_type.as_deref(), result) {
            (Some("vector"), ResultField::Series(series)) => series
                .into_iter()
                .map(|s| {
                    if !s.had_value {
                        return Err(bad("vector sample without value"));
                    }
                    let (timestamp, value) = point(s.point)?;
                    Ok(Sample {
                        labels: s.labels,
                        value,
                        timestamp,
                    })
                })
                .collect(),
            (Some("matrix"), ResultField::Series(series)) => {
                let mut samples = Vec::new();
                for s in series {
                    if !s.had_values {
                        return Err(bad("matrix series without values"));
                    }
                    if s.point.is_some() {
                        let (timestamp, value) = point(s.point)?;
                        samples.push(Sample {
                            labels: s.labels,
                            value,
                            timestamp,
                        });
                    }
                }
                Ok(samples)
            }
            (Some("scalar"), ResultField::Pair(pair)) => {
                let (timestamp, value) = point(pair)?;
                Ok(vec![Sample {
                    labels: BTreeMap::new(),
                    value,
                    timestamp,
                }])
            }
            (Some("vector" | "matrix"), _) => Err(bad("data.result is not a list")),
            (Some("scalar"), _) => Err(bad("a scalar result is not [time, \"value\"]")),
            (Some(other), _) => Err(ResponseError::UnexpectedResultType(other.to_owned())),
            (None, _) => Err(bad("no data.resultType")),
        }
    }
}

/// `[<unix seconds>, "<value>"]`; NaN and ±Inf give `None`.
fn point(pair: Option<(f64, String)>) -> Result<(f64, Option<f64>), ResponseError> {
    let (timestamp, text) =
        pair.ok_or_else(|| ResponseError::Malformed("sample without [time, \"value\"]".into()))?;
    let value: f64 = text
        .parse()
        .map_err(|_| ResponseError::Malformed(format!("sample value {text:?} is not a number")))?;
    Ok((timestamp, value.is_finite().then_some(value)))
}

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

struct AnswerSeed<'a> {
    keep: Keep<'a>,
    max_series: usize,
}

impl<'de> DeserializeSeed<'de> for AnswerSeed<'_> {
    type Value = Answer;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Answer, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AnswerSeed<'_> {
    type Value = Answer;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Prometheus query answer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Answer, A::Error> {
        let mut answer = Answer::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => answer.status = Some(map.next_value()?),
                "errorType" => answer.error_type = map.next_value()?,
                "error" => answer.error = map.next_value()?,
                "data" => {
                    let (result_type, result) = map.next_value_seed(DataSeed {
                        keep: self.keep,
                        max_series: self.max_series,
                    })?;
                    answer.has_data = true;
                    answer.result_type = result_type;
                    answer.result = result;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(answer)
    }
}

struct DataSeed<'a> {
    keep: Keep<'a>,
    max_series: usize,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = (Option<String>, Option<ResultField>);

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = (Option<String>, Option<ResultField>);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a data object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut result_type, mut result) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resultType" => result_type = Some(map.next_value()?),
                "result" => {
                    result = Some(map.next_value_seed(ResultSeed {
                        keep: self.keep,
                        max_series: self.max_series,
                    })?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((result_type, result))
    }
}

struct ResultSeed<'a> {
    keep: Keep<'a>,
    max_series: usize,
}

impl<'de> DeserializeSeed<'de> for ResultSeed<'_> {
    type Value = ResultField;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<ResultField, D::Error> {
        d.deserialize_any(self)
    }
}

/// One element of `data.result`.
enum Element {
    Number(f64),
    Text(String),
    Series(Series),
}

impl<'de> Visitor<'de> for ResultSeed<'_> {
    type Value = ResultField;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of series or a [time, \"value\"] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ResultField, A::Error> {
        let mut series = Vec::new();
        let mut pair: (Option<f64>, Option<String>) = (None, None);
        let mut seen = 0usize;
        let mut index = 0usize;
        while let Some(element) = seq.next_element_seed(ElementSeed)? {
            match element {
                Element::Series(s) => {
                    seen += 1;
                    if seen > self.max_series {
                        return Err(de::Error::custom(format!(
                            "more series than {} in one answer; refused",
                            self.max_series
                        )));
                    }
                    if (self.keep)(&s.labels) {
                        series.push(s);
                    }
                }
                Element::Number(n) if index == 0 => pair.0 = Some(n),
                Element::Text(t) if index == 1 => pair.1 = Some(t),
                _ => return Err(de::Error::custom("a result mixes series and values")),
            }
            index += 1;
        }
        if seen == 0 && index > 0 {
            return Ok(ResultField::Pair(pair.0.zip(pair.1)));
        }
        Ok(ResultField::Series(series))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResultField, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(ResultField::Pair(None))
    }
}

struct ElementSeed;

impl<'de> DeserializeSeed<'de> for ElementSeed {
    type Value = Element;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Element, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed {
    type Value = Element;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a series object, a time or a value")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Element, E> {
        Ok(Element::Number(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Element, E> {
        Ok(Element::Number(v as f64))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Element, E> {
        Ok(Element::Number(v as f64))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Element, E> {
        Ok(Element::Text(v.to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        let mut series = Series {
            labels: BTreeMap::new(),
            point: None,
            had_value: false,
            had_values: false,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metric" => series.labels = map.next_value()?,
                "value" => {
                    series.point = Some(map.next_value::<(f64, String)>()?);
                    series.had_value = true;
                }
                "values" => {
                    series.point = map.next_value_seed(LastPair)?;
                    series.had_values = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Element::Series(series))
    }
}

/// The last `[time, "value"]` of a matrix series' `values`, without holding the others.
struct LastPair;

impl<'de> DeserializeSeed<'de> for LastPair {
    type Value = Option<(f64, String)>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LastPair {
    type Value = Option<(f64, String)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of [time, \"value\"] pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut last = None;
        while let Some(pair) = seq.next_element::<(f64, String)>()? {
            last = Some(pair);
        }
        Ok(last)
    }
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

    #[test]
    fn fields_in_any_order_and_unknown_fields_ignored() {
        let body = br#"{"data":{"result":[{"value":[1,"3"],"metric":{"pod":"a"}}],"extra":{"x":[1]},"resultType":"vector"},"warnings":["w"],"status":"success"}"#;
        let samples = parse(body).unwrap();
        assert_eq!((samples.len(), samples[0].value), (1, Some(3.0)));
    }

    #[test]
    fn unwanted_series_are_dropped_while_reading_and_the_count_is_capped() {
        let mut body =
            String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
        for i in 0..1000 {
            if i > 0 {
                body.push(',');
            }
            let model = if i % 100 == 0 { "mine" } else { "other" };
            body.push_str(&format!(
                r#"{{"metric":{{"model_name":"{model}","pod":"p{i}"}},"value":[1,"0.5"]}}"#
            ));
        }
        body.push_str("]}}");
        let keep = |labels: &BTreeMap<String, String>| {
            labels.get("model_name").is_some_and(|m| m == "mine")
        };
        let kept = parse_from(body.as_bytes(), &keep, MAX_SERIES).unwrap();
        assert_eq!(kept.len(), 10);
        let error = parse_from(body.as_bytes(), &keep, 999)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("more series than 999 in one answer"),
            "{error}"
        );
    }
}
