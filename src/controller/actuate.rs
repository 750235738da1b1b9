//! Actuation: what to do with a decision — publish it only (`metrics`, upstream's mode: an HPA
//! or KEDA reads `wva_desired_replicas`), or also set the target's replicas through its `/scale`
//! subresource (`direct`). Planning is pure; [`scale`] and [`patch_status`] are the API writes. Never acts on a
//! decision made without metrics, and never fights an HPA that scales the same workload.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Patch, PatchParams};

use crate::core::Decision;

/// The field manager of every wva write.
pub const FIELD_MANAGER: &str = "wva";

/// How decisions reach the workloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Publish the gauges only (upstream-compatible; an HPA or KEDA scales).
    #[default]
    Metrics,
    /// Publish the gauges and patch the target's `/scale` subresource.
    Direct,
}

impl Mode {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "metrics" => Some(Self::Metrics),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Direct => "direct",
        }
    }
}

/// What actuation does for one variant this cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Publish only (metrics mode, or the target already runs the desired count, or the
    /// decision was made without metrics).
    Publish,
    /// Set the target's `spec.replicas` from `from` to `to`.
    Scale { from: u32, to: u32 },
    /// Do not touch the target; the message says why.
    Hold(String),
}

/// The HPA in `namespace` that scales Deployment `deployment`, if any.
pub fn autoscaler_of<'a>(
    autoscalers: &'a [Arc<HorizontalPodAutoscaler>],
    namespace: &str,
    deployment: &str,
) -> Option<&'a str> {
    autoscalers
        .iter()
        .filter(|h| h.metadata.namespace.as_deref() == Some(namespace))
        .find(|h| {
            let target = &h.spec.scale_target_ref;
            target.kind == "Deployment" && target.name == deployment
        })
        .and_then(|h| h.metadata.name.as_deref())
}

/// Plans one variant: `spec_replicas` is the target's `spec.replicas` now, `autoscaler` the HPA
/// that scales it (direct mode watches them).
pub fn plan(mode: Mode, decision: &Decision, spec_replicas: u32, autoscaler: Option<&str>) -> Plan {
    if mode == Mode::Metrics || !decision.metrics_available {
        return Plan::Publish;
    }
    if let Some(hpa) = autoscaler {
        return Plan::Hold(format!(
            "HorizontalPodAutoscaler {hpa} also scales Deployment {}: direct actuation holds instead of fighting it; delete the HPA, or run wva with --actuation metrics and let the HPA read wva_desired_replicas",
            decision.target_name
        ));
    }
    if decision.target_replicas == spec_replicas {
        return Plan::Publish;
    }
    Plan::Scale {
        from: spec_replicas,
        to: decision.target_replicas,
    }
}

/// The target's `spec.replicas` (absent means 1, the API server's default).
pub fn spec_replicas(deployment: &crate::cache::CachedDeployment) -> u32 {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0) as u32
}

/// Sets Deployment `namespace/name` to `replicas` through its `/scale` subresource (a merge
/// patch of `spec.replicas`, field manager `wva`).
pub async fn scale(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    replicas: u32,
) -> Result<(), kube::Error> {
    let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch_scale(
        name,
        &params,
        &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
    )
    .await
    .map(|_| ())
}

/// Merge-patches VA `namespace/name`'s status subresource to `status` (field manager `wva`).
pub async fn patch_status(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    status: &crate::api::VariantAutoscalingStatus,
) -> Result<(), kube::Error> {
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client.clone(),
        namespace,
        &crate::cache::variant_autoscaling_resource(),
    );
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &params, &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests;
