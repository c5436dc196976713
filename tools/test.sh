#!/usr/bin/env bash
# Quick start, command 2: build (incremental) and run every test except those that need a GPU.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tools/install-deps.sh
tools/build.sh
ctest --test-dir build/release --output-on-failure -j2 -LE cuda "$@"
