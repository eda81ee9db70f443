#!/usr/bin/env bash
# Prints the path of the pinned goreleaser for `make release-check`: the one on PATH if it is
# that version, else one built from source with `go install` (only the Go module proxy is
# needed, no GitHub releases). Progress goes to stderr; stdout is only the path, so callers can
# write gr="$(bash scripts/ensure-goreleaser.sh)".
#
# goreleaser v2.17.0 is the newest release whose go.mod accepts Go 1.26 (v2.18 needs Go 1.27);
# it needs Go >= 1.26.4, which `go install` fetches by itself under the default
# GOTOOLCHAIN=auto when an older Go 1.26.x runs this. goreleaser is MIT licensed.
#
#   GORELEASER_VERSION  version to use (default v2.17.0)
#   GORELEASER_BIN_DIR  where to install it (default: $(go env GOPATH)/tools/goreleaser@<version>;
#                       a directory of its own, so no other goreleaser is overwritten)
set -euo pipefail

version="${GORELEASER_VERSION:-v2.17.0}"
dir="${GORELEASER_BIN_DIR:-$(go env GOPATH)/tools/goreleaser@$version}"

# `goreleaser --version` prints "GitVersion:    v2.17.0" (go install) or "2.17.0" (release builds).
is_pinned() {
	[ -x "$1" ] && "$1" --version 2>/dev/null | grep -Eq "^GitVersion:[[:space:]]+v?${version#v}\$"
}

for gr in "$(command -v goreleaser 2>/dev/null || true)" "$dir/goreleaser"; do
	if [ -n "$gr" ] && is_pinned "$gr"; then
		echo "$gr"
		exit 0
	fi
done

echo "ensure-goreleaser: installing goreleaser $version into $dir (go install, several minutes)" >&2
mkdir -p "$dir"
GOBIN="$dir" go install "github.com/goreleaser/goreleaser/v2@$version" >&2
echo "$dir/goreleaser"
