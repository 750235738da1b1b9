#!/usr/bin/env bash
# Renders the plain manifests from the Helm chart, their one source: config/rbac/controller.yaml,
# certs/cert-manager.yaml and webhooks/{mutating,validating}-webhook-configuration.yaml, for a
# release `workload-variant-autoscaler` in `workload-variant-autoscaler-system` (upstream's
# kustomize names). `--check` writes nothing and fails, naming the file, when one differs.
#   HELM=path   the helm binary (default: scripts/ecosystem.sh --check helm)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
check=""
[ "${1:-}" = "--check" ] && check=1
helm=${HELM:-$(bash "$here/scripts/ecosystem.sh" --check helm)/helm}

render() { # template -> stdout
  echo "# Rendered from charts/wva/templates/$1 by scripts/manifests.sh (make manifests): edit the chart, not this file."
  "$helm" template workload-variant-autoscaler "$here/charts/wva" \
    --namespace workload-variant-autoscaler-system --kube-version 1.36.3 \
    --show-only "templates/$1"
}

status=0
for pair in rbac.yaml:config/rbac/controller.yaml certificates.yaml:certs/cert-manager.yaml \
  mutating-webhook.yaml:webhooks/mutating-webhook-configuration.yaml \
  validating-webhook.yaml:webhooks/validating-webhook-configuration.yaml; do
  template=${pair%%:*} file=${pair#*:}
  if [ -n "$check" ]; then
    if ! diff -u "$here/$file" <(render "$template") >&2; then
      echo "manifests.sh: $file differs from charts/wva/templates/$template: run \`make manifests\`" >&2
      status=1
    fi
  else
    render "$template" > "$here/$file"
  fi
done
exit $status
