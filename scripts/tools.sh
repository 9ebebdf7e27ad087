#!/usr/bin/env bash
# tools.sh installs the pinned developer tools and test servers into .tools/bin
# (git-ignored). Each is built once from the Go module proxy and reused while its
# version stamp matches. Servers (minio, local-kms, vault) run as local processes
# started by the tests; see integration/servers.
# Usage: scripts/tools.sh [buf|protoc-gen-go|protoc-gen-go-grpc|grpcurl|minio|local-kms|vault ...]
#        (default: the code-generation tools and grpcurl)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SEALGATE_TOOLS_BIN:-$ROOT/.tools/bin}"
mkdir -p "$BIN"

declare -A PKG=(
  [buf]="github.com/bufbuild/buf/cmd/buf@v1.75.0"
  [protoc-gen-go]="google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12"
  [protoc-gen-go-grpc]="google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2"
  [grpcurl]="github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"
  # Mutation testing (make mutate).
  [gremlins]="github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0"
  # AGPL: run as a separate process only, never imported.
  [minio]="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
  # AWS KMS emulator for keys/awskms tests.
  [local-kms]="github.com/nsmithuk/local-kms@v0.0.0-20260228092603-2a5e92d09ab6"
  # BSL: a test dependency only. Built from a wrapper module (see build_vault).
  [vault]="github.com/hashicorp/vault@v1.21.0 sdk@v0.20.0 api@v1.22.0"
)

# build_vault builds Vault from a throwaway wrapper module: its own go.mod has
# replace directives, so `go install` refuses it, and v1.21.0 is the newest
# release that compiles against a published vault/sdk (shared/notes).
build_vault() {
  local dir="$ROOT/.tools/build/vault"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/go.mod" <<'MOD'
module vaultbuild

go 1.25.1

replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
MOD
  (cd "$dir" && go get github.com/hashicorp/vault@v1.21.0 github.com/hashicorp/vault/sdk@v0.20.0 github.com/hashicorp/vault/api@v1.22.0 \
     && go build -trimpath -o "$BIN/vault" github.com/hashicorp/vault)
}

install_one() {
  local name="$1" pkg="${PKG[$1]}"
  local stamp="$BIN/.$name.version"
  if [[ -x "$BIN/$name" && -f "$stamp" && "$(cat "$stamp")" == "$pkg" ]]; then
    return 0
  fi
  echo "tools: installing $pkg" >&2
  if [[ "$name" == vault ]]; then
    build_vault
  else
    GOBIN="$BIN" go install "$pkg"
  fi
  echo "$pkg" >"$stamp"
}

if [[ $# -eq 0 ]]; then
  set -- buf protoc-gen-go protoc-gen-go-grpc grpcurl
fi
for t in "$@"; do
  [[ -n "${PKG[$t]:-}" ]] || { echo "tools: unknown tool $t" >&2; exit 2; }
  [[ "$t" == all ]] && continue
  install_one "$t"
done
