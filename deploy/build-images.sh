#!/usr/bin/env bash
# `make images`: every image docker-compose.yml uses, built on this machine.
#
#   1. a Docker engine (deploy/docker-engine.sh);
#   2. the wheelhouse build/wheels: `pip wheel -c constraints.txt` of every package of the
#      repo and its dependencies, all pinned (libvirt-python compiles here, so no compiler
#      goes in an image); remade only when constraints.txt or a package's files change;
#   3. the base images, under STACKLING_BASE_IMAGES (default stackling-local):
#      stackling-local: debian:bookworm-slim made with debootstrap (deploy/images/
#        build-base.sh), then python:3.11-slim-bookworm, rabbitmq:3-management and
#        postgres:15 from Debian's packages (deploy/images/*.Dockerfile);
#      library: the official images, pulled (where a registry is reachable);
#   4. the service images stackling/<service>:${STACKLING_IMAGE_TAG:-latest}
#      (`docker-compose build`, deploy/Dockerfile).
# Idempotent and incremental: Docker's layer cache makes a second run take seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export STACKLING_BASE_IMAGES="${STACKLING_BASE_IMAGES:-stackling-local}"
WHEELS="$ROOT/build/wheels"
PACKAGE_DIRS=(common-rpc compute-svc network-svc volume-svc api-gateway)
START=$SECONDS
say() { printf '[images %3ds] %s\n' "$((SECONDS - START))" "$*"; }
die() {
  printf '[images] ERROR: %s\n' "$*" >&2
  exit 1
}

# One build at a time per checkout (make images and make test-compose may overlap).
exec 8>"/tmp/stackling-images-$(echo "$ROOT" | sha1sum | cut -c1-12).lock"
flock 8

bash deploy/docker-engine.sh 8>&-

# --- 2. the wheelhouse -----------------------------------------------------------------------
package_digest() {
  {
    cat constraints.txt
    find "${PACKAGE_DIRS[@]}" -type f \( -name '*.py' -o -name '*.toml' -o -name '*.ini' \
      -o -name '*.mako' -o -name '*.md' -o -name '*.json' -o -name '*.cfg' \) \
      -not -path '*/tests/*' -not -path '*/__pycache__/*' -not -path '*.egg-info/*' |
      LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -d' ' -f1
}

build_wheels() {
  local digest stamp="$WHEELS/.digest"
  digest="$(package_digest)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
    say "wheelhouse: up to date ($(find "$WHEELS" -name '*.whl' | wc -l) wheels)"
    return
  fi
  [[ -x .venv/bin/pip ]] || die ".venv is missing: run make setup"
  local tmp="$WHEELS.tmp" log=/tmp/stackling-wheels.log
  rm -rf "$tmp"
  say "wheelhouse: pip wheel -c constraints.txt ${PACKAGE_DIRS[*]}"
  if ! .venv/bin/pip wheel -q --disable-pip-version-check -c constraints.txt -w "$tmp" \
    "${PACKAGE_DIRS[@]/#/./}" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "pip wheel failed (log: $log)"
  fi
  # A build directory pip leaves in a package would otherwise change the next digest.
  rm -rf "${PACKAGE_DIRS[@]/%//build}"
  rm -rf "$WHEELS" && mv "$tmp" "$WHEELS"
  echo "$digest" >"$stamp"
  say "wheelhouse: $(find "$WHEELS" -name '*.whl' | wc -l) wheels in build/wheels"
}

# --- 3. base images --------------------------------------------------------------------------
build_bases() {
  local ns="$STACKLING_BASE_IMAGES"
  if [[ "$ns" != stackling-local ]]; then
    local image
    for image in python:3.11-slim-bookworm rabbitmq:3-management postgres:15; do
      say "base: docker pull $ns/$image"
      docker pull -q "$ns/$image" >/dev/null || die "cannot pull $ns/$image"
    done
    return
  fi
  bash deploy/images/build-base.sh "$ns"
  local name
  for name in python:3.11-slim-bookworm rabbitmq:3-management postgres:15; do
    say "base: $ns/$name"
    local log="/tmp/stackling-image-${name%%:*}.log"
    docker build --network host --build-arg "BASE_IMAGES=$ns" \
      -f "deploy/images/${name%%:*}.Dockerfile" -t "$ns/$name" deploy/images >"$log" 2>&1 || {
      tail -n 20 "$log" >&2
      die "building $ns/$name failed (log: $log)"
    }
  done
}

# --- 4. service images -----------------------------------------------------------------------
build_services() {
  say "services: docker-compose build (stackling/*:${STACKLING_IMAGE_TAG:-latest})"
  local log=/tmp/stackling-compose-build.log
  if ! COMPOSE_DOCKER_CLI_BUILD=0 docker-compose -f docker-compose.yml --profile ha build \
    >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "docker-compose build failed (log: $log)"
  fi
}

# What the builds left behind: final images a rebuild replaced (untagged) and build stages
# older than each package's newest (which stays, as the next build's cache).
prune_superseded() {
  local ids pkg
  ids="$(docker images -q -f dangling=true -f label=org.stackling.stage=final)"
  for pkg in "${PACKAGE_DIRS[@]}"; do
    ids+=" $(docker images -f dangling=true -f label=org.stackling.stage=build \
      -f "label=org.stackling.package=$pkg" --format '{{.CreatedAt}} {{.ID}}' |
      sort -r | tail -n +2 | awk '{print $NF}')"
  done
  # shellcheck disable=SC2086  # one id a word
  if [[ -n "${ids// /}" ]]; then
    docker rmi -f $ids >/dev/null 2>&1 || true
    say "pruned $(echo $ids | wc -w) superseded image(s)"
  fi
}

build_wheels
build_bases
build_services
prune_superseded
say "done; images:"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
  grep -E "^(stackling/|$STACKLING_BASE_IMAGES/)" | sort | sed 's/^/  /'
