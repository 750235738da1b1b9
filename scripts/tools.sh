#!/usr/bin/env bash
# Builds the control-plane binaries the test tiers need (etcd, kube-apiserver,
# kube-controller-manager, kubectl) from the pinned Go module in tools/ into a cache
# folder keyed by version, and prints that folder. Idempotent: a second run builds nothing.
#
#   --check                 print the folder if the binaries are there, else fail; never build
#   KUBEBUILDER_ASSETS=DIR  use DIR when it already holds all four binaries (envtest convention)
#   WVA_TOOLS_CACHE=DIR     cache root (default: $XDG_CACHE_HOME/wva-tools or ~/.cache/wva-tools)
#
# The cache lives outside the work tree on purpose: CI clones afresh each run, and a
# kube-apiserver build takes many minutes on two cores.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bins=(etcd kube-apiserver kube-controller-manager kubectl)

have_all() {
  local dir=$1 b
  for b in "${bins[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_all "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

k8s_version=$(awk '$1=="k8s.io/kubernetes" {print $2; exit}' "$here/tools/go.mod")
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3" {print $2; exit}' "$here/tools/go.mod")
key="k8s-${k8s_version}_etcd-${etcd_version}"
root=${WVA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wva-tools}
out="$root/$key/bin"

if have_all "$out"; then
  echo "$out"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "tools.sh: control-plane binaries missing in $out: run \`make tools\` (or bash scripts/tools.sh)" >&2
  exit 1
fi

command -v go >/dev/null || { echo "tools.sh: go is required (Go 1.26+): apt-get install golang or use the machine's Go" >&2; exit 1; }
mkdir -p "$out.partial"
echo "tools.sh: building ${bins[*]} ($key) into $out; this takes a while on a cold machine" >&2
start=$(date +%s)
(
  cd "$here/tools"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  # -trimpath keeps the build cache independent of where the repository is cloned.
  go build -trimpath -ldflags='-s -w' -o "$out.partial/etcd" go.etcd.io/etcd/server/v3
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    go build -trimpath -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version} -X k8s.io/client-go/pkg/version.gitVersion=${k8s_version}" \
      -o "$out.partial/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
) >&2
rm -rf "$out" && mv "$out.partial" "$out"
echo "tools.sh: built in $(( $(date +%s) - start ))s; $(du -sh "$out" | cut -f1) of binaries" >&2
echo "$out"
