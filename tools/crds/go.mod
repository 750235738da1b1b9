// Pinned sources of the third-party CRDs the tests install: the ones the chart renders objects of
// (KEDA's ScaledObject, prometheus-operator's ServiceMonitor) for its server-side dry-run test,
// and the Gateway API Inference Extension's InferencePool (both groups) for scale-from-zero. Only
// the modules' YAML is used: nothing is built. Fetched by scripts/ecosystem.sh crds.
module wva.local/tools/crds

go 1.26.0

require (
	github.com/kedacore/keda/v2 v2.21.0
	github.com/prometheus-operator/prometheus-operator v0.85.0
	sigs.k8s.io/gateway-api-inference-extension v1.1.0
)
