//! Control-plane tier for the admission webhook: `wva webhook` as a process, registered with the
//! real kube-apiserver through the manifests in webhooks/ (clientConfig.url + caBundle), and
//! exercised with `kubectl apply`.

mod support;

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use support::control_plane::{ControlPlane, control_plane};
use support::pki::TestCa;
use support::webhook::WebhookProcess;

/// Label that opts a namespace into the VA webhooks in this test binary, so that other tests'
/// deliberately odd VAs (CRD parity fixtures) are not affected.
const OPT_IN: &str = "wva-webhook-test";

struct Webhook {
    _process: WebhookProcess,
    /// The namespace the webhook treats as the controller namespace (its ConfigMaps).
    controller_namespace: String,
}

static WEBHOOK: OnceLock<Webhook> = OnceLock::new();

fn kubectl_ok(cp: &ControlPlane, args: &[&str]) -> String {
    let out = cp.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn create_namespace(cp: &ControlPlane, name: &str, opt_in: bool) {
    let labels = if opt_in {
        json!({OPT_IN: "true"})
    } else {
        json!({})
    };
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], &ns.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `wva webhook` against this cluster and registers webhooks/*.yaml pointing at it.
fn webhook() -> &'static Webhook {
    WEBHOOK.get_or_init(|| {
        let cp = control_plane();
        cp.install_crd();
        let controller_namespace = "wva-system-test".to_owned();
        create_namespace(cp, &controller_namespace, false);

        // Run the webhook as its ServiceAccount, with exactly the rights of webhooks/rbac.yaml.
        let rbac = std::fs::read_to_string(format!("{}/webhooks/rbac.yaml", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .replace("namespace: workload-variant-autoscaler-system", &format!("namespace: {controller_namespace}"));
        let out = cp.kubectl_stdin(&["apply", "-f", "-"], &rbac);
        assert!(out.status.success(), "webhooks/rbac.yaml: {}", String::from_utf8_lossy(&out.stderr));
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let kubeconfig = runtime.block_on(async {
            let admin = cp.admin_client().await;
            cp.service_account_kubeconfig(&admin, &controller_namespace, "workload-variant-autoscaler-webhook").await
        });

        let dir = cp.dir.join("webhook");
        std::fs::create_dir_all(&dir).unwrap();
        let ca = TestCa::new("webhook-ca");
        let serving = ca.server_cert(&dir, "tls", &["127.0.0.1", "localhost"]);
        let log = std::fs::File::create(dir.join("webhook.log")).unwrap();
        let process = WebhookProcess::spawn(
            &serving,
            &["--kubeconfig", kubeconfig.to_str().unwrap()],
            &[("POD_NAMESPACE", &controller_namespace)],
            Stdio::from(log),
        );
        cp.register_pid(process.child.id());
        let admission = process.admission.clone();
        let port = process.probe_port();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !support::process::http_ok(port, "/readyz") {
            assert!(Instant::now() < deadline, "wva webhook not ready");
            std::thread::sleep(Duration::from_millis(100));
        }

        let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca.cert_pem());
        for file in ["validating-webhook-configuration.yaml", "mutating-webhook-configuration.yaml"] {
            let text = std::fs::read_to_string(format!("{}/webhooks/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            let mut config: Value = serde_yaml_ng::from_str(&text).unwrap();
            for hook in config["webhooks"].as_array_mut().unwrap() {
                let path = hook["clientConfig"]["service"]["path"].as_str().unwrap().to_owned();
                hook["clientConfig"] = json!({"url": format!("{admission}{path}"), "caBundle": ca_bundle});
                if hook["name"] == "vconfig.llmd.ai" {
                    hook["namespaceSelector"] = json!({"matchLabels": {"kubernetes.io/metadata.name": controller_namespace}});
                } else {
                    hook["namespaceSelector"] = json!({"matchLabels": {OPT_IN: "true"}});
                }
            }
            let out = cp.kubectl_stdin(&["apply", "-f", "-"], &config.to_string());
            assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Webhook { _process: process, controller_namespace }
    })
}

/// `kubectl apply -f -` of a manifest: (success, stdout, stderr).
fn apply(cp: &ControlPlane, manifest: &str, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["apply", "-f", "-"];
    args.extend_from_slice(extra);
    // The API server may take a moment to pick up a new webhook configuration.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = cp.kubectl_stdin(&args, manifest);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !stderr.contains("failed calling webhook") || Instant::now() > deadline {
            return (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr,
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn va_yaml(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: llmd.ai/v1alpha1\nkind: VariantAutoscaling\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    inference.optimization/acceleratorName: A100\n{spec}"
    )
}

fn test_namespace(cp: &ControlPlane, name: &str) -> String {
    create_namespace(cp, name, true);
    name.to_owned()
}

#[test]
fn a_minimal_va_is_stored_with_defaults_filled_in() {
    let cp = control_plane();
    webhook();
    let ns = test_namespace(cp, "hook-minimal");
    let (ok, _, stderr) = apply(
        cp,
        &va_yaml(
            &ns,
            "llama",
            "spec:\n  scaleTargetRef:\n    name: llama-decode\n  modelID: meta/llama-3.1-8b\n",
        ),
        &[],
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("Warning: spec.scaleTargetRef: Deployment \"llama-decode\" does not exist in namespace \"hook-minimal\" yet"), "{stderr}");
    let stored: Value = serde_json::from_str(&kubectl_ok(
        cp,
        &["get", "va", "llama", "-n", &ns, "-o", "json"],
    ))
    .unwrap();
    assert_eq!(
        stored["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-decode"})
    );
    assert_eq!(stored["spec"]["variantCost"], "10.0");
    // Applying again changes nothing (the patch is idempotent).
    let (ok, stdout, _) = apply(
        cp,
        &va_yaml(
            &ns,
            "llama",
            "spec:\n  scaleTargetRef:\n    name: llama-decode\n  modelID: meta/llama-3.1-8b\n",
        ),
        &[],
    );
    assert!(ok && stdout.contains("unchanged"), "{stdout}");
}

#[test]
fn invalid_vas_are_rejected_with_our_messages() {
    let cp = control_plane();
    webhook();
    let ns = test_namespace(cp, "hook-invalid");
    let cases = [
        // The CRD schema passes a VA without spec; the webhook does not.
        (
            "nospec",
            "",
            "spec: Required value: a VariantAutoscaling needs spec.scaleTargetRef",
        ),
        (
            "nokind-target",
            "spec:\n  modelID: m\n",
            "spec.scaleTargetRef: Required value",
        ),
        (
            "statefulset",
            "spec:\n  scaleTargetRef:\n    kind: StatefulSet\n    name: x\n  modelID: m\n",
            "spec.scaleTargetRef.kind: Unsupported value: \"StatefulSet\": supported values: \"Deployment\"",
        ),
        (
            "badname",
            "spec:\n  scaleTargetRef:\n    kind: Deployment\n    name: Bad_Name\n  modelID: m\n",
            "spec.scaleTargetRef.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain",
        ),
        (
            "hugecost",
            &format!(
                "spec:\n  scaleTargetRef:\n    name: x\n  modelID: m\n  variantCost: \"{}\"\n",
                "9".repeat(400)
            ),
            "spec.variantCost: Invalid value:",
        ),
        (
            "wordcost",
            "spec:\n  scaleTargetRef:\n    name: x\n  modelID: m\n  variantCost: abc\n",
            "spec.variantCost",
        ),
        (
            "newline-model",
            "spec:\n  scaleTargetRef:\n    name: x\n  modelID: \"llama\\nx\"\n",
            "spec.modelID: Invalid value: \"llama\\nx\": must not contain control characters",
        ),
    ];
    for (name, spec, want) in cases {
        let (ok, _, stderr) = apply(cp, &va_yaml(&ns, name, spec), &[]);
        assert!(!ok, "{name} was accepted");
        assert!(stderr.contains(want), "{name}: {stderr}");
    }
    assert!(
        kubectl_ok(cp, &["get", "va", "-n", &ns, "-o", "name"])
            .trim()
            .is_empty(),
        "nothing was stored"
    );
}

#[test]
fn a_second_va_on_the_same_deployment_is_rejected_naming_the_first() {
    let cp = control_plane();
    webhook();
    let ns = test_namespace(cp, "hook-duplicate");
    let spec = "spec:\n  scaleTargetRef:\n    kind: Deployment\n    name: shared\n  modelID: m\n";
    let (ok, _, stderr) = apply(cp, &va_yaml(&ns, "first", spec), &[]);
    assert!(ok, "{stderr}");
    // The watch cache needs a moment to see the first VA.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, _, stderr) = apply(cp, &va_yaml(&ns, "second", spec), &[]);
        if !ok {
            assert!(stderr.contains("spec.scaleTargetRef: Duplicate value: Deployment/shared: VariantAutoscaling \"first\" in namespace \"hook-duplicate\" already targets it"), "{stderr}");
            break;
        }
        assert!(Instant::now() < deadline, "the duplicate was accepted");
        let _ = cp.kubectl(&["delete", "va", "second", "-n", &ns]);
        std::thread::sleep(Duration::from_millis(200));
    }
    // The first VA itself can still be updated.
    let (ok, _, stderr) = apply(
        cp,
        &va_yaml(
            &ns,
            "first",
            "spec:\n  scaleTargetRef:\n    kind: Deployment\n    name: shared\n  modelID: m\n  variantCost: \"20\"\n",
        ),
        &[],
    );
    assert!(ok, "{stderr}");
}

#[test]
fn server_side_dry_run_is_checked_and_stores_nothing() {
    let cp = control_plane();
    webhook();
    let ns = test_namespace(cp, "hook-dryrun");
    let (ok, _, stderr) = apply(
        cp,
        &va_yaml(
            &ns,
            "bad",
            "spec:\n  scaleTargetRef:\n    kind: Job\n    name: x\n  modelID: m\n",
        ),
        &["--dry-run=server"],
    );
    assert!(
        !ok && stderr.contains("Unsupported value: \"Job\""),
        "{stderr}"
    );
    let (ok, stdout, stderr) = apply(
        cp,
        &va_yaml(
            &ns,
            "good",
            "spec:\n  scaleTargetRef:\n    name: x\n  modelID: m\n",
        ),
        &["--dry-run=server", "-o", "json"],
    );
    assert!(ok, "{stderr}");
    let object: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        object["spec"]["scaleTargetRef"]["kind"], "Deployment",
        "the dry run shows the defaults"
    );
    assert!(
        kubectl_ok(cp, &["get", "va", "-n", &ns, "-o", "name"])
            .trim()
            .is_empty()
    );
}

#[test]
fn an_invalid_saturation_config_map_is_rejected() {
    let cp = control_plane();
    let hook = webhook();
    let ns = &hook.controller_namespace;
    let config_map = |default: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "saturation-scaling-config", "namespace": ns},
               "data": {"default": default}})
        .to_string()
    };
    let (ok, _, stderr) = apply(
        cp,
        &config_map("kvCacheThreshold: 0.5\nkvSpareTrigger: 0.6\n"),
        &[],
    );
    assert!(!ok, "accepted");
    assert!(stderr.contains("saturation-scaling-config/default: kvCacheThreshold (0.50) should be >= kvSpareTrigger (0.60)"), "{stderr}");
    let (ok, _, stderr) = apply(cp, &config_map("kvCacheThreshold: 0.8\n"), &[]);
    assert!(ok, "{stderr}");
    // Other ConfigMaps, and the same name in another namespace, are not the webhook's business.
    let elsewhere = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "saturation-scaling-config", "namespace": "default"}, "data": {"default": "kvCacheThreshold: 7"}});
    let (ok, _, stderr) = apply(cp, &elsewhere.to_string(), &[]);
    assert!(ok, "{stderr}");
}

/// Objects admitted before the webhook (as after a migration from upstream, which had none) keep
/// working: a label-only update of a VA that shares its Deployment passes with a warning, an
/// update that adds a violation is denied, and foreground deletion (the garbage collector's
/// finalizer removal is an UPDATE) completes instead of leaving the VA Terminating.
#[test]
fn updates_ratchet_and_foreground_deletion_completes() {
    let cp = control_plane();
    webhook();
    let ns = "hook-ratchet";
    create_namespace(cp, ns, false);
    let shared = "spec:\n  scaleTargetRef:\n    kind: Deployment\n    name: shared\n  modelID: m\n";
    for name in ["first", "second"] {
        let (ok, _, stderr) = apply(cp, &va_yaml(ns, name, shared), &[]);
        assert!(ok, "before the webhook: {stderr}");
    }
    kubectl_ok(cp, &["label", "namespace", ns, &format!("{OPT_IN}=true")]);
    // The webhook applies from now on: a new duplicate is denied.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, _, stderr) = apply(cp, &va_yaml(ns, "third", shared), &["--dry-run=server"]);
        if !ok {
            assert!(stderr.contains("Duplicate value"), "{stderr}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook never applied to {ns}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let out = cp.kubectl(&["label", "variantautoscaling", "second", "-n", ns, "team=a"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a label-only update is allowed: {stderr}"
    );
    assert!(
        stderr.contains("Duplicate value") && stderr.contains("the object was already like this"),
        "the inherited violation is a warning: {stderr}"
    );

    let out = cp.kubectl(&[
        "patch",
        "variantautoscaling",
        "second",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"modelID":"a\nb"}}"#,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a new violation is denied");
    assert!(stderr.contains("spec.modelID: Invalid value"), "{stderr}");
    assert!(
        !stderr.contains("Duplicate value: Deployment/shared: Variant")
            || stderr.contains("spec.modelID"),
        "{stderr}"
    );

    let out = cp.kubectl(&[
        "delete",
        "variantautoscaling",
        "second",
        "-n",
        ns,
        "--cascade=foreground",
        "--timeout=30s",
    ]);
    assert!(
        out.status.success(),
        "foreground deletion completes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cp.kubectl(&["get", "variantautoscaling", "second", "-n", ns]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "gone"
    );
}
