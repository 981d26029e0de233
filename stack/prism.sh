#!/usr/bin/env bash
# Beam's Prism runner (the embedded streaming runner), built from Beam's Go module at the pinned Beam
# version through the Go module proxy, cached once per machine. Usage: stack/prism.sh {fetch|path}
#   path   prints the binary with the project's patches (stack/prism-patches/, docs/PRISM_PATCHES.md),
#          building it first if needed; PRISM_STOCK=1 prints the stock binary instead.
#   fetch  builds the patched binary (the stock one instead with PRISM_STOCK=1).
source "$(dirname "$0")/lib.sh"

BEAM_MODULE=github.com/apache/beam/sdks/v2 # Beam's sdks/ directory; Prism is ./go/cmd/prism in it
STOCK_BIN="$CACHE_DIR/prism-$BEAM_VERSION/prism"
shopt -s nullglob
LC_COLLATE=C # patches in byte order of their names, as beam_cxone/runners/profiles.py hashes them
PATCHES=("$STACK_DIR"/prism-patches/*.patch)
# A changed, added or removed patch gives another directory, hence a rebuild.
PATCH_HASH="$(cat "${PATCHES[@]}" /dev/null | sha256sum | cut -c1-8)"
PATCHED_BIN="$CACHE_DIR/prism-$BEAM_VERSION-$PATCH_HASH/prism"

need() { command -v "$1" >/dev/null || { log "$1 is needed to build Prism; none on PATH"; exit 1; }; }

fetch_stock() {
  [[ -x "$STOCK_BIN" ]] && return 0
  need go
  log "building Prism v$BEAM_VERSION with go install (first time only, ~2 min)"
  GOBIN="$(dirname "$STOCK_BIN")" GOFLAGS=-mod=mod go install "$PRISM_GO_MODULE@v$BEAM_VERSION"
}

# Copies Beam's module source out of the (read-only) Go module cache, patches it, builds Prism in it
# with the module's own go.sum, then installs the binary in one rename.
fetch_patched() {
  [[ -x "$PATCHED_BIN" ]] && return 0
  need go
  need patch
  local dir
  dir="$(cd "$CACHE_DIR" && go mod download -json "$BEAM_MODULE@v$BEAM_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -f "$dir/go/cmd/prism/prism.go" ]] || { log "no Prism source in '$dir' (go mod download)"; exit 1; }
  mkdir -p "$(dirname "$PATCHED_BIN")"
  SRC="$(mktemp -d "$(dirname "$PATCHED_BIN")/src.XXXXXX")" # global: the EXIT trap removes it
  trap 'rm -rf "$SRC"' EXIT
  cp -R "$dir/go.mod" "$dir/go.sum" "$dir/go" "$SRC/"
  chmod -R u+w "$SRC"
  for p in "${PATCHES[@]}"; do
    log "applying $(basename "$p")"
    patch -d "$SRC" -p1 --forward --batch --quiet <"$p"
  done
  log "building patched Prism v$BEAM_VERSION-$PATCH_HASH (first time only, ~1 min)"
  (cd "$SRC" && GOFLAGS="-mod=readonly -buildvcs=false" go build -o "$SRC/prism" ./go/cmd/prism)
  mv -f "$SRC/prism" "$PATCHED_BIN"
}

case "${1:-}" in
  fetch)
    # Only what the runs will use: the patched build (CI's time), or the stock one with PRISM_STOCK=1.
    if [[ "${PRISM_STOCK:-}" == 1 ]]; then fetch_stock; else fetch_patched; fi
    ;;
  path)
    if [[ "${PRISM_STOCK:-}" == 1 ]]; then
      fetch_stock >&2
      echo "$STOCK_BIN"
    else
      fetch_patched >&2
      echo "$PATCHED_BIN"
    fi
    ;;
  *) echo "usage: $0 {fetch|path}  (PRISM_STOCK=1: the stock binary)" >&2; exit 2 ;;
esac
