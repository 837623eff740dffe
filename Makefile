# Stackling developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(or $(STACKLING_DATA_DIR),$(CURDIR)/data)
# One absolute data directory for set-up (keys) and every process (keys, SQLite files,
# clouds.yaml, credentials.json): `make run DATA_DIR=/elsewhere` moves them all.
override DATA_DIR := $(abspath $(DATA_DIR))
GATEWAY_PORT ?= 8080
COMPUTE_PORT ?= 8774
NETWORK_PORT ?= 9696
VOLUME_PORT ?= 8776
# `make run TLS=1`: the gateway serves HTTPS with a certificate of a local CA made in
# DATA_DIR/tls (deploy/make-tls.py); clouds.yaml gets that CA as its cacert.
TLS ?=
TLS_DIR := $(DATA_DIR)/tls
GATEWAY_URL := $(if $(filter 1 yes true,$(TLS)),https,http)://127.0.0.1:$(GATEWAY_PORT)
GATEWAY_TLS := $(if $(filter 1 yes true,$(TLS)),GATEWAY_TLS_CERT_FILE="$(TLS_DIR)/gateway.crt" GATEWAY_TLS_KEY_FILE="$(TLS_DIR)/gateway.key" GATEWAY_TLS_CA_FILE="$(TLS_DIR)/ca.pem")

.PHONY: help setup run test conformance lint format image images test-compose bench-rpc bench-gateway bench-network bench-compute bench-volume bench-e2e bench-console fuzz hosts hosts-down clean distclean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## install host packages, the venv and packages; identity keys in DATA_DIR; broker, DB, daemons
	@STACKLING_DATA_DIR="$(DATA_DIR)" bash deploy/setup.sh

run: setup ## run every process on this machine (TLS=1: HTTPS gateway); "ready" then deploy/demo.sh
	$(if $(GATEWAY_TLS),@$(PY) deploy/make-tls.py "$(TLS_DIR)" 127.0.0.1 localhost >/dev/null)
	@echo "gateway: $(GATEWAY_URL)  (data: $(DATA_DIR))"
	@STACKLING_DATA_DIR="$(DATA_DIR)" $(GATEWAY_TLS) \
	GATEWAY_PUBLIC_URL="$(GATEWAY_URL)" GATEWAY_PORT="$(GATEWAY_PORT)" \
	COMPUTE_PORT="$(COMPUTE_PORT)" NETWORK_PORT="$(NETWORK_PORT)" VOLUME_PORT="$(VOLUME_PORT)" \
	GATEWAY_COMPUTE_URLS='["http://127.0.0.1:$(COMPUTE_PORT)"]' \
	GATEWAY_NETWORK_URLS='["http://127.0.0.1:$(NETWORK_PORT)"]' \
	GATEWAY_VOLUME_URLS='["http://127.0.0.1:$(VOLUME_PORT)"]' \
	VOLUME_IMAGE_URL="http://127.0.0.1:$(COMPUTE_PORT)/image" \
	NETWORK_DEFAULT_NETWORK_TYPE=local NETWORK_AGENT_LOCAL_IP=127.0.0.1 \
	$(VENV)/bin/honcho start -f Procfile

test: setup ## run all test suites (TEST_TIMEOUT, PYTEST_ARGS, SUITES="tests/static ...")
	@bash deploy/run-tests.sh $(SUITES)

conformance: image ## upstream Tempest's interop list against the running cloud (make run in another terminal)
	@STACKLING_DATA_DIR="$(DATA_DIR)" bash deploy/conformance/run.sh

lint: setup ## ruff check + format check over the repo, and the import boundaries (.importlinter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: setup ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench-rpc: setup ## RPC round-trip benchmark against the local RabbitMQ (common-rpc, aio-pika, oslo.messaging)
	@$(PY) -c 'import oslo_messaging' 2>/dev/null || \
	  $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt oslo.messaging
	$(PY) -m bench.rpc_bench

bench-gateway: setup ## an authenticated list GET: direct vs minimal forwarder vs gateway (wrk)
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
	$(PY) -m bench.gateway_bench

bench-network: setup ## port create with 0 and 10,000 ports vs a bare insert+select (wrk; BENCH_ARGS="--db postgresql")
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
	$(PY) -m bench.network_bench $(BENCH_ARGS)

bench-compute: setup image ## stackling-tiny boots via the API (->ACTIVE, ->DHCP) vs bare libvirt boots
	$(PY) -m bench.compute_bench

bench-volume: setup ## volume create/delete times and writes through iSCSI vs a file (tgt, qemu-io)
	$(PY) -m bench.volume_bench

bench-e2e: setup image ## one tenant's whole scenario on the whole cloud (real guests), step by step
	$(PY) -m bench.e2e_bench

fuzz: setup ## schemathesis on every API through the gateway: 5xx, schema breaks, leftovers (FUZZ_EXAMPLES, FUZZ_SEED, FUZZ_ARGS)
	$(PY) tests/fuzz/fuzz_api.py $(FUZZ_ARGS)

hosts: setup ## N simulated hosts (netns on a fabric, own agents; HOSTS_ARGS="--compute"): docs/multi-host.md
	@STACKLING_DATA_DIR="$(DATA_DIR)" $(VENV)/bin/stackling hosts up $(or $(N),3) $(HOSTS_ARGS)

hosts-down: ## remove the simulated hosts, their fabric and relay
	@STACKLING_DATA_DIR="$(DATA_DIR)" $(VENV)/bin/stackling hosts down

bench-console: setup ## the web console in headless Chromium: 200 servers listed, a status change shown live
	$(PY) -m bench.console_bench $(BENCH_ARGS)

images: setup ## every image of docker-compose.yml, built here (STACKLING_BASE_IMAGES=library: official bases)
	@bash deploy/build-images.sh

test-compose: setup images ## docker-compose up for real: the whole cloud, each service alone, restarts (tests/compose)
	@bash deploy/test-compose.sh $(PYTEST_ARGS)

image: ## build the stackling-tiny guest (kernel + initramfs, and disk.qcow2) for tests and demo
	@bash deploy/guest-image.sh

clean: ## remove build output and caches (keeps .venv and data/)
	rm -rf build .pytest_cache .ruff_cache
	find . -path ./.venv -prune -o -type d \( -name __pycache__ -o -name '*.egg-info' \) -print0 \
		| xargs -0 rm -rf

distclean: clean ## also remove the venv and the data directory
	rm -rf $(VENV) data
