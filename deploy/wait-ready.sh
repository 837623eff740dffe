#!/usr/bin/env bash
# The `ready` line of `make run`: waits until the gateway and every API answer /readyz and
# each agent has reported to its service, prints how to use the cloud, then stays (honcho
# stops everything when one of its processes ends).
set -uo pipefail

GATEWAY="${GATEWAY_PUBLIC_URL:-http://127.0.0.1:8080}"
DATA_DIR="${STACKLING_DATA_DIR:-data}"
# `make run TLS=1`: the gateway's certificate is of a local CA.
CURL_TLS=()
[[ -n "${GATEWAY_TLS_CA_FILE:-}" ]] && CURL_TLS=(--cacert "$GATEWAY_TLS_CA_FILE")
READY=(
  "$GATEWAY/readyz"
  "http://127.0.0.1:${COMPUTE_PORT:-8774}/readyz"
  "http://127.0.0.1:${NETWORK_PORT:-9696}/readyz"
  "http://127.0.0.1:${VOLUME_PORT:-8776}/readyz"
)
for ((t = 0; t < 300; t++)); do
  ok=1
  for url in "${READY[@]}"; do
    curl -fs -o /dev/null --max-time 2 "${CURL_TLS[@]}" "$url" || ok=0
  done
  ((ok)) && break
  sleep 1
done
if ((!ok)); then
  echo "not ready after 300 s: see the other processes' output" >&2
  exec sleep infinity
fi
sleep 12 # one heartbeat of each agent
cat <<MSG
ready: $GATEWAY (clouds.yaml: $DATA_DIR/clouds.yaml)
  export OS_CLIENT_CONFIG_FILE=$DATA_DIR/clouds.yaml OS_CLOUD=stackling-demo
  openstack server list
  STACKLING_DATA_DIR=$DATA_DIR deploy/demo.sh   # a network and a stackling-tiny server, with its console
MSG
exec sleep infinity
