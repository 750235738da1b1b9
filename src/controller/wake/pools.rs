//! InferencePools as scale-from-zero reads them (upstream `internal/utils/pool/*`,
//! `internal/datastore`): the group chosen by `POOL_GROUP`, a pool's label selector and its
//! endpoint picker (EPP) Service, the Service's metrics port, and which pool serves a pod
//! template's labels. Pure: objects in, data out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DynamicObject};

/// The InferencePool API group wva watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PoolGroup {
    /// `inference.networking.x-k8s.io/v1alpha2` (upstream's default).
    #[default]
    Experimental,
    /// `inference.networking.k8s.io/v1`.
    Stable,
}

impl PoolGroup {
    pub const EXPERIMENTAL: &str = "inference.networking.x-k8s.io";
    pub const STABLE: &str = "inference.networking.k8s.io";

    /// `POOL_GROUP`: empty or absent is the experimental group; anything but the two groups is
    /// an error that names both.
    pub fn from_env(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).unwrap_or_default() {
            "" | Self::EXPERIMENTAL => Ok(Self::Experimental),
            Self::STABLE => Ok(Self::Stable),
            other => Err(format!(
                "invalid POOL_GROUP {other:?}: must be either '{}' or '{}'",
                Self::STABLE,
                Self::EXPERIMENTAL
            )),
        }
    }

    pub fn group(self) -> &'static str {
        match self {
            Self::Experimental => Self::EXPERIMENTAL,
            Self::Stable => Self::STABLE,
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Self::Experimental => "v1alpha2",
            Self::Stable => "v1",
        }
    }

    pub fn api_version(self) -> String {
        format!("{}/{}", self.group(), self.version())
    }

    pub fn resource(self) -> ApiResource {
        ApiResource {
            group: self.group().into(),
            version: self.version().into(),
            api_version: self.api_version(),
            kind: "InferencePool".into(),
            plural: "inferencepools".into(),
        }
    }
}

/// What scale-from-zero needs of one pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPool {
    pub namespace: String,
    pub name: String,
    /// The model server pods' labels (`matchLabels` in v1, the plain map in v1alpha2).
    pub selector: BTreeMap<String, String>,
    /// The endpoint picker's Service, in the pool's namespace.
    pub picker_service: String,
}

/// Reads a pool; the error says which field is missing.
pub fn endpoint_pool(group: PoolGroup, pool: &DynamicObject) -> Result<EndpointPool, String> {
    let spec = pool.data.get("spec");
    let (selector, picker) = match group {
        PoolGroup::Stable => (
            spec.and_then(|s| s.pointer("/selector/matchLabels")),
            spec.and_then(|s| s.pointer("/endpointPickerRef/name")),
        ),
        PoolGroup::Experimental => (
            spec.and_then(|s| s.get("selector")),
            spec.and_then(|s| s.pointer("/extensionRef/name")),
        ),
    };
    let selector: BTreeMap<String, String> = selector
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let picker_field = match group {
        PoolGroup::Stable => "spec.endpointPickerRef.name",
        PoolGroup::Experimental => "spec.extensionRef.name",
    };
    let picker = picker
        .and_then(serde_json::Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{picker_field} is missing: no endpoint picker to ask"))?;
    if selector.is_empty() {
        return Err("spec.selector names no labels: the pool would match every pod".into());
    }
    Ok(EndpointPool {
        namespace: pool.metadata.namespace.clone().unwrap_or_default(),
        name: pool.metadata.name.clone().unwrap_or_default(),
        selector,
        picker_service: picker.to_owned(),
    })
}

/// The pool whose selector a pod template's `labels` satisfy, in the same namespace — the first
/// by name when several do (upstream takes whichever its map yields first, and looks across
/// namespaces).
pub fn pool_for<'a>(
    pools: &'a [EndpointPool],
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Option<&'a EndpointPool> {
    pools
        .iter()
        .filter(|p| p.namespace == namespace)
        .filter(|p| p.selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .min_by(|a, b| a.name.cmp(&b.name))
}

/// The Service's metrics port: the `port` of the first port whose name contains `metric`.
pub fn metrics_port(service: &Service) -> Result<u16, String> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .find(|p| p.name.as_deref().is_some_and(|n| n.contains("metric")))
        .and_then(|p| u16::try_from(p.port).ok())
        .ok_or_else(|| {
            "metrics port not found: the Service must have a port whose name contains 'metric'"
                .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(group: PoolGroup, spec: serde_json::Value) -> DynamicObject {
        DynamicObject::new("pool", &group.resource())
            .within("prod")
            .data(json!({ "spec": spec }))
    }

    #[test]
    fn pool_group_comes_from_the_environment_and_names_both_groups_when_wrong() {
        assert_eq!(PoolGroup::from_env(None), Ok(PoolGroup::Experimental));
        assert_eq!(PoolGroup::from_env(Some("")), Ok(PoolGroup::Experimental));
        assert_eq!(
            PoolGroup::from_env(Some("inference.networking.k8s.io")),
            Ok(PoolGroup::Stable)
        );
        assert_eq!(
            PoolGroup::from_env(Some("gateway.networking.k8s.io")).unwrap_err(),
            "invalid POOL_GROUP \"gateway.networking.k8s.io\": must be either 'inference.networking.k8s.io' or 'inference.networking.x-k8s.io'"
        );
    }

    #[test]
    fn both_api_versions_are_read() {
        let v1 = pool(
            PoolGroup::Stable,
            json!({"selector": {"matchLabels": {"app": "vllm"}}, "endpointPickerRef": {"name": "epp", "port": {"number": 9002}}}),
        );
        let alpha = pool(
            PoolGroup::Experimental,
            json!({"selector": {"app": "vllm"}, "extensionRef": {"name": "epp"}, "targetPortNumber": 8000}),
        );
        for (group, object) in [(PoolGroup::Stable, v1), (PoolGroup::Experimental, alpha)] {
            let p = endpoint_pool(group, &object).unwrap();
            assert_eq!(p.selector, BTreeMap::from([("app".into(), "vllm".into())]));
            assert_eq!(
                (p.namespace.as_str(), p.picker_service.as_str()),
                ("prod", "epp")
            );
        }
        let no_picker = pool(
            PoolGroup::Stable,
            json!({"selector": {"matchLabels": {"app": "vllm"}}}),
        );
        assert!(
            endpoint_pool(PoolGroup::Stable, &no_picker)
                .unwrap_err()
                .starts_with("spec.endpointPickerRef.name is missing")
        );
    }

    #[test]
    fn a_template_finds_its_pool_in_its_namespace_only() {
        let make = |ns: &str, name: &str, app: &str| EndpointPool {
            namespace: ns.into(),
            name: name.into(),
            selector: BTreeMap::from([("app".into(), app.into())]),
            picker_service: "epp".into(),
        };
        let pools = [
            make("dev", "a", "vllm"),
            make("prod", "z", "vllm"),
            make("prod", "b", "vllm"),
            make("prod", "c", "other"),
        ];
        let labels = BTreeMap::from([("app".into(), "vllm".into()), ("tier".into(), "gpu".into())]);
        assert_eq!(pool_for(&pools, "prod", &labels).unwrap().name, "b");
        assert!(pool_for(&pools, "staging", &labels).is_none());
    }

    #[test]
    fn the_metrics_port_is_the_first_named_metric() {
        let service: Service = serde_json::from_value(json!({"spec": {"ports": [
            {"name": "grpc", "port": 9002}, {"name": "http-metrics", "port": 9090, "targetPort": 19090}, {"name": "metrics2", "port": 1}
        ]}})).unwrap();
        assert_eq!(metrics_port(&service), Ok(9090));
        let unnamed: Service =
            serde_json::from_value(json!({"spec": {"ports": [{"port": 9090}]}})).unwrap();
        assert!(metrics_port(&unnamed).unwrap_err().contains("'metric'"));
    }
}
