#!/usr/bin/env bash
# Installs kubectl from Debian's kubernetes-client package when no kubectl is on PATH.
set -euo pipefail
if command -v kubectl >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "kubectl is not installed; run: sudo apt-get update && sudo apt-get install -y kubernetes-client" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends kubernetes-client
