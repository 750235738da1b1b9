//! Chart tier: the Helm chart (`charts/wva`) with the real helm, the real API server and the real
//! cert-manager, built by `make tools`. Lint; the plain manifests and the CRD copy are renderings
//! of their one source; every values set renders objects the API server accepts
//! (`kubectl apply --dry-run=server`, which catches what `helm --validate` misses); bad values
//! are refused naming the value; and a whole install: cert-manager issues the webhook
//! certificate and injects its CA, the API server calls `wva run` (started with the chart's own
//! arguments, environment and ServiceAccount token), a renewal is picked up with no failed
//! admission, the scenario scales with no 403, and `helm uninstall` leaves only what
//! docs/install.md says it leaves.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};

use support::control_plane::{ControlPlane, control_plane_with_autoscaling, wait_for};
use support::controller::{Run, Scene};
use support::ecosystem::{
    CHART, PrometheusAdapter, cert_manager, ecosystem_dir, first_der, helm_ok, metrics_path_scene,
    render, served_certificate, write_secret_volume,
};
use support::process::free_port;

const T: Duration = Duration::from_secs(60);

/// The `kind`s of a rendered stream, in order.
fn kinds(rendered: &str) -> Vec<String> {
    rendered
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .map(str::to_owned)
        .collect()
}

/// Installs the CRDs of every kind the chart can render (once per binary).
fn install_crds(cp: &ControlPlane) {
    cp.install_crd();
    cert_manager();
    let crds = ecosystem_dir("crds");
    for file in [
        "keda.sh_scaledobjects.yaml",
        "monitoring.coreos.com_servicemonitors.yaml",
    ] {
        cp.kubectl_ok(&[
            "apply",
            "--server-side",
            "-f",
            crds.join(file).to_str().unwrap(),
        ]);
    }
    cp.wait_established("scaledobjects.keda.sh");
    cp.wait_established("servicemonitors.monitoring.coreos.com");
}

#[test]
fn the_chart_lints_strictly_and_is_the_one_source_of_the_plain_manifests() {
    let cp = control_plane_with_autoscaling();
    let out = helm_ok(
        cp,
        &[
            "lint",
            "--strict",
            CHART,
            "--kube-version",
            support::ecosystem::KUBE_VERSION,
        ],
    );
    assert!(out.contains("0 chart(s) failed"), "{out}");

    let status = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/manifests.sh"))
        .arg("--check")
        .env("HELM", ecosystem_dir("helm").join("helm"))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "the plain manifests are not the chart's rendering:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );

    let root = env!("CARGO_MANIFEST_DIR");
    let crd = std::fs::read(format!("{root}/crds/llmd.ai_variantautoscalings.yaml")).unwrap();
    let copy = std::fs::read(format!(
        "{root}/charts/wva/crds/llmd.ai_variantautoscalings.yaml"
    ))
    .unwrap();
    assert!(
        crd == copy,
        "charts/wva/crds/ differs from crds/: run `make crd`"
    );
}

#[test]
fn the_dockerfile_builds_from_paths_that_exist() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/Dockerfile")).unwrap();
    let mut copied = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from=") {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            assert!(
                std::path::Path::new(root).join(source).exists(),
                "Dockerfile copies {source}, which does not exist"
            );
            copied += 1;
        }
    }
    assert!(copied >= 4, "{copied} sources");
    assert!(
        text.contains("RUN cargo build --release --locked"),
        "the build stage runs cargo build --release"
    );
    assert!(text.contains("USER 65532:65532") && text.contains("distroless/static"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_values_set_renders_objects_the_api_server_accepts() {
    let cp = control_plane_with_autoscaling();
    install_crds(cp);
    let admin = cp.admin_client().await;
    let release_ns = cp.fresh_namespace(&admin, "chart-dry").await;
    let workloads = cp.fresh_namespace(&admin, "chart-dry-models").await;
    let ca = base64_of(&cp.ca.cert_pem());
    let variant = |prefix: &str| {
        vec![
            format!("{prefix}.enabled=true"),
            format!("{prefix}.variants[0].name=llama-a100"),
            format!("{prefix}.variants[0].namespace={workloads}"),
            format!("{prefix}.variants[1].name=llama-h100"),
            format!("{prefix}.variants[1].namespace={workloads}"),
        ]
    };
    let sets: Vec<(&str, Vec<String>)> = vec![
        ("defaults", vec![]),
        (
            "cert-manager off",
            vec![
                "certManager.enabled=false".into(),
                "webhook.existingSecret=my-tls".into(),
                format!("webhook.caBundle={ca}"),
            ],
        ),
        ("hpa", variant("hpa")),
        ("keda", variant("keda")),
        (
            "watch namespace, direct, instance",
            vec![
                format!("watchNamespace={workloads}"),
                "actuation=direct".into(),
                "controllerInstance=blue".into(),
                "hpa.enabled=true".into(),
                "hpa.variants[0].name=llama-a100".into(),
                format!("hpa.variants[0].namespace={workloads}"),
            ],
        ),
        (
            "prometheus TLS, token, monitor, overrides",
            vec![
                "prometheus.ca.secretName=prom-ca".into(),
                "prometheus.clientCertSecretName=prom-client".into(),
                "prometheus.bearerToken.secretName=prom-token".into(),
                "prometheus.serverName=prometheus.monitoring.svc".into(),
                "metrics.serviceMonitor.enabled=true".into(),
                r#"--set-json=saturation.overrides.granite={"model_id":"ibm/granite-13b","kvCacheThreshold":0.7}"#.into(),
                "scaleToZeroConfig.overrides.granite.model_id=ibm/granite-13b".into(),
                "scaleToZeroConfig.overrides.granite.enable_scale_to_zero=true".into(),
                "scaleToZero=true".into(),
                "leaderElection.enabled=false".into(),
                "replicaCount=1".into(),
                "podDisruptionBudget.enabled=false".into(),
            ],
        ),
        ("webhook off", vec!["webhook.enabled=false".into()]),
        (
            "wva-next",
            vec![
                "policy=wva-next".into(),
                "actuation=direct".into(),
                r#"--set-json=saturation.default.capacityRps={"H100":5,"NVIDIA-L40S":2.5}"#.into(),
                "saturation.default.scaleDownDelay=10m".into(),
                r#"--set-json=saturation.overrides.granite={"model_id":"ibm/granite-13b","targetUtilisation":0.75}"#.into(),
            ],
        ),
    ];
    for (i, (name, values)) in sets.iter().enumerate() {
        let release = format!("dry{i}");
        let mut args: Vec<&str> = Vec::new();
        for v in values {
            if !v.starts_with("--") {
                args.push("--set");
            }
            args.push(v.as_str());
        }
        let rendered = render(cp, &release, &release_ns, &args)
            .unwrap_or_else(|e| panic!("values set {name:?} does not render:\n{e}"));
        let out = cp.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &rendered);
        assert!(
            out.status.success(),
            "values set {name:?}: the API server refuses the rendering:\n{}\n--- rendered ---\n{rendered}",
            String::from_utf8_lossy(&out.stderr)
        );
        let accepted = String::from_utf8_lossy(&out.stdout).lines().count();
        assert_eq!(
            accepted,
            kinds(&rendered).len(),
            "values set {name:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let kinds = kinds(&rendered);
        match *name {
            "defaults" => {
                for kind in [
                    "Deployment",
                    "ServiceAccount",
                    "ClusterRole",
                    "ClusterRoleBinding",
                    "Role",
                    "RoleBinding",
                    "Service",
                    "PodDisruptionBudget",
                    "ConfigMap",
                    "Issuer",
                    "Certificate",
                    "MutatingWebhookConfiguration",
                    "ValidatingWebhookConfiguration",
                    "Lease",
                ] {
                    assert!(
                        kinds.iter().any(|k| k == kind),
                        "defaults render no {kind}: {kinds:?}"
                    );
                }
                assert_eq!(kinds.iter().filter(|k| *k == "ConfigMap").count(), 3);
            }
            "cert-manager off" => {
                assert!(
                    !kinds.iter().any(|k| k == "Certificate" || k == "Issuer"),
                    "{kinds:?}"
                );
                assert!(rendered.contains(&format!("caBundle: {ca}")));
                assert!(!rendered.contains("inject-ca-from"));
            }
            "hpa" => assert_eq!(
                kinds
                    .iter()
                    .filter(|k| *k == "HorizontalPodAutoscaler")
                    .count(),
                2
            ),
            "keda" => assert_eq!(kinds.iter().filter(|k| *k == "ScaledObject").count(), 2),
            "watch namespace, direct, instance" => {
                assert!(!kinds.iter().any(|k| k == "ClusterRole"), "{kinds:?}");
                assert!(rendered.contains(&format!("--watch-namespace={workloads}")));
                assert!(rendered.contains("controller_instance: \"blue\""));
            }
            "wva-next" => {
                assert!(rendered.contains("--policy=wva-next"));
                // wva itself reads the rendered ConfigMaps as it would in the cluster.
                let file = std::env::temp_dir()
                    .join(format!("wva-chart-next-{}.yaml", std::process::id()));
                std::fs::write(&file, &rendered).unwrap();
                let out = Command::new(env!("CARGO_BIN_EXE_wva"))
                    .arg("check-config")
                    .arg(&file)
                    .output()
                    .unwrap();
                let _ = std::fs::remove_file(&file);
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success(), "{text}\n--- rendered ---\n{rendered}");
                assert!(
                    rendered.contains(r#"capacityRps: {"H100":5,"NVIDIA-L40S":2.5}"#),
                    "{rendered}"
                );
            }
            "webhook off" => assert!(
                !kinds
                    .iter()
                    .any(|k| k.ends_with("WebhookConfiguration") || k == "Certificate"),
                "{kinds:?}"
            ),
            _ => {}
        }
    }
}

/// The upstream HPA contract: one External metric `wva_desired_replicas` selected by
/// `variant_name` and `exported_namespace`, target `AverageValue` 1.
#[test]
fn the_hpa_and_scaled_object_read_wva_desired_replicas_as_upstream() {
    let cp = control_plane_with_autoscaling();
    let rendered = render(
        cp,
        "wva",
        "wva-system",
        &[
            "--set",
            "hpa.enabled=true",
            "--set",
            "hpa.variants[0].name=llama-a100",
            "--set",
            "hpa.variants[0].namespace=models",
            "--set",
            "keda.enabled=true",
            "--set",
            "keda.variants[0].name=llama-a100",
            "--set",
            "keda.variants[0].namespace=models",
        ],
    )
    .unwrap();
    let docs: Vec<Value> = rendered
        .split("\n---\n")
        .filter_map(|d| serde_yaml_ng::from_str::<Value>(d).ok())
        .filter(|d| !d.is_null())
        .collect();
    let hpa = docs
        .iter()
        .find(|d| d["kind"] == "HorizontalPodAutoscaler")
        .unwrap();
    assert_eq!(
        hpa["spec"]["metrics"][0],
        json!({"type": "External", "external": {
            "metric": {"name": "wva_desired_replicas",
                       "selector": {"matchLabels": {"variant_name": "llama-a100", "exported_namespace": "models"}}},
            "target": {"type": "AverageValue", "averageValue": "1"}}})
    );
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "llama-a100");
    assert_eq!(
        hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"],
        240
    );
    let scaled = docs.iter().find(|d| d["kind"] == "ScaledObject").unwrap();
    assert_eq!(
        scaled["spec"]["triggers"][0],
        json!({"type": "prometheus", "metricType": "AverageValue", "metadata": {
            "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
            "query": "wva_desired_replicas{variant_name=\"llama-a100\",exported_namespace=\"models\"}",
            "threshold": "1", "activationThreshold": "0"}})
    );
}

#[test]
fn bad_values_are_refused_naming_the_value() {
    let cp = control_plane_with_autoscaling();
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "replicaCount=two"], "replicaCount"),
        (&["--set-string", "resources.limits.memory=lots"], "memory"),
        (&["--set", "actuation=sideways"], "actuation"),
        (&["--set", "reconcileInterval=soon"], "reconcileInterval"),
        (&["--set", "webhook.timeoutSeconds=30"], "timeoutSeconds"),
        (
            &["--set", "saturation.default.kvCacheThreshold=1.5"],
            "kvCacheThreshold",
        ),
        (
            &["--set", "saturation.overrides.x.kvCacheThreshold=0.5"],
            "model_id",
        ),
        (&["--set", "replicas=2"], "replicas"),
        (&["--set", "policy=wva-nxt"], "policy"),
        (
            &["--set", "saturation.default.capacityRps.H100=0"],
            "capacityRps",
        ),
        (
            &["--set", "saturation.default.scaleDownDelay=5 minutes"],
            "scaleDownDelay",
        ),
        (
            &[
                "--set",
                "certManager.enabled=false",
                "--set",
                "webhook.caBundle=Zm9v",
            ],
            "webhook.existingSecret is required",
        ),
        (
            &[
                "--set",
                "certManager.enabled=false",
                "--set",
                "webhook.existingSecret=tls",
            ],
            "webhook.caBundle is required",
        ),
        (
            &[
                "--set",
                "prometheus.ca.secretName=a",
                "--set",
                "prometheus.ca.configMapName=b",
            ],
            "not both",
        ),
    ];
    for (args, named) in cases {
        let err = render(cp, "wva", "wva-system", args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} rendered"));
        assert!(
            err.contains(named),
            "{args:?}: the error does not name {named:?}:\n{err}"
        );
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The chart's `wva run` container as the API server stores it: its arguments (the ones the
/// test process sets itself left out) and its environment (fieldRefs resolved as a kubelet
/// would).
async fn chart_container(
    cp: &ControlPlane,
    ns: &str,
    release: &str,
) -> (Vec<String>, Vec<(String, String)>) {
    let admin = cp.admin_client().await;
    let deployment = Api::<Deployment>::namespaced(admin, ns)
        .get(&format!("{release}-controller-manager"))
        .await
        .unwrap();
    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
    let args = container
        .args
        .clone()
        .unwrap()
        .into_iter()
        .filter(|a| {
            !(a == "run"
                || a.starts_with("--actuation=")
                || a.starts_with("--health-probe-bind-address=")
                || a.starts_with("--metrics-bind-address="))
        })
        .collect();
    let env = container
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| {
            let value = match e.value_from.and_then(|v| v.field_ref).map(|f| f.field_path) {
                Some(path) if path == "metadata.namespace" => ns.to_owned(),
                Some(path) if path == "metadata.name" => format!("{release}-controller-manager-0"),
                Some(path) => panic!("unexpected fieldRef {path}"),
                None => e.value.unwrap_or_default(),
            };
            (e.name, value)
        })
        .collect();
    (args, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_install_with_cert_manager_serves_admissions_follows_renewal_and_scales_without_a_403()
{
    control_plane_with_autoscaling();
    let scene = Scene::new("chart-install", "1s").await;
    let cp = scene.cp;
    install_crds(cp);
    let release = scene.sys.clone();
    let port = free_port();
    let prometheus = scene.prometheus.http_url();
    let installed = std::time::Instant::now();
    helm_ok(
        cp,
        &[
            "install",
            &release,
            CHART,
            "--namespace",
            &scene.sys,
            "--set",
            &format!("webhook.port={port}"),
            "--set",
            "actuation=direct",
            "--set",
            "reconcileInterval=1s",
            "--set",
            &format!("prometheus.baseURL={prometheus}"),
            "--set",
            "prometheus.allowHTTP=true",
            "--set",
            "logLevel=info",
        ],
    );
    let client = scene.client.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &scene.sys);
    let secret_name = format!("{release}-webhook-server-cert");
    let secret = wait_for(T, "cert-manager to issue the serving Secret", || async {
        secrets
            .get_opt(&secret_name)
            .await
            .ok()
            .flatten()
            .filter(|s| s.data.as_ref().is_some_and(|d| d.contains_key("tls.crt")))
    })
    .await;
    for kind in [
        "validatingwebhookconfiguration",
        "mutatingwebhookconfiguration",
    ] {
        let name = if kind.starts_with("validating") {
            "validating"
        } else {
            "mutating"
        };
        let object = format!("{kind}/{release}-{name}-webhook");
        wait_for(T, &format!("the CA injected into {object}"), || async {
            let out = cp.kubectl(&[
                "get",
                &object,
                "-o",
                "jsonpath={.webhooks[*].clientConfig.caBundle}",
            ]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (out.status.success() && text.split(' ').all(|b| b.len() > 100)).then_some(())
        })
        .await;
    }
    eprintln!(
        "helm install to Secret issued and CA injected into both configurations: {:.1}s",
        installed.elapsed().as_secs_f64()
    );
    let data = secret.data.unwrap();
    let ca_pem = String::from_utf8(data["ca.crt"].0.clone()).unwrap();

    // The API server reaches the local process through the chart's Service name: an
    // ExternalName Service to localhost (no kubelet, no pod network here).
    let service = format!("{release}-webhook-service");
    cp.kubectl_ok(&["-n", &scene.sys, "delete", "service", &service]);
    cp.kubectl_stdin_ok(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": service, "namespace": scene.sys},
                "spec": {"type": "ExternalName", "externalName": "localhost",
                         "ports": [{"name": "webhook", "port": port}]}})
        .to_string(),
    );

    // `wva run` with the chart's arguments, environment and ServiceAccount token; the Secret
    // volume as the kubelet keeps it.
    let volume = cp.dir.join(format!("{release}-tls"));
    let files = |d: &std::collections::BTreeMap<String, k8s_openapi::ByteString>| {
        vec![
            ("tls.crt".to_owned(), d["tls.crt"].0.clone()),
            ("tls.key".to_owned(), d["tls.key"].0.clone()),
        ]
    };
    let write = |files: &[(String, Vec<u8>)]| {
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        write_secret_volume(&volume, &refs);
    };
    write(&files(&data));
    let (args, env) = chart_container(cp, &scene.sys, &release).await;
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.replace("=/tls/", &format!("={}/", volume.display()))
                .replace("--webhook-listen=:", "--webhook-listen=127.0.0.1:")
        })
        .map(|a| {
            if a.starts_with("--webhook-listen=") {
                format!("--webhook-listen=127.0.0.1:{port}")
            } else {
                a
            }
        })
        .collect();
    assert!(args.iter().any(|a| a == "--leader-elect"), "{args:?}");
    let kubeconfig = cp
        .service_account_kubeconfig(
            &cp.admin_client().await,
            &scene.sys,
            &format!("{release}-controller-manager"),
        )
        .await;
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut wva = scene.wva_with(
        "direct",
        &arg_refs,
        &Run {
            kubeconfig: Some(kubeconfig),
            env,
            all_namespaces: true,
        },
    );
    assert!(wva.admission.starts_with("https://"), "{}", wva.admission);
    let server_name = format!("{service}.{}.svc", scene.sys);
    let first = first_der(std::str::from_utf8(&data["tls.crt"].0).unwrap());
    assert_eq!(
        served_certificate(port, &ca_pem, &server_name),
        Some(first.clone())
    );

    // Admissions through the API server: a minimal VA is defaulted, an invalid one is denied.
    scene.variant("llama", 1, "10").await;
    let stored = scene.va_object("llama").await;
    assert_eq!(
        stored.data["spec"]["scaleTargetRef"]["apiVersion"], "apps/v1",
        "{:?}",
        stored.data
    );
    let invalid = json!({"apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
                         "metadata": {"name": "broken", "namespace": scene.ns}});
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], &invalid.to_string());
    let denied = String::from_utf8_lossy(&out.stderr).into_owned();
    // The CRD schema passes a VA without spec: this refusal is the webhook's.
    assert!(
        !out.status.success()
            && denied
                .contains("spec: Required value: a VariantAutoscaling needs spec.scaleTargetRef"),
        "{denied}"
    );

    // A whole scaling step as the chart's ServiceAccount.
    scene.wait_reported(1).await;
    scene.load("llama", 1.7);
    scene.wait_spec_replicas("llama", 2, T).await;

    // Renewal under a steady stream of reviews (server-side dry-run creates through the API
    // server, every 50 ms): no review fails, and the new certificate is served.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stream = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        let ns = scene.ns.clone();
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let va = json!({"apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
                                "metadata": {"name": "probe", "namespace": ns,
                                             "labels": {"inference.optimization/acceleratorName": "A100"}},
                                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "probe-target"},
                                         "modelID": "meta/llama-3.1-8b", "variantCost": "10"}});
                let out =
                    cp.kubectl_stdin(&["create", "--dry-run=server", "-f", "-"], &va.to_string());
                sent.fetch_add(1, Ordering::SeqCst);
                if !out.status.success() {
                    failed.fetch_add(1, Ordering::SeqCst);
                    errors.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            errors
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    // What `cmctl renew` does: the Issuing condition, through the status subresource.
    let certificate = format!("{release}-webhook-serving-cert");
    let patch = json!({"status": {"conditions": [{"type": "Issuing", "status": "True",
        "reason": "ManuallyTriggered", "message": "Certificate re-issuance manually triggered",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    cp.kubectl_ok(&[
        "-n",
        &scene.sys,
        "patch",
        "certificate",
        &certificate,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
    let renewal = std::time::Instant::now();
    let renewed = wait_for(T, "cert-manager to renew the serving Secret", || async {
        let s = secrets.get(&secret_name).await.ok()?;
        let d = s.data?;
        (first_der(std::str::from_utf8(&d["tls.crt"].0).ok()?) != first).then_some(d)
    })
    .await;
    eprintln!(
        "renewal: new Secret {:.1}s after the request",
        renewal.elapsed().as_secs_f64()
    );
    let swapped = std::time::Instant::now();
    write(&files(&renewed));
    let second = first_der(std::str::from_utf8(&renewed["tls.crt"].0).unwrap());
    wait_for(
        Duration::from_secs(20),
        "wva to serve the renewed certificate",
        || async {
            (served_certificate(port, &ca_pem, &server_name) == Some(second.clone())).then_some(())
        },
    )
    .await;
    eprintln!(
        "renewal: served by wva {:.1}s after the volume swap",
        swapped.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let errors = stream.join().unwrap();
    let (sent, failed) = (sent.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert!(sent >= 10, "only {sent} reviews were sent");
    eprintln!("renewal: {sent} reviews through the API server, {failed} failed");
    assert_eq!(
        failed,
        0,
        "{failed} of {sent} reviews failed across the renewal: {:?}",
        &errors[..errors.len().min(3)]
    );

    let user = format!(
        "system:serviceaccount:{}:{release}-controller-manager",
        scene.sys
    );
    let requests = cp.audited_requests_of(&user);
    assert!(
        requests.iter().any(|r| r.subresource == "scale"),
        "{requests:?}"
    );
    let refused: Vec<_> = requests.iter().filter(|r| r.code == 403).collect();
    assert!(
        refused.is_empty(),
        "the chart's ServiceAccount was refused: {refused:?}"
    );
    assert!(wva.terminate().success(), "{}", wva.log_text());

    // Uninstall: nothing of the release remains but the CRD and what docs/install.md names.
    helm_ok(
        cp,
        &[
            "uninstall",
            &release,
            "--namespace",
            &scene.sys,
            "--wait",
            "--timeout",
            "60s",
        ],
    );
    let selector = format!("app.kubernetes.io/instance={release}");
    wait_for(T, "helm uninstall to remove the release's objects", || async {
        let out = cp.kubectl_ok(&[
            "get", "-A", "-l", &selector, "-o", "name",
            "deployments,services,configmaps,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,poddisruptionbudgets,leases,certificates,issuers,validatingwebhookconfigurations,mutatingwebhookconfigurations",
        ]);
        out.trim().is_empty().then_some(())
    })
    .await;
    let left = cp.kubectl_ok(&["-n", &scene.sys, "get", "secrets,leases", "-o", "name"]);
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(
        left,
        [
            format!("secret/{release}-webhook-ca"),
            format!("secret/{release}-webhook-server-cert"),
        ],
        "docs/install.md#uninstall names what stays"
    );
    cp.kubectl_ok(&["get", "crd", "variantautoscalings.llmd.ai"]);
}

/// docs/configuration.md names every chart value, every `wva run` flag and every environment
/// variable the command layer reads (the Prometheus ones in docs/prometheus.md).
#[test]
fn the_configuration_reference_is_complete() {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/configuration.md")).unwrap();
    let mut missing = Vec::new();

    fn leaves(value: &Value, path: String, out: &mut Vec<String>) {
        match value.as_object() {
            Some(map) if !map.is_empty() => {
                for (k, v) in map {
                    let next = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    leaves(v, next, out);
                }
            }
            _ => out.push(path),
        }
    }
    let values: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(format!("{CHART}/values.yaml")).unwrap())
            .unwrap();
    let mut keys = Vec::new();
    leaves(&values, String::new(), &mut keys);
    assert!(keys.len() > 50, "{keys:?}");
    for key in keys {
        let parts: Vec<&str> = key.split('.').collect();
        let covered = doc.contains(&format!("| `{key}` |"))
            || (1..parts.len()).any(|n| doc.contains(&format!("| `{}.*` |", parts[..n].join("."))));
        if !covered {
            missing.push(format!("chart value {key}"));
        }
    }

    let help = Command::new(env!("CARGO_BIN_EXE_wva"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: std::collections::BTreeSet<&str> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 3 && !["--help", "--version"].contains(w))
        .collect();
    assert!(flags.len() >= 15, "{flags:?}");
    for flag in flags {
        if !doc.contains(&format!("`{flag}")) {
            missing.push(format!("flag {flag}"));
        }
    }

    let prometheus_doc = std::fs::read_to_string(format!("{root}/docs/prometheus.md")).unwrap();
    let mut variables = std::collections::BTreeSet::new();
    for dir in ["src/cmd", "src/config"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap();
            for (i, _) in text.match_indices('"') {
                let word: String = text[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                let closed = text[i + 1 + word.len()..].starts_with('"');
                let lookup = text[..i].ends_with("lookup(")
                    || text[..i].ends_with("env = ")
                    || word.starts_with("PROMETHEUS_");
                if closed && word.len() > 3 && word.contains('_') && lookup {
                    variables.insert(word);
                }
            }
        }
    }
    assert!(variables.len() >= 12, "{variables:?}");
    for variable in variables {
        let documented = if variable.starts_with("PROMETHEUS_") {
            prometheus_doc.contains(&format!("`{variable}`"))
        } else {
            doc.contains(&format!("| `{variable}` |"))
        };
        if !documented {
            missing.push(format!("environment variable {variable}"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md (or prometheus.md) lacks: {missing:#?}"
    );
}

/// The drop-in path: wva publishes `wva_desired_replicas`, Prometheus scrapes wva as a pod of its
/// namespace (so the label becomes `exported_namespace`), prometheus-adapter serves it with
/// upstream's rule, and the chart's HPA (upstream's metric, selector and target) moves the
/// Deployment — kube-controller-manager's HPA controller, not wva, writes `/scale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hpa_path_scales_through_prometheus_adapter_with_upstreams_rule() {
    let cp = control_plane_with_autoscaling();
    let (scene, wva, prometheus) = metrics_path_scene("chart-hpa").await;
    let started = std::time::Instant::now();
    let _adapter = PrometheusAdapter::start(cp, &prometheus.http_url());
    eprintln!(
        "prometheus-adapter Available in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // The chart's HPA; only its behaviour is shortened for the test (upstream's waits 240 s).
    let hpa = render(
        cp,
        "wva",
        &scene.sys,
        &[
            "--show-only",
            "templates/autoscalers.yaml",
            "--set",
            "hpa.enabled=true",
            "--set",
            "hpa.variants[0].name=llama",
            "--set",
            &format!("hpa.variants[0].namespace={}", scene.ns),
            "--set-json",
            r#"hpa.behavior={"scaleUp":{"stabilizationWindowSeconds":0,"policies":[{"type":"Pods","value":4,"periodSeconds":1}]},"scaleDown":{"stabilizationWindowSeconds":0,"policies":[{"type":"Pods","value":4,"periodSeconds":1}]}}"#,
        ],
    )
    .unwrap();
    cp.kubectl_stdin_ok(&["apply", "-f", "-"], &hpa);
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{}/wva_desired_replicas",
        scene.ns
    );
    wait_for(
        T,
        "the adapter to serve wva_desired_replicas = 1",
        || async {
            let out = cp.kubectl(&["get", "--raw", &path]);
            String::from_utf8_lossy(&out.stdout)
                .contains(r#""value":"1""#)
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "adapter serving wva_desired_replicas {:.1}s after start",
        started.elapsed().as_secs_f64()
    );

    // One saturated replica (KV 1.0): wva wants 2; at 0.6 each two replicas are enough.
    let started = std::time::Instant::now();
    scene.load("llama", 1.2);
    scene
        .wait_spec_replicas("llama", 2, Duration::from_secs(90))
        .await;
    eprintln!(
        "HPA path: load to spec.replicas 2 in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let raw = cp.kubectl_ok(&["get", "--raw", &path]);
    assert!(raw.contains(r#""value":"2""#), "{raw}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        scene.spec_replicas("llama").await,
        2,
        "the HPA holds what wva publishes"
    );
    let hpa_status = cp.kubectl_ok(&[
        "-n",
        &scene.ns,
        "get",
        "hpa",
        "llama",
        "-o",
        "jsonpath={.status.currentMetrics[0].external.current.averageValue}",
    ]);
    assert_eq!(hpa_status.trim(), "1", "2 desired over 2 replicas");
    assert_eq!(
        wva.sample("wva_scale_writes_total").unwrap_or(0.0),
        0.0,
        "metrics mode: wva writes no /scale"
    );

    // Back down: the load gone, wva publishes 1 and the HPA follows.
    let started = std::time::Instant::now();
    scene.load("llama", 0.1);
    scene
        .wait_spec_replicas("llama", 1, Duration::from_secs(90))
        .await;
    eprintln!(
        "HPA path: idle to spec.replicas 1 in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
