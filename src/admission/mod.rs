//! The admission webhook: validating and mutating rules for VariantAutoscaling objects and the
//! wva ConfigMaps, and the HTTPS server that serves them. The rules ([`validate`], [`mutate`])
//! are pure functions of the object under review and a read-only view of the cluster
//! ([`ClusterFacts`]); [`handle`] turns a parsed review into the response; `server` is the thin
//! IO adapter (TLS, routes, certificate reload, metrics); `cluster` reads the shared caches.
//! Does not parse command lines or read the environment: `cmd` hands it [`server::ServeOptions`].

pub mod cluster;
pub mod limits;
pub mod metrics;
pub mod mutate;
pub mod review;
pub mod server;
pub mod validate;

use serde_json::Value;

pub use review::{Operation, ReviewRequest, UnreadableReview, Verdict, parse_review};
pub use validate::{ClusterFacts, ConfigMapSettings, ExistingVa};

/// The largest VariantAutoscaling review body read.
pub const MAX_VA_BODY_BYTES: usize = 512 * 1024;

/// The webhook endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    ValidateVariantAutoscaling,
    MutateVariantAutoscaling,
    ValidateConfig,
}

impl Route {
    pub const ALL: [Route; 3] = [
        Route::ValidateVariantAutoscaling,
        Route::MutateVariantAutoscaling,
        Route::ValidateConfig,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Route::ValidateVariantAutoscaling => "/validate-variantautoscaling",
            Route::MutateVariantAutoscaling => "/mutate-variantautoscaling",
            Route::ValidateConfig => "/validate-config",
        }
    }

    /// The largest review body the route reads. A VA review (object and old object) is a few
    /// KiB; only ConfigMap reviews can approach the API server's object limit.
    pub fn max_body_bytes(self) -> usize {
        match self {
            Route::ValidateVariantAutoscaling | Route::MutateVariantAutoscaling => {
                MAX_VA_BODY_BYTES
            }
            Route::ValidateConfig => review::MAX_BODY_BYTES,
        }
    }

    /// The object kind the route reviews.
    pub fn kind(self) -> &'static str {
        match self {
            Route::ValidateVariantAutoscaling | Route::MutateVariantAutoscaling => {
                "VariantAutoscaling"
            }
            Route::ValidateConfig => "ConfigMap",
        }
    }
}

/// Applies the route's rules to a parsed review and builds the AdmissionReview response.
pub fn handle(
    route: Route,
    request: &ReviewRequest,
    facts: &ClusterFacts,
    settings: &ConfigMapSettings,
) -> Value {
    let verdict = verdict(route, request, facts, settings);
    review::response(&request.uid, &verdict, route.kind(), &request.name)
}

/// The rules' verdict for one request.
pub fn verdict(
    route: Route,
    request: &ReviewRequest,
    facts: &ClusterFacts,
    settings: &ConfigMapSettings,
) -> Verdict {
    let Some(object) = request.object.as_ref() else {
        return Verdict::default();
    };
    if !request.kind.is_empty() && request.kind != route.kind() {
        return Verdict {
            warnings: vec![format!(
                "wva: {} reviews {} objects, not {}; allowed unchecked (check the webhook's rules)",
                route.path(),
                route.kind(),
                request.kind
            )],
            ..Default::default()
        };
    }
    match route {
        Route::ValidateVariantAutoscaling => validate::validate_variant_autoscaling(
            request.operation,
            &request.namespace,
            object,
            request.old_object.as_ref(),
            facts,
        ),
        Route::MutateVariantAutoscaling => match request.operation {
            Operation::Create | Operation::Update => Verdict {
                patch: Some(mutate::patch(object)),
                ..Default::default()
            },
            _ => Verdict::default(),
        },
        Route::ValidateConfig => validate::validate_config_map(request.operation, object, settings),
    }
}

#[cfg(test)]
mod tests;
