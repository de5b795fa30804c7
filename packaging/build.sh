#!/usr/bin/env bash
# Linux/macOS convenience wrapper (`make package`, `make package-lite`): set up .venv, then run
# the cross-platform build script packaging/build.py with it. On Windows (or in CI) run
# `python packaging/build.py full|lite` with the environment's Python directly.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-full}"
case "$flavour" in full|lite) ;; *) echo "usage: $0 full|lite" >&2; exit 2;; esac
scripts/setup.sh package   # the app and PyInstaller: no test tools, no Ray (the bundles leave it out)
exec .venv/bin/python packaging/build.py "$flavour"
