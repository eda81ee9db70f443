#!/usr/bin/env bash
# Prints the path of a terraform binary for the provider's acceptance tests and `make docs`:
# the one on PATH if there is one, else one built from source with `go install` (only the Go
# module proxy is needed, no releases.hashicorp.com). Progress goes to stderr; stdout is
# only the path, so callers can write TF_ACC_TERRAFORM_PATH="$(bash scripts/ensure-terraform.sh)".
#
#   TERRAFORM_VERSION  version to install when none is found (default 1.5.7, the first release
#                      with import blocks that the acceptance tests use)
#   TERRAFORM_BIN_DIR  where to install it (default: $(go env GOPATH)/bin)
set -euo pipefail

if tf="$(command -v terraform 2>/dev/null)"; then
	echo "$tf"
	exit 0
fi

version="${TERRAFORM_VERSION:-1.5.7}"
dir="${TERRAFORM_BIN_DIR:-$(go env GOPATH)/bin}"
tf="$dir/terraform"

# Installed by an earlier run but not on PATH: reuse it if it is the version asked for.
if [ -x "$tf" ] && "$tf" version 2>/dev/null | head -n 1 | grep -qx "Terraform v$version"; then
	echo "$tf"
	exit 0
fi

echo "ensure-terraform: no terraform on PATH; installing v$version into $dir (go install, a few minutes)" >&2
mkdir -p "$dir"
GOBIN="$dir" go install "github.com/hashicorp/terraform@v$version" >&2
echo "$tf"
