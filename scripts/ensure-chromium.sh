#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests (relay/uitest).
# `make test` runs it before `go test`. It installs the package when it is missing, which
# needs root (CI and the dev machines run as root). Without root it only says what to run:
# the browser tests then fail under CI=true and skip elsewhere.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
	exit 0
fi
if [ "$(id -u)" != "0" ]; then
	echo "ensure-chromium: /usr/bin/chromium is missing; install it with: sudo apt-get install -y chromium" >&2
	exit 0
fi
echo "ensure-chromium: installing Debian's chromium for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# fonts-dejavu-core: readable text in the screenshots on a machine with no fonts at all.
apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version >&2
