# Tiercel. `make test` is the one command that runs every test; see
# scripts/test.sh for its stages.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go
BIN := bin/tiercel
# Extra flags for `make run`, e.g. make run ARGS='--listen 127.0.0.1:9093'
ARGS ?=
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 30s
# Which benchmarks `make bench` runs, and where.
BENCH ?= .
PKGS ?= ./...

.PHONY: run build test lint deps e2e fuzz bench clean

## run: start one broker on 127.0.0.1:9092 with ./data (go run ./cmd/tiercel)
run:
	$(GO) run ./cmd/tiercel $(ARGS)

## build: build the broker into bin/tiercel
build:
	$(GO) build -o $(BIN) ./cmd/tiercel

## test: install test dependencies, lint, go test -race, end-to-end checks
test:
	scripts/test.sh

## lint: gofmt, go vet, staticcheck
lint:
	scripts/lint.sh

## deps: install what the tests need (Debian packages, MinIO, staticcheck)
deps:
	scripts/install-deps.sh

## e2e: build, then run the end-to-end client checks only
e2e: build
	TIERCEL_BIN="$(CURDIR)/$(BIN)" test/e2e/run.sh

## fuzz: run every fuzz target in the repository for FUZZTIME each
fuzz:
	@found=0; \
	for pkg in $$($(GO) list $(PKGS)); do \
		listed=$$($(GO) test -list '^Fuzz' -run '^$$' "$$pkg"); \
		targets=$$(grep '^Fuzz' <<<"$$listed" || true); \
		for target in $$targets; do \
			found=$$((found + 1)); \
			echo "=== fuzz $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done; \
	echo "fuzz: ran $$found fuzz targets"; \
	[[ $$found -gt 0 ]] || { echo "fuzz: no fuzz targets found" >&2; exit 1; }

## bench: run the Go benchmarks (BENCH=regexp, PKGS=packages)
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=1 $(PKGS)

## clean: remove build outputs (./data, the broker's data, is left alone)
clean:
	rm -rf bin
	rm -f tiercel *.test *.prof

# Compose file for `make up`/`down`; COMPOSE=localstack/docker-compose.localstack.yml for LocalStack's S3.
COMPOSE ?= localstack/docker-compose.yml
# Brokers for `make local-up` (1 until the cluster issue lands).
BROKERS ?= 1

.PHONY: up down local-up local-down

## up: build and start the local stack (MinIO, three brokers, Prometheus, Grafana) with Docker
up:
	docker compose -f $(COMPOSE) up -d --build

## down: stop the local stack (volumes are kept; `docker compose -f $(COMPOSE) down -v` for a fresh start)
down:
	docker compose -f $(COMPOSE) down

## local-up: the same stack as plain processes on 127.0.0.1, without Docker (BROKERS=N)
local-up:
	localstack/run-local.sh up --brokers $(BROKERS)

## local-down: stop what local-up started
local-down:
	localstack/run-local.sh down
