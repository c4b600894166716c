#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the report rendering test (tests/analysis/test_report.py).
# Idempotent: does nothing when /usr/bin/chromium already exists. Needs root (CI and dev machines run as root).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
