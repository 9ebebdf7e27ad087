#!/usr/bin/env bash
# tools.sh installs the pinned developer tools into .tools/bin (git-ignored).
# Each tool is built once with `go install` and reused while its version stamp matches.
# Usage: scripts/tools.sh [buf|protoc-gen-go|protoc-gen-go-grpc|grpcurl ...]  (default: all)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SEALGATE_TOOLS_BIN:-$ROOT/.tools/bin}"
mkdir -p "$BIN"

declare -A PKG=(
  [buf]="github.com/bufbuild/buf/cmd/buf@v1.75.0"
  [protoc-gen-go]="google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12"
  [protoc-gen-go-grpc]="google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2"
  [grpcurl]="github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"
)

install_one() {
  local name="$1" pkg="${PKG[$1]}"
  local stamp="$BIN/.$name.version"
  if [[ -x "$BIN/$name" && -f "$stamp" && "$(cat "$stamp")" == "$pkg" ]]; then
    return 0
  fi
  echo "tools: installing $pkg" >&2
  GOBIN="$BIN" go install "$pkg"
  echo "$pkg" >"$stamp"
}

if [[ $# -eq 0 ]]; then
  set -- buf protoc-gen-go protoc-gen-go-grpc grpcurl
fi
for t in "$@"; do
  [[ -n "${PKG[$t]:-}" ]] || { echo "tools: unknown tool $t" >&2; exit 2; }
  install_one "$t"
done
