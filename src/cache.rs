//! The process's shared caches: one watch per kind for the whole process (VariantAutoscalings
//! now; Deployments, Pods and ConfigMaps join when the controller does), handed to every
//! consumer. Objects are trimmed as they enter a store (no `managedFields`, no
//! `last-applied-configuration`), and the lookups the rules use are plain functions over a
//! store's objects, testable as data in → data out. Reads only; never writes to the cluster.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};

use crate::runtime::{Check, Shutdown};

/// The annotation `kubectl apply` stores the whole previous object in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The readiness check name of the VariantAutoscaling cache.
pub const VARIANT_AUTOSCALINGS: &str = "cache/variantautoscalings";

/// VariantAutoscalings as dynamic objects: a VA without `spec` passes the CRD schema and must
/// not break the watch the way a typed list would.
pub fn variant_autoscaling_resource() -> ApiResource {
    ApiResource {
        group: crate::api::GROUP.into(),
        version: crate::api::VERSION.into(),
        api_version: format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        kind: "VariantAutoscaling".into(),
        plural: "variantautoscalings".into(),
    }
}

/// Drops what no consumer reads and what makes objects large: managed fields and the
/// last-applied annotation (a full copy of the object).
pub fn trim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The stores of every watched kind; cheap to clone.
#[derive(Clone)]
pub struct Caches {
    pub variant_autoscalings: Store<DynamicObject>,
}

impl Caches {
    /// Starts nothing yet: returns the stores and the watch task, to be run as a runtime
    /// component (it returns when `shutdown` is requested). Watches every namespace.
    pub fn new(
        client: Client,
        shutdown: Shutdown,
    ) -> (
        Self,
        impl Future<Output = Result<(), std::convert::Infallible>> + Send,
    ) {
        let resource = variant_autoscaling_resource();
        let api: Api<DynamicObject> = Api::all_with(client, &resource);
        let writer = reflector::store::Writer::new(resource);
        let store = writer.as_reader();
        let stream = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default()).modify(trim),
        )
        .default_backoff()
        .applied_objects();
        let task = async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                tokio::select! {
                    () = shutdown.requested() => return Ok(()),
                    event = stream.next() => match event {
                        Some(Err(error)) => tracing::warn!(%error, "VariantAutoscaling watch failed; retrying"),
                        Some(Ok(_)) => {}
                        // The backoff stream never ends; if it did, waiting is all that is left.
                        None => shutdown.requested().await,
                    },
                }
            }
        };
        (
            Self {
                variant_autoscalings: store,
            },
            task,
        )
    }

    /// Ready once the first full list of VariantAutoscalings has arrived.
    pub fn variant_autoscalings_synced(&self) -> Check {
        let store = self.variant_autoscalings.clone();
        Arc::new(move || {
            if futures::FutureExt::now_or_never(store.wait_until_ready()).is_some() {
                Ok(())
            } else {
                Err("the VariantAutoscaling cache has not synced yet".into())
            }
        })
    }
}

/// The names of the VAs in `namespace` other than `except` whose `spec.scaleTargetRef` is
/// `kind`/`name`. Reads the objects in place; clones only the names it returns.
pub fn variant_autoscalings_targeting(
    objects: &[Arc<DynamicObject>],
    namespace: &str,
    kind: &str,
    name: &str,
    except: &str,
) -> Vec<String> {
    objects
        .iter()
        .filter(|va| va.metadata.namespace.as_deref() == Some(namespace))
        .filter(|va| va.metadata.name.as_deref() != Some(except))
        .filter(|va| {
            va.data
                .get("spec")
                .and_then(crate::api::target_ref)
                .is_some_and(|target| target == (kind, name))
        })
        .filter_map(|va| va.metadata.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn va(namespace: &str, name: &str, spec: serde_json::Value) -> Arc<DynamicObject> {
        let mut object = DynamicObject::new(name, &variant_autoscaling_resource())
            .within(namespace)
            .data(json!({}));
        if !spec.is_null() {
            object.data = json!({ "spec": spec });
        }
        Arc::new(object)
    }

    #[test]
    fn lookups_find_only_the_same_target_in_the_same_namespace() {
        let target = |name: &str| json!({"scaleTargetRef": {"kind": "Deployment", "name": name}, "modelID": "m"});
        let objects = vec![
            va("prod", "a", target("decode")),
            va("prod", "b", target("decode")),
            va("prod", "c", target("prefill")),
            va("dev", "d", target("decode")),
            va("prod", "no-spec", serde_json::Value::Null),
            va("prod", "bad-spec", json!({"scaleTargetRef": "decode"})),
        ];
        assert_eq!(
            variant_autoscalings_targeting(&objects, "prod", "Deployment", "decode", "a"),
            vec!["b".to_owned()]
        );
        assert_eq!(
            variant_autoscalings_targeting(&objects, "prod", "Deployment", "decode", "new"),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert!(
            variant_autoscalings_targeting(&objects, "prod", "StatefulSet", "decode", "x")
                .is_empty()
        );
    }

    #[test]
    fn trimming_drops_managed_fields_and_the_last_applied_copy() {
        let mut object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
            "metadata": {"name": "a", "namespace": "prod",
                "annotations": {LAST_APPLIED_ANNOTATION: "{\"big\": true}", "team": "x"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"modelID": "m"}
        }))
        .unwrap();
        trim(&mut object);
        assert!(object.metadata.managed_fields.is_none());
        assert_eq!(
            object.metadata.annotations,
            Some([("team".to_owned(), "x".to_owned())].into())
        );
        assert_eq!(object.data["spec"]["modelID"], "m");
        let mut only_last_applied: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "b", "annotations": {LAST_APPLIED_ANNOTATION: "{}"}}
        }))
        .unwrap();
        trim(&mut only_last_applied);
        assert!(only_last_applied.metadata.annotations.is_none());
    }
}
