#!/usr/bin/env bash
# Installs Debian's Chromium, which tests/test_email_rendering.py renders the alert emails in.
# The test calls this when no Chromium is found (set AIRFLOW_ALERTER_NO_INSTALL=1 to stop it);
# run it by hand to install ahead. Exits non-zero, saying why, when it cannot install.
set -euo pipefail

for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
        echo "Chromium present: $(command -v "$name")"
        exit 0
    fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "cannot install Chromium: no apt-get on this machine; install a Chromium and put it on PATH" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then
        exec sudo -n "$0" "$@"
    fi
    echo "cannot install Chromium: apt-get needs root (or passwordless sudo)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
echo "installed $(chromium --version)"
