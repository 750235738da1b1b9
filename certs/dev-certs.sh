#!/usr/bin/env bash
# Makes a local CA and a webhook serving certificate with openssl, for running `wva webhook`
# outside a cluster or against a dev cluster without cert-manager.
#
#   certs/dev-certs.sh OUT_DIR [NAME ...]
#
# NAMEs are DNS names or IP addresses for the serving certificate (default: localhost 127.0.0.1
# and the in-cluster Service names). Writes OUT_DIR/ca.crt, ca.key, tls.crt, tls.key and prints
# the base64 caBundle for a webhook configuration's clientConfig.
set -euo pipefail
out=${1:?usage: certs/dev-certs.sh OUT_DIR [DNS-or-IP ...]}
shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(localhost 127.0.0.1
    workload-variant-autoscaler-webhook-service.workload-variant-autoscaler-system.svc
    workload-variant-autoscaler-webhook-service.workload-variant-autoscaler-system.svc.cluster.local)
fi
command -v openssl >/dev/null || { echo "dev-certs.sh: openssl is required (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$out"
san=""
for n in "${names[@]}"; do
  if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
san=${san%,}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
  -subj "/CN=wva-dev-webhook-ca" -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=${names[0]}" -keyout "$out/tls.key" -out "$out/tls.csr" 2>/dev/null
openssl x509 -req -in "$out/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days 365 \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' "$san") \
  -out "$out/tls.crt" 2>/dev/null
rm -f "$out/tls.csr" "$out/ca.srl"
chmod 600 "$out/ca.key" "$out/tls.key"
echo "wrote $out/{ca.crt,ca.key,tls.crt,tls.key} for: ${names[*]}" >&2
base64 -w0 < "$out/ca.crt"
echo
