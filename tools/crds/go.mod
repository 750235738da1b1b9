// Pinned sources of the third-party CRDs the chart renders objects of (KEDA's ScaledObject,
// prometheus-operator's ServiceMonitor), for the chart's server-side dry-run test. Only the
// modules' YAML is used: nothing is built. Fetched by scripts/ecosystem.sh crds.
module wva.local/tools/crds

go 1.26.0

require (
	github.com/kedacore/keda/v2 v2.21.0
	github.com/prometheus-operator/prometheus-operator v0.85.0
)
