#!/usr/bin/env bash
# Builds one ecosystem component the chart and KEDA tests run for real (helm, cert-manager,
# prometheus-adapter, KEDA, third-party CRDs) from its pinned Go module in tools/<name>/ into a cache folder keyed by
# the module's version and a hash of tools/<name>/, and prints that folder. Idempotent: a second
# run builds nothing.
#
#   scripts/ecosystem.sh NAME            build if missing, print the bin folder
#   scripts/ecosystem.sh --check NAME    print the folder if built, else fail; never build
#   WVA_TOOLS_CACHE=DIR                  cache root (as scripts/tools.sh)
#
# Binaries per NAME: helm -> helm; cert-manager -> cert-manager-controller, cert-manager-cainjector
# (small mains of ours over cert-manager's public packages, tools/cert-manager/*/main.go);
# prometheus-adapter -> prometheus-adapter; crds -> the ScaledObject, ServiceMonitor and
# InferencePool CRDs (YAML from the pinned KEDA, prometheus-operator and Gateway API Inference
# Extension modules, nothing built); keda -> keda-operator,
# keda-adapter (the costliest build: about 15 minutes and 3 GB of memory on 2 cores).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
check=""
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
name=${1:?usage: ecosystem.sh [--check] helm|cert-manager|prometheus-adapter|crds|keda}
dir="$here/tools/$name"
[ -f "$dir/go.mod" ] || { echo "ecosystem.sh: unknown component $name (no tools/$name/go.mod)" >&2; exit 2; }

case "$name" in
  helm) module=helm.sh/helm/v3; bins=(helm) ;;
  cert-manager) module=github.com/cert-manager/cert-manager; bins=(cert-manager-controller cert-manager-cainjector) ;;
  prometheus-adapter) module=sigs.k8s.io/prometheus-adapter; bins=(prometheus-adapter) ;;
  crds) module=github.com/kedacore/keda/v2; bins=() ;;
  keda) module=github.com/kedacore/keda/v2; bins=(keda-operator keda-adapter) ;;
  *) echo "ecosystem.sh: no build recipe for $name" >&2; exit 2 ;;
esac

version=$(awk -v m="$module" '$1==m {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$dir/go.mod")
[ -n "$version" ] || { echo "ecosystem.sh: $module not pinned in tools/$name/go.mod" >&2; exit 2; }
# The key changes when our mains or the pins change, not when the repository moves.
digest=$(cd "$dir" && cat go.mod $(ls go.sum 2>/dev/null) $(find . -name "*.go" | sort) | sha256sum | cut -c1-10)
root=${WVA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wva-tools}
out="$root/$name-${version}_$digest/bin"

have_all() {
  local b
  [ -d "$out" ] || return 1
  for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done
}
if have_all; then
  echo "$out"
  exit 0
fi
if [ -n "$check" ]; then
  echo "ecosystem.sh: $name $version is not built in $out: run \`make tools\` (or bash scripts/ecosystem.sh $name)" >&2
  exit 1
fi

command -v go >/dev/null || { echo "ecosystem.sh: go is required (Go 1.26+)" >&2; exit 1; }
mkdir -p "$out.partial"
echo "ecosystem.sh: building $name $version into $out; this takes minutes on a cold machine" >&2
start=$(date +%s)
(
  cd "$dir"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  flags=(-trimpath)
  case "$name" in
    helm)
      go build "${flags[@]}" -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
        -o "$out.partial/helm" helm.sh/helm/v3/cmd/helm ;;
    cert-manager)
      go build "${flags[@]}" -ldflags='-s -w' -o "$out.partial/cert-manager-controller" ./controller
      go build "${flags[@]}" -ldflags='-s -w' -o "$out.partial/cert-manager-cainjector" ./cainjector ;;
    prometheus-adapter)
      go build "${flags[@]}" -ldflags='-s -w' -o "$out.partial/prometheus-adapter" sigs.k8s.io/prometheus-adapter/cmd/adapter ;;
    keda)
      go build "${flags[@]}" -ldflags='-s -w' -o "$out.partial/keda-operator" github.com/kedacore/keda/v2/cmd/operator
      go build "${flags[@]}" -ldflags='-s -w' -o "$out.partial/keda-adapter" github.com/kedacore/keda/v2/cmd/adapter ;;
    crds)
      dir_of() { go mod download -json "$1@$(awk -v m="$1" '$1==m {print $2}' go.mod)" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'; }
      keda=$(dir_of github.com/kedacore/keda/v2)
      operator=$(dir_of github.com/prometheus-operator/prometheus-operator)
      cp "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" "$out.partial/"
      cp "$operator/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$out.partial/"
      inference=$(dir_of sigs.k8s.io/gateway-api-inference-extension)
      cp "$inference/config/crd/bases/inference.networking.k8s.io_inferencepools.yaml" \
        "$inference/config/crd/bases/inference.networking.x-k8s.io_inferencepools.yaml" "$out.partial/" ;;
  esac
) >&2
# cert-manager's CRDs ship as plain YAML in its module zip.
if [ "$name" = cert-manager ]; then
  src=$(cd "$dir" && go list -m -f '{{.Dir}}' "$module")
  cat "$src"/deploy/crds/*.yaml > "$out.partial/cert-manager.crds.yaml"
fi
rm -rf "$out" && mv "$out.partial" "$out"
echo "ecosystem.sh: built $name in $(( $(date +%s) - start ))s" >&2
echo "$out"
