//! CLI tier: the `wva` binary run as a process on the files in `tests/data/`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const WVA: &str = env!("CARGO_BIN_EXE_wva");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn wva(args: &[&str]) -> Output {
    Command::new(WVA)
        .args(args)
        .env_remove("SATURATION_CONFIG_MAP_NAME")
        .output()
        .expect("run wva")
}

fn data(path: &str) -> String {
    format!("{DATA}/{path}")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn analyze_prints_the_report_as_json() {
    let out = wva(&[
        "analyze",
        "--input",
        &data("snapshots/snapshot-scale-up.json"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["policy"], "wva-v0.5.0");
    assert_eq!(report["models"][0]["shouldScaleUp"], true);
    let decisions = report["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[1]["name"], "llama-8b-l40s");
    assert_eq!(decisions[1]["action"], "scale-up");
    assert_eq!(decisions[1]["targetReplicas"], 3);
    // Floats are printed with shortest round-trip precision.
    assert_eq!(
        report["models"][0]["avgSpareKvCapacity"],
        serde_json::json!(0.04500000000000004)
    );
}

/// `wva-next` is stateful: the report carries the state, the next snapshot feeds it back, and a
/// snapshot with its state replays the same decision every time.
#[test]
fn analyze_with_wva_next_carries_its_state_from_cycle_to_cycle() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/snapshot-wva-next.json"
    );
    let analyze = |input: &str| {
        let out = wva(&["analyze", "--policy", "wva-next", "--input", input]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = analyze(path);
    assert_eq!(first["policy"], "wva-next");
    assert_eq!(first["models"][0]["next"]["decidedBy"], "hold");
    let reason = first["decisions"][1]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "no change: demand ahead 17.42 req/s within 0.70–0.85 of capacity 23.00 req/s"
        ),
        "{reason}"
    );
    let state = &first["wvaNextState"];
    assert_eq!(
        state["models"]["prod/meta/llama-3.1-8b"]["samples"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        state["variants"]["prod/llama-8b-l40s"]["startups"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The next cycle, 30 s later, with the state fed back.
    let mut snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    snapshot["time"] = serde_json::json!(1764700030);
    snapshot["wvaNextState"] = state.clone();
    let next = std::env::temp_dir().join(format!("wva-cli-next-{}.json", std::process::id()));
    std::fs::write(&next, snapshot.to_string()).unwrap();
    let second = analyze(next.to_str().unwrap());
    let samples = &second["wvaNextState"]["models"]["prod/meta/llama-3.1-8b"]["samples"];
    assert_eq!(samples.as_array().unwrap().len(), 2, "{samples}");
    assert_eq!(
        second,
        analyze(next.to_str().unwrap()),
        "a replay decides the same"
    );
    std::fs::remove_file(next).unwrap();
}

#[test]
fn analyze_reads_standard_input() {
    let snapshot = std::fs::read(data("snapshots/snapshot-pending.json")).unwrap();
    let mut child = Command::new(WVA)
        .args(["analyze", "-o", "table"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&snapshot).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let table = stdout(&out);
    assert!(table.contains("pending-aware"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("llama-8b-a100") && l.contains("scale-up")),
        "{table}"
    );
}

#[test]
fn analyze_scale_down_and_scale_to_zero() {
    let out = wva(&["analyze", "-i", &data("snapshots/snapshot-scale-down.json")]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |n: &str| {
        report["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("llama-8b-a100")["action"], "scale-down");
    assert_eq!(by_name("granite-2b-t4")["targetReplicas"], 0);
    assert_eq!(report["models"][0]["scaleToZeroApplied"], true);
}

#[test]
fn invalid_snapshot_exits_2_with_paths_on_stderr_and_nothing_on_stdout() {
    let out = wva(&["analyze", "-i", &data("snapshots/invalid.json")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let lines: Vec<String> = stderr(&out).lines().map(String::from).collect();
    assert_eq!(
        lines,
        [
            "saturationConfig.default: kvCacheThreshold (0.50) should be >= kvSpareTrigger (0.60)",
            "variants[3].pods[0].kvCacheUsage: must be a number in [0, 1], got -0.2",
        ]
    );
}

#[test]
fn unreadable_input_exits_2() {
    let out = wva(&["analyze", "-i", &data("snapshots/truncated.json")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("$: not valid JSON"),
        "{}",
        stderr(&out)
    );
    let out = wva(&["analyze", "-i", &data("snapshots/no-such-file.json")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"));
}

#[test]
fn unknown_policy_is_rejected() {
    let out = wva(&[
        "analyze",
        "--policy",
        "magic",
        "-i",
        &data("snapshots/snapshot-scale-up.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown policy \"magic\"; known: wva-v0.5.0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_config_accepts_valid_config_maps() {
    let out = wva(&[
        "check-config",
        &data("configmaps/valid.yaml"),
        &data("configmaps/helm-prefixed.yaml"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("ok: ") && err.contains("saturation-scaling-config (saturation scaling)"),
        "{err}"
    );
    assert!(
        err.contains("skipped document 3: kind \"Service\""),
        "{err}"
    );
}

#[test]
fn check_config_lists_every_problem() {
    let out = wva(&["check-config", &data("configmaps/invalid.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(
        lines[0],
        "saturation-scaling-config/default: kvCacheThreshold (0.50) should be >= kvSpareTrigger (0.60)"
    );
    assert_eq!(
        lines[1],
        "saturation-scaling-config/no-model: model_id is required in an override entry (every key other than \"default\" overrides one model)"
    );
    assert_eq!(
        lines[2],
        "saturation-scaling-config/quoted: queueLengthThreshold must be a number, got \"5\""
    );
    assert!(
        lines[3].starts_with("model-scale-to-zero-config/broken: invalid YAML"),
        "{}",
        lines[3]
    );
    assert_eq!(
        lines[4],
        "model-scale-to-zero-config/default: retention_period: retention period must be positive, got -5m0s"
    );
}

#[test]
fn check_config_without_wva_config_maps_fails() {
    let out = wva(&["check-config", &data("configmaps/not-wva.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("no wva ConfigMap found"));
    // A custom saturation ConfigMap name is recognised.
    let out = Command::new(WVA)
        .args(["check-config", &data("configmaps/not-wva.yaml")])
        .env("SATURATION_CONFIG_MAP_NAME", "something-else")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "recognised, but has no default entry"
    );
    assert!(
        stdout(&out).contains("something-else/default: required entry is missing"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn crd_prints_the_committed_crd() {
    let out = wva(&["crd"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/llmd.ai_variantautoscalings.yaml"
    ))
    .unwrap();
    assert_eq!(stdout(&out), committed);
}

#[test]
fn version_names_the_policy() {
    let out = wva(&["version"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("wva ") && stdout(&out).contains("wva-v0.5.0"));
}

#[test]
fn every_scenario_snapshot_is_valid() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("snapshot-")
        {
            let out = wva(&["analyze", "-i", path.to_str().unwrap()]);
            assert!(out.status.success(), "{}: {}", path.display(), stderr(&out));
        }
    }
}

#[test]
fn simulate_runs_the_built_in_scenario_and_writes_chart_and_timeline() {
    let out_dir = std::env::temp_dir().join(format!("wva-cli-simulate-{}", std::process::id()));
    let out = wva(&["simulate", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("scenario: default (changelog story)   seed: 42"),
        "{text}"
    );
    for policy in wva::sim::POLICIES {
        assert!(
            text.lines().any(|l| l.starts_with(policy)),
            "{policy} missing: {text}"
        );
    }
    let svg = std::fs::read_to_string(out_dir.join("wva-simulation.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("keda-prodstack"));
    let csv = std::fs::read_to_string(out_dir.join("wva-simulation.csv")).unwrap();
    assert!(csv.starts_with("time_s,policy,variant,"));
    let _ = std::fs::remove_dir_all(&out_dir);
    // Same seed, same result.
    let again = wva(&["simulate", "--no-files"]);
    assert_eq!(
        stdout(&again),
        text.split("\nchart:").next().unwrap().to_owned() + ""
    );
}

#[test]
fn simulate_prints_the_summary_as_json_with_the_fixed_field_names() {
    let out = wva(&["simulate", "--output", "json", "--no-files"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["scenario"], "default (changelog story)");
    assert_eq!(doc["seed"], 42);
    let policies = doc["policies"].as_array().unwrap();
    assert_eq!(policies.len(), wva::sim::POLICIES.len());
    for p in policies {
        for field in [
            "policy",
            "sloAttainment",
            "goodputRps",
            "ttftP50Seconds",
            "ttftP99Seconds",
            "failedRequests",
            "gpuHours",
            "cost",
            "costRatioToOracle",
            "wasteGpuHours",
            "avgReplicas",
            "maxReplicas",
            "underCapacityMinutes",
            "stuckGpuHours",
            "actions",
            "flaps",
        ] {
            assert!(p.get(field).is_some(), "{field} missing in {p}");
        }
    }
    let oracle = policies.iter().find(|p| p["policy"] == "oracle").unwrap();
    assert_eq!(oracle["costRatioToOracle"], 1.0);
    assert_eq!(oracle["wasteGpuHours"], 0.0);
    let attainment: Vec<f64> = policies
        .iter()
        .map(|p| p["sloAttainment"].as_f64().unwrap())
        .collect();
    assert!(
        attainment.windows(2).all(|w| w[0] >= w[1]),
        "{attainment:?}"
    );
    // Only a policy subset: the oracle's row still comes along.
    let out = wva(&[
        "simulate",
        "--output",
        "json",
        "--no-files",
        "--policies",
        "keda-kv",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = doc["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"keda-kv") && names.contains(&"oracle"));
}

#[test]
fn simulate_frontier_sweeps_each_knob_and_marks_the_pareto_front() {
    let out = wva(&[
        "simulate",
        "--frontier",
        "--policies",
        "keda-prodstack,keda-kv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("PARETO") && text.contains(" * "), "{text}");
    let out = wva(&[
        "simulate",
        "--frontier",
        "--output",
        "json",
        "--policies",
        "keda-prodstack",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let knobs: Vec<f64> = doc["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["policy"] == "keda-prodstack")
        .map(|p| p["knob"].as_f64().unwrap())
        .collect();
    assert_eq!(knobs.len(), 4, "{doc}");
    for k in [1.0, 2.0, 5.0, 10.0] {
        assert!(knobs.contains(&k), "{knobs:?}");
    }
}

#[test]
fn simulate_judge_prints_each_check_and_fails_when_one_does() {
    let out = wva(&["simulate", "--judge", "keda-prodstack"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL  SLO attainment >= 99 % at <= 1.2× the oracle's cost: 40.0 %"),
        "{text}"
    );
    let out = wva(&["simulate", "--judge", "oracle", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["passed"], true);
    assert_eq!(doc["checks"].as_array().unwrap().len(), 4);
    let out = wva(&["simulate", "--judge", "magic"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--judge: unknown policy \"magic\""));
    let out = wva(&["simulate", "--judge", "oracle", "--frontier"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn simulate_rejects_bad_scenarios_naming_the_field() {
    let out = wva(&["simulate", &data("scenarios/invalid.yaml"), "--no-files"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("invalid.yaml: models[0].variants[0].capacityRps: must be a number above 0"),
        "{err}"
    );
    assert!(
        err.contains("invalid.yaml: faults.neverReady[0]: no variant named \"ghost\""),
        "{err}"
    );
    let out = wva(&["simulate", "--policies", "magic", "--no-files"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown policy \"magic\""));
}

#[test]
fn every_shipped_scenario_simulates() {
    for name in [
        "default.yaml",
        "large-hpa.yaml",
        "stuck-pod.yaml",
        "llmd-benchmark.yaml",
        "trace.yaml",
        "burst.yaml",
        "diurnal.yaml",
        "multi-variant.yaml",
    ] {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/").to_owned() + name;
        let out = wva(&["simulate", &path, "--no-files"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
}

#[test]
fn run_without_a_cluster_fails_naming_the_ways_to_give_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_wva"))
        .arg("run")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wva run needs a cluster: pass --kubeconfig, set KUBECONFIG"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_refuses_unknown_actuation_and_bad_leader_election_timing() {
    let out = wva(&["run", "--actuation", "hpa"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown actuation \"hpa\"; known: metrics, direct"),
        "{}",
        stderr(&out)
    );
    let out = wva(&[
        "run",
        "--leader-elect",
        "--leader-election-renew-deadline",
        "60s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--leader-election-lease-duration (60s) must be longer than --leader-election-renew-deadline (60s)"),
        "{}",
        stderr(&out)
    );
    let out = wva(&["run", "--leader-election-retry-period", "ten"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a Go duration"),
        "{}",
        stderr(&out)
    );
    let out = wva(&["run", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/kubeconfig"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_refuses_a_node_selector_the_api_server_would_refuse() {
    let out = Command::new(env!("CARGO_BIN_EXE_wva"))
        .args(["run", "--kubeconfig", "/nonexistent/kubeconfig"])
        .env("WVA_NODE_SELECTOR", "pool=gpu,zone in (a")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid WVA_NODE_SELECTOR \"pool=gpu,zone in (a\": unbalanced '('"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_refuses_an_unknown_pool_group_naming_both() {
    let out = Command::new(env!("CARGO_BIN_EXE_wva"))
        .args(["run", "--kubeconfig", "/nonexistent/kubeconfig"])
        .env("POOL_GROUP", "gateway.networking.k8s.io")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid POOL_GROUP \"gateway.networking.k8s.io\": must be either 'inference.networking.k8s.io' or 'inference.networking.x-k8s.io'"),
        "{}",
        stderr(&out)
    );
}
