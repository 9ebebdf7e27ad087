#!/usr/bin/env bash
# bench.sh runs the performance harness (bench/perf_test.go): it installs the
# pinned MinIO and local-kms into .tools/bin with scripts/tools.sh, then runs
# TestPerformance, which starts its own servers and a gateway process, prints
# one markdown table and rewrites docs/performance.md.
# Usage: scripts/bench.sh
#        SEALGATE_BENCH_QUICK=1 scripts/bench.sh   (smoke run, ~16x smaller;
#                                                    writes a temporary file)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export SEALGATE_TOOLS_BIN="${SEALGATE_TOOLS_BIN:-$ROOT/.tools/bin}"
export PATH="$SEALGATE_TOOLS_BIN:$PATH"

scripts/tools.sh minio local-kms

SEALGATE_BENCH=1 SEALGATE_BENCH_QUICK="${SEALGATE_BENCH_QUICK:-}" \
  go test ./bench -run '^TestPerformance$' -count=1 -timeout "${BENCH_TIMEOUT:-40m}" -v
