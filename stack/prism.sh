#!/usr/bin/env bash
# Beam's Prism runner (the embedded streaming runner), built from Beam's Go module at the pinned Beam
# version through the Go module proxy, cached once per machine. Usage: stack/prism.sh {fetch|path}
source "$(dirname "$0")/lib.sh"

PRISM_BIN="$CACHE_DIR/prism-$BEAM_VERSION/prism"

fetch() {
  [[ -x "$PRISM_BIN" ]] && return 0
  command -v go >/dev/null || { log "Go is needed to build Prism (go install); none on PATH"; return 1; }
  log "building Prism v$BEAM_VERSION with go install (first time only, ~2 min)"
  GOBIN="$(dirname "$PRISM_BIN")" GOFLAGS=-mod=mod go install "$PRISM_GO_MODULE@v$BEAM_VERSION"
}

case "${1:-}" in
  fetch) fetch ;;
  path) fetch >&2 && echo "$PRISM_BIN" ;;
  *) echo "usage: $0 {fetch|path}" >&2; exit 2 ;;
esac
