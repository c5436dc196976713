#!/usr/bin/env bash
# Installs the Debian packages of tools/debian-packages.txt (as root; skips apt when all are present), and the
# npm pieces some tests use into a cache outside the repository (each script exits 0 without npm).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/tools/install-grammars.sh"  # tree-sitter grammars for the code chunker (npm, outside git)
"$root/tools/install-openai-client.sh"  # the openai npm package of the server's client test (outside git)
mapfile -t pkgs < <(grep -vE '^\s*(#|$)' "$root/tools/debian-packages.txt")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
