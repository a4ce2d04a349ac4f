#!/usr/bin/env bash
# Installs Debian's Chromium, which tests/test_email_rendering.py renders the alert emails in, and its
# chromedriver (package chromium-driver), through which tests/webdriver.py clicks links and buttons.
# The tests call this when either is missing (set AIRFLOW_ALERTER_NO_INSTALL=1 to stop them);
# run it by hand to install ahead. Exits non-zero, saying why, when it cannot install.
set -euo pipefail

missing=()
browser=""
for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
        browser="$(command -v "$name")"
        break
    fi
done
if [ -n "$browser" ]; then
    echo "Chromium present: $browser"
else
    missing+=(chromium)
fi
if command -v chromedriver >/dev/null 2>&1; then
    echo "chromedriver present: $(command -v chromedriver)"
else
    missing+=(chromium-driver)
fi
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "cannot install ${missing[*]}: no apt-get on this machine; install Chromium and its chromedriver and put them on PATH" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then
        exec sudo -n "$0" "$@"
    fi
    echo "cannot install ${missing[*]}: apt-get needs root (or passwordless sudo)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
    echo "cannot install ${missing[*]}: apt-get update failed" >&2
    exit 1
fi
if ! apt-get install -y -qq "${missing[@]}" >/dev/null; then
    echo "cannot install ${missing[*]}: apt-get install failed" >&2
    exit 1
fi
for name in "${missing[@]}"; do
    binary="${name/chromium-driver/chromedriver}"
    if ! command -v "$binary" >/dev/null 2>&1; then
        echo "cannot install ${missing[*]}: apt-get finished but there is no $binary on PATH" >&2
        exit 1
    fi
    echo "installed $("$binary" --version)"
done
