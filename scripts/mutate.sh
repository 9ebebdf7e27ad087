#!/usr/bin/env bash
# mutate.sh runs mutation testing (gremlins, pinned in scripts/tools.sh) over
# the core packages, one package at a time with its own short tests, and
# prints the efficacy of each: the share of mutants that some test kills.
# Usage: scripts/mutate.sh [package-dir ...]   (default: the core packages)
# Not part of make test: it takes tens of minutes on 2 cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${SEALGATE_TOOLS_BIN:-$ROOT/.tools/bin}"
scripts/tools.sh gremlins

# Package, and its target efficacy (docs/testing.md).
declare -A TARGET=(
  [keys]=90
  [gateway/auth]=90
  [gateway/layout]=80
  [gateway/policy]=80
  [gateway/mover]=80
  [gateway/limits]=80
)
for d in gateway/lifecycle gateway/notify gateway/privacy/detect gateway/privacy/redact gateway/privacy/audio; do
  [[ -d "$d" ]] && TARGET[$d]=80
done
if [[ $# -gt 0 ]]; then
  pkgs=("$@")
else
  mapfile -t pkgs < <(printf '%s\n' "${!TARGET[@]}" | sort)
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
workers="${MUTATE_WORKERS:-2}"
printf '%-20s %8s %6s %6s %10s %9s %7s\n' package killed lived timed "not-cover" efficacy target
status=0
for p in "${pkgs[@]}"; do
  # Only this package's files are mutated (sub-packages are separate rows),
  # and only its short tests run against each mutant.
  subdirs="$(find "$p" -mindepth 1 -maxdepth 1 -type d -printf '%f|' | sed 's/|$//')"
  excl=(-E '_test\.go$')
  [[ -n "$subdirs" ]] && excl+=(-E "^($subdirs)/")
  GOFLAGS=-short "$BIN/gremlins" unleash --workers "$workers" --timeout-coefficient 3 \
    "${excl[@]}" -o "$out/$(echo "$p" | tr / _).json" "./$p" >"$out/log" 2>&1 || true
  json="$out/$(echo "$p" | tr / _).json"
  if [[ ! -s "$json" ]]; then
    echo "mutate: gremlins failed for $p:" >&2
    tail -20 "$out/log" >&2
    status=1
    continue
  fi
  python3 - "$json" "$p" "${TARGET[$p]:-80}" <<'PY' || status=1
import json, sys
path, pkg, target = sys.argv[1], sys.argv[2], float(sys.argv[3])
r = json.load(open(path))
counts = {}
for f in r.get("files", []):
    for m in f.get("mutations", []):
        counts[m["status"]] = counts.get(m["status"], 0) + 1
k, l = counts.get("KILLED", 0), counts.get("LIVED", 0)
t, nc = counts.get("TIMED OUT", 0), counts.get("NOT COVERED", 0)
eff = 100.0 * k / (k + l) if k + l else 100.0
print(f"{pkg:<20} {k:8d} {l:6d} {t:6d} {nc:10d} {eff:8.1f}% {target:6.0f}%")
for f in r.get("files", []):
    for m in f.get("mutations", []):
        if m["status"] == "LIVED":
            print(f"    lived: {m['type']} at {pkg}/{f['file_name']}:{m['line']}:{m['column']}", file=sys.stderr)
sys.exit(0 if eff >= target else 1)
PY
done
exit $status
