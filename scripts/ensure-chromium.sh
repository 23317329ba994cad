#!/usr/bin/env bash
# Install Debian's Chromium when it is missing: the coverage report's test opens the page in
# headless Chromium to check that every chart is drawn.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
echo "Chromium is missing: installing Debian's chromium (for the coverage report's test)" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "could not install chromium" >&2; exit 1; }
