#!/usr/bin/env bash
# Installs Debian's prometheus package (a real server and promtool) when it is missing.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "prometheus is not installed; run: sudo apt-get update && sudo apt-get install -y prometheus" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends prometheus
# The package starts a system service on :9090; the tests start their own on other ports.
if command -v service >/dev/null; then service prometheus stop >/dev/null 2>&1 || true; fi
