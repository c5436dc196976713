#!/usr/bin/env bash
# Installs the tree-sitter grammars used by the `code` chunker (src/text/code_chunker.cc) into a cache
# directory OUTSIDE the repository; nothing fetched here is ever committed.
#
#   directory: $CW_GRAMMAR_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/chunkwise/grammars
#              (cmake/CwTreeSitter.cmake looks in the same place; re-run cmake after installing)
#   source:    the npm packages tree-sitter-<lang>, which ship the generated src/parser.c (+ scanner.c).
#              `npm pack` fetches the published tarball only (no install scripts, no dependencies); each
#              tarball is checked against the sha256 pinned below.
#   versions:  pinned so that every parser.c is generated for tree-sitter language ABI 14, the newest ABI
#              that Debian 12's libtree-sitter (0.20.7: ABI 13..14) loads. The script re-checks
#              LANGUAGE_VERSION of each parser.c and refuses a grammar outside 13..14.
#
# Idempotent: a grammar whose pinned version is already unpacked is left alone. Without npm the script
# says so and exits 0: the build still succeeds, the code chunker reports the missing languages and its
# tests skip. Set CW_SKIP_GRAMMARS=1 to skip on purpose.
set -euo pipefail

# name  npm-version  sha256-of-tarball
pins=(
  "c           0.20.8 b7e6ce01857b7773696e4d3f51392cef7d7e555fdb12276ca0cc3b80a480fa7f"
  "cpp         0.20.5 9caa0a196fe14c195268321f4e527c6b1a223a86a7341e015f13b9e8dd4c5950"
  "python      0.20.4 644cb3faabb8faae1a1c734d1a636f94f40b18e94265f018c4b90dc8cb9b00ba"
  "javascript  0.20.4 965ad1cdbcd2383329d1d93de69fcbdde08602cc8c8f6131d6023b42007e7bc7"
  "typescript  0.20.5 672b2398dd8ea98b8b9afb9e56bd85a180300e470a67ff9dfbb73beb8a3b5a21"
  "go          0.20.0 f00b76a2948e3cc0dc815aab644000af5e33de88b01790d20b1d993ae4cdf9da"
  "rust        0.20.4 d41e06911cbb3a621259be5318d43f5e9442dd239b13f7186f254c63c0c524d1"
  "java        0.20.2 0d867548504a225adec1acdd4dd953236a2c05fa15b4a1326920cd105c3516b5"
)

if [ "${CW_SKIP_GRAMMARS:-0}" = "1" ]; then
  echo "install-grammars: skipped (CW_SKIP_GRAMMARS=1)"
  exit 0
fi
home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
dir="${CW_GRAMMAR_DIR:-${XDG_CACHE_HOME:-$home/.cache}/chunkwise/grammars}"
if ! command -v npm >/dev/null 2>&1; then
  echo "install-grammars: npm not found; the code chunker will be built without grammars" \
       "(install Node.js + npm, then run tools/install-grammars.sh)" >&2
  exit 0
fi
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

installed=0
for line in "${pins[@]}"; do
  read -r lang version sha <<<"$line"
  dest="$dir/tree-sitter-$lang"
  if [ -f "$dest/.cw-version" ] && [ "$(cat "$dest/.cw-version")" = "$version $sha" ]; then
    continue
  fi
  for attempt in 1 2 3; do  # the registry may hiccup: retry before failing loudly
    (cd "$tmp" && npm pack --silent --no-audit --no-fund "tree-sitter-$lang@$version" >/dev/null) && break
    [ "$attempt" -lt 3 ] || { echo "install-grammars: npm pack tree-sitter-$lang@$version failed" >&2; exit 1; }
    sleep $((attempt * 5))
  done
  tarball="$tmp/tree-sitter-$lang-$version.tgz"
  [ -f "$tarball" ] || { echo "install-grammars: npm pack did not produce $tarball" >&2; exit 1; }
  got="$(sha256sum "$tarball" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    echo "install-grammars: checksum mismatch for tree-sitter-$lang@$version ($got, expected $sha)" >&2
    exit 1
  fi
  rm -rf "$tmp/unpack" && mkdir -p "$tmp/unpack"
  tar xzf "$tarball" -C "$tmp/unpack"
  # Keep only what the build needs: the generated parsers, scanners, their headers and the licence.
  while IFS= read -r parser; do
    abi="$(grep -a -m1 '^#define LANGUAGE_VERSION' "$parser" | awk '{print $3}')"
    if [ -z "$abi" ] || [ "$abi" -lt 13 ] || [ "$abi" -gt 14 ]; then
      echo "install-grammars: $parser has language ABI '${abi}', Debian 12's libtree-sitter loads 13..14" >&2
      exit 1
    fi
  done < <(find "$tmp/unpack/package" -name parser.c)
  rm -rf "$tmp/unpack/package/bindings" "$tmp/unpack/package/node_modules"
  rm -rf "$dest"
  mv "$tmp/unpack/package" "$dest"
  echo "$version $sha" >"$dest/.cw-version"
  installed=$((installed + 1))
done
echo "install-grammars: ${#pins[@]} grammar packages (9 languages) in $dir ($installed newly installed)"
