#!/usr/bin/env bash
# Configures and builds the release tree (build/release) with 2 jobs; incremental when already built.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ -f build/release/build.ninja ] || cmake --preset release >/dev/null
cmake --build --preset release
