# sealgate: make run (the gateway on its embedded defaults) and make test (everything).
SHELL := /bin/bash
TOOLS_BIN := $(CURDIR)/.tools/bin
export PATH := $(TOOLS_BIN):$(PATH)
export SEALGATE_TOOLS_BIN := $(TOOLS_BIN)
GO ?= go
TEST_TIMEOUT ?= 40m

.PHONY: all build run test unit integration proto proto-check lint fmt tools clean mutate

all: build

build:
	$(GO) build -o bin/ ./cmd/...

## run: start the gateway with its embedded defaults (file store, local key, dev token).
## Extra flags go in ARGS, e.g. make run ARGS="--listen 127.0.0.1:9000".
run:
	@test -x bin/sealgate || echo "make run: building bin/sealgate; the first build compiles every dependency (a minute or two)..." >&2
	$(GO) build -o bin/ ./cmd/sealgate
	./bin/sealgate serve $(ARGS)

tools:
	scripts/tools.sh

## test: lint, generated-code check, unit and integration tests (starts what it needs:
## MinIO, local-kms and Vault run as local processes, built once into .tools/bin).
test: lint proto-check
	scripts/tools.sh grpcurl local-kms minio vault
	$(GO) test -race -short -count=1 ./gateway/... ./keys/... ./store/...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -count=1 -run '^$$' -bench 'KMSCallsPer10kUploads' -benchtime 1x ./integration/

## loadtest: 3 gateways, 2 movers, 2 sweepers over a distributed MinIO region
## and a single-node one, N clients for a bounded time, one gateway and one
## MinIO process killed mid-run; prints ops/s, p50/p99, errors by code and
## checks every acknowledged upload (SEALGATE_LOAD_SECONDS, SEALGATE_LOAD_CLIENTS).
.PHONY: loadtest
loadtest:
	scripts/tools.sh minio
	SEALGATE_LOADTEST=1 $(GO) test -count=1 -run '^TestLoad$$' -timeout 30m -v ./integration/

## bench: the performance harness (bench/perf_test.go): starts MinIO and local-kms,
## prints one table of medians and ratios and rewrites docs/performance.md.
## SEALGATE_BENCH_QUICK=1 make bench is a ~16x smaller smoke run.
.PHONY: bench
bench:
	scripts/bench.sh

## mutate: mutation testing (gremlins) of the core packages, efficacy per
## package against its target (docs/testing.md). Not part of make test.
mutate:
	scripts/mutate.sh

unit:
	$(GO) test -short -count=1 ./...

proto:
	scripts/tools.sh buf protoc-gen-go protoc-gen-go-grpc
	buf generate

## proto-check: fail when the committed generated code differs from what buf makes now.
proto-check: proto
	@git diff --exit-code -- proto/ || { echo "proto-check: generated code is stale; run 'make proto' and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- proto/)" || { git status --porcelain -- proto/; echo "proto-check: untracked generated files; run 'make proto' and commit" >&2; exit 1; }

lint:
	scripts/tools.sh buf
	buf lint
	@out="$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))"; test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf bin .sealgate
