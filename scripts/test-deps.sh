#!/usr/bin/env bash
# Installs the Debian packages the integration tests start as real servers on loopback:
# prometheus (query API, remote write, TLS/mTLS via --web.config.file), nginx (a TLS reverse
# proxy checking a bearer token) and openssl (certs/dev-certs.sh). Idempotent; needs root or
# sudo on Debian/Ubuntu. Package services are kept from starting: the tests start their own
# instances on 127.0.0.1 and stop them by PID.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
command -v openssl >/dev/null || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "test-deps.sh: installing ${need[*]}" >&2
# Keep the packages' own services from starting (policy-rc.d answers "not allowed").
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ -n "$created_policy" ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Belt and braces: nothing the packages may have started stays up.
$sudo pkill -x prometheus 2>/dev/null || true
$sudo pkill -x nginx 2>/dev/null || true
