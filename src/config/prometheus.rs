//! How to reach Prometheus (upstream `GetPrometheusConfig`, docs/upstream.md#prometheus): from the environment, else from the main ConfigMap's
//! keys, else an error that says how to configure it. The environment wins as a whole when it
//! sets `PROMETHEUS_BASE_URL`. Pure: callers hand in the lookups; files are read by the client.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Default name of the main ConfigMap (env `CONFIG_MAP_NAME`).
pub const MAIN_CONFIG_MAP_NAME: &str = "workload-variant-autoscaler-variantautoscaling-config";

pub const BASE_URL: &str = "PROMETHEUS_BASE_URL";
pub const INSECURE_SKIP_VERIFY: &str = "PROMETHEUS_TLS_INSECURE_SKIP_VERIFY";
pub const CA_CERT_PATH: &str = "PROMETHEUS_CA_CERT_PATH";
pub const CLIENT_CERT_PATH: &str = "PROMETHEUS_CLIENT_CERT_PATH";
pub const CLIENT_KEY_PATH: &str = "PROMETHEUS_CLIENT_KEY_PATH";
pub const SERVER_NAME: &str = "PROMETHEUS_SERVER_NAME";
pub const BEARER_TOKEN: &str = "PROMETHEUS_BEARER_TOKEN";
pub const TOKEN_PATH: &str = "PROMETHEUS_TOKEN_PATH";
pub const ALLOW_HTTP: &str = "PROMETHEUS_ALLOW_HTTP";

/// Where the configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Environment,
    ConfigMap { namespace: String, name: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("environment"),
            Self::ConfigMap { namespace, name } => write!(f, "ConfigMap {namespace}/{name}"),
        }
    }
}

/// A secret string that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The Prometheus connection settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PrometheusConfig {
    pub base_url: String,
    pub insecure_skip_verify: bool,
    pub ca_cert_path: Option<PathBuf>,
    pub client_cert_path: Option<PathBuf>,
    pub client_key_path: Option<PathBuf>,
    pub server_name: Option<String>,
    pub bearer_token: Option<Secret>,
    pub token_path: Option<PathBuf>,
    /// `http://` is accepted only with `PROMETHEUS_ALLOW_HTTP=true`.
    pub allow_http: bool,
    pub source: Source,
}

/// A configuration that cannot be used, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrometheusConfigError {
    /// Neither the environment nor the ConfigMap names a Prometheus.
    #[error(
        "no Prometheus configuration found: set {BASE_URL} (e.g. https://prometheus-k8s.monitoring.svc:9091) in the environment, or in ConfigMap {config_map}"
    )]
    NotConfigured { config_map: String },
    /// The ConfigMap could not be read (and the environment did not configure Prometheus).
    #[error(
        "{BASE_URL} is not set and ConfigMap {config_map} cannot be read: {error}; set {BASE_URL} in the environment or fix access to the ConfigMap"
    )]
    ConfigMapUnreadable { config_map: String, error: String },
    #[error("{BASE_URL} ({origin}): {url:?} is not a URL: {why}")]
    InvalidUrl {
        origin: Source,
        url: String,
        why: String,
    },
    #[error(
        "{BASE_URL} ({origin}): {url:?} uses plain http; HTTPS is required (use https://, or set {ALLOW_HTTP}=true for a test setup)"
    )]
    HttpNotAllowed { origin: Source, url: String },
    /// Only one of the client certificate and key is set.
    #[error(
        "{set} is set but {missing} is not ({origin}): mTLS needs both the client certificate and its key"
    )]
    HalfClientCertificate {
        origin: Source,
        set: &'static str,
        missing: &'static str,
    },
}

impl PrometheusConfig {
    /// Reads the settings through `get` (an environment or ConfigMap lookup). `None` when
    /// `PROMETHEUS_BASE_URL` is absent or empty.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>, source: Source) -> Option<Self> {
        let text = |key: &str| {
            get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let base_url = text(BASE_URL)?;
        Some(Self {
            base_url,
            // Upstream: true only for exactly "true".
            insecure_skip_verify: get(INSECURE_SKIP_VERIFY).as_deref() == Some("true"),
            ca_cert_path: text(CA_CERT_PATH).map(PathBuf::from),
            client_cert_path: text(CLIENT_CERT_PATH).map(PathBuf::from),
            client_key_path: text(CLIENT_KEY_PATH).map(PathBuf::from),
            server_name: text(SERVER_NAME),
            bearer_token: get(BEARER_TOKEN)
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .map(Secret),
            token_path: text(TOKEN_PATH).map(PathBuf::from),
            allow_http: get(ALLOW_HTTP).is_some_and(|v| v.eq_ignore_ascii_case("true")),
            source,
        })
    }

    /// The base URL as it may be shown or logged: user and password removed.
    pub fn shown_url(&self) -> String {
        redact_url(&self.base_url)
    }

    /// Checks what can be checked without touching files; returns warnings to log.
    pub fn validate(&self) -> Result<Vec<String>, PrometheusConfigError> {
        let mut warnings = Vec::new();
        let shown = self.shown_url();
        let url =
            reqwest::Url::parse(&self.base_url).map_err(|e| PrometheusConfigError::InvalidUrl {
                origin: self.source.clone(),
                url: shown.clone(),
                why: e.to_string(),
            })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => warnings.push(format!(
                "{BASE_URL} {shown} uses plain http ({ALLOW_HTTP}=true): queries and tokens travel unencrypted"
            )),
            "http" => {
                return Err(PrometheusConfigError::HttpNotAllowed {
                    origin: self.source.clone(),
                    url: shown,
                });
            }
            other => {
                return Err(PrometheusConfigError::InvalidUrl {
                    origin: self.source.clone(),
                    url: shown,
                    why: format!("scheme {other:?} (expected https)"),
                });
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            warnings.push(format!(
                "{BASE_URL} carries a user or password: they are sent to Prometheus as given and never shown; prefer {BEARER_TOKEN} or {TOKEN_PATH}"
            ));
        }
        match (&self.client_cert_path, &self.client_key_path) {
            (Some(_), None) => {
                return Err(PrometheusConfigError::HalfClientCertificate {
                    origin: self.source.clone(),
                    set: CLIENT_CERT_PATH,
                    missing: CLIENT_KEY_PATH,
                });
            }
            (None, Some(_)) => {
                return Err(PrometheusConfigError::HalfClientCertificate {
                    origin: self.source.clone(),
                    set: CLIENT_KEY_PATH,
                    missing: CLIENT_CERT_PATH,
                });
            }
            _ => {}
        }
        if self.insecure_skip_verify {
            warnings.push(format!(
                "{INSECURE_SKIP_VERIFY}=true: the Prometheus server certificate is not verified (development only)"
            ));
        }
        if self.bearer_token.is_some() && self.token_path.is_some() {
            warnings.push(format!(
                "{BEARER_TOKEN} and {TOKEN_PATH} are both set: {BEARER_TOKEN} wins"
            ));
        }
        Ok(warnings)
    }
}

/// `url` with its user information (`user:password@`) replaced by `<redacted>`; works on any
/// text, parsable or not, so that no error message leaks a password.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}<redacted>{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// The configuration in force: the environment's when it sets `PROMETHEUS_BASE_URL`, else the
/// ConfigMap's (`config_map` is its data, or the error reading it), else an error.
pub fn resolve(
    env: &dyn Fn(&str) -> Option<String>,
    config_map_name: &str,
    config_map_namespace: &str,
    config_map: Result<Option<&BTreeMap<String, String>>, String>,
) -> Result<(PrometheusConfig, Vec<String>), PrometheusConfigError> {
    let qualified = format!("{config_map_namespace}/{config_map_name}");
    let config = match PrometheusConfig::from_lookup(env, Source::Environment) {
        Some(c) => c,
        None => match config_map {
            Err(error) => {
                return Err(PrometheusConfigError::ConfigMapUnreadable {
                    config_map: qualified,
                    error,
                });
            }
            Ok(None) => {
                return Err(PrometheusConfigError::NotConfigured {
                    config_map: qualified,
                });
            }
            Ok(Some(data)) => PrometheusConfig::from_lookup(
                &|key| data.get(key).cloned(),
                Source::ConfigMap {
                    namespace: config_map_namespace.into(),
                    name: config_map_name.into(),
                },
            )
            .ok_or(PrometheusConfigError::NotConfigured {
                config_map: qualified,
            })?,
        },
    };
    let warnings = config.validate()?;
    Ok((config, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn environment_wins_as_a_whole() {
        let env = lookup(&[(BASE_URL, "https://env:9091")]);
        let cm = BTreeMap::from([
            (BASE_URL.to_owned(), "https://cm:9091".to_owned()),
            (CA_CERT_PATH.to_owned(), "/cm/ca.crt".to_owned()),
        ]);
        let (c, _) = resolve(&env, "main", "ns", Ok(Some(&cm))).unwrap();
        assert_eq!(c.base_url, "https://env:9091");
        assert_eq!(c.ca_cert_path, None, "no merging with the ConfigMap");
        assert_eq!(c.source, Source::Environment);
    }

    #[test]
    fn config_map_is_the_fallback_with_the_same_keys() {
        let env = lookup(&[]);
        let cm = BTreeMap::from([
            (BASE_URL.to_owned(), "https://cm:9091".to_owned()),
            (INSECURE_SKIP_VERIFY.to_owned(), "true".to_owned()),
            (TOKEN_PATH.to_owned(), "/var/run/secrets/token".to_owned()),
        ]);
        let (c, warnings) = resolve(&env, "main", "ns", Ok(Some(&cm))).unwrap();
        assert_eq!(
            c.source,
            Source::ConfigMap {
                namespace: "ns".into(),
                name: "main".into()
            }
        );
        assert!(c.insecure_skip_verify);
        assert_eq!(
            c.token_path,
            Some(PathBuf::from("/var/run/secrets/token")),
            "unlike upstream, the token path is read too"
        );
        assert!(warnings[0].contains("not verified"));
    }

    #[test]
    fn nothing_configured_says_how_to_fix_it() {
        let err = resolve(&lookup(&[]), "main", "ns", Ok(None)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no Prometheus configuration found: set PROMETHEUS_BASE_URL"),
            "{err}"
        );
        let err = resolve(&lookup(&[]), "main", "ns", Err("forbidden".into())).unwrap_err();
        assert!(
            err.to_string()
                .contains("ConfigMap ns/main cannot be read: forbidden"),
            "{err}"
        );
        let empty = BTreeMap::from([(BASE_URL.to_owned(), String::new())]);
        assert!(matches!(
            resolve(&lookup(&[]), "main", "ns", Ok(Some(&empty))),
            Err(PrometheusConfigError::NotConfigured { .. })
        ));
    }

    #[test]
    fn https_is_required_unless_http_is_allowed() {
        let err = resolve(
            &lookup(&[(BASE_URL, "http://prom:9090")]),
            "m",
            "n",
            Ok(None),
        )
        .unwrap_err();
        assert!(err.to_string().contains("HTTPS is required"), "{err}");
        let (_, warnings) = resolve(
            &lookup(&[(BASE_URL, "http://prom:9090"), (ALLOW_HTTP, "TRUE")]),
            "m",
            "n",
            Ok(None),
        )
        .unwrap();
        assert!(warnings[0].contains("unencrypted"));
        assert!(matches!(
            resolve(&lookup(&[(BASE_URL, "ftp://x")]), "m", "n", Ok(None)),
            Err(PrometheusConfigError::InvalidUrl { .. })
        ));
        assert!(matches!(
            resolve(&lookup(&[(BASE_URL, "not a url")]), "m", "n", Ok(None)),
            Err(PrometheusConfigError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn half_a_client_certificate_is_an_error() {
        let err = resolve(
            &lookup(&[(BASE_URL, "https://p"), (CLIENT_CERT_PATH, "/c.crt")]),
            "m",
            "n",
            Ok(None),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "PROMETHEUS_CLIENT_CERT_PATH is set but PROMETHEUS_CLIENT_KEY_PATH is not (environment): mTLS needs both the client certificate and its key"
        );
        assert!(
            resolve(
                &lookup(&[(BASE_URL, "https://p"), (CLIENT_KEY_PATH, "/c.key")]),
                "m",
                "n",
                Ok(None)
            )
            .is_err()
        );
    }

    #[test]
    fn insecure_only_for_exactly_true_and_tokens_never_print() {
        let c = PrometheusConfig::from_lookup(
            &lookup(&[
                (BASE_URL, "https://p"),
                (INSECURE_SKIP_VERIFY, "True"),
                (BEARER_TOKEN, " s3cr3t \n"),
            ]),
            Source::Environment,
        )
        .unwrap();
        assert!(!c.insecure_skip_verify);
        assert_eq!(c.bearer_token.as_ref().unwrap().expose(), "s3cr3t");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn urls_are_shown_without_user_or_password() {
        for (url, shown) in [
            ("https://prometheus:9091", "https://prometheus:9091"),
            (
                "https://u:p%40ss@prometheus:9091/x",
                "https://<redacted>@prometheus:9091/x",
            ),
            (
                "https://token@prometheus/api?x=a@b",
                "https://<redacted>@prometheus/api?x=a@b",
            ),
            ("not a url but:secret@host", "<redacted>@host"),
            (
                "https://host/path@not-userinfo",
                "https://host/path@not-userinfo",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let c = PrometheusConfig::from_lookup(
            &lookup(&[(BASE_URL, "http://admin:hunter2@prometheus:9090")]),
            Source::Environment,
        )
        .unwrap();
        let error = c.validate().unwrap_err().to_string();
        assert!(
            !error.contains("hunter2") && error.contains("<redacted>@prometheus"),
            "{error}"
        );
    }
}
