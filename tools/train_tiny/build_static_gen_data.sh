#!/usr/bin/env bash
# A static `gen-data` for the GPU machine (issue 14): its image lacks this machine's ICU / tree-sitter /
# SQLite libraries, so the training data generator travels as one self-contained executable (~3.4 MB) and
# makes the data there. Output is byte-identical to `chunkwise gen-data` (checked here with cmp).
# usage: tools/train_tiny/build_static_gen_data.sh [BUILD_DIR=build/release] [OUT=.train/cw-gen-data]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build/release}"
out="${2:-$root/.train/cw-gen-data}"
ninja -C "$build" chunkwise >/dev/null
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/main.cc" <<'CC'
namespace cw::app { int gen_data_main(int argc, char** argv); }
int main(int argc, char** argv) { return cw::app::gen_data_main(argc, argv); }
CC
objs="$build/apps/chunkwise/CMakeFiles/chunkwise.dir"
mkdir -p "$(dirname "$out")"
g++ -O2 -static -o "$out.tmp" "$tmp/main.cc" "$objs/gen_data_cmd.cc.o" "$objs/args.cc.o" \
  "$build/src/eval/libcw_haystack.a" "$build/src/tokenizer/libcw_tokenizer.a" "$build/src/gguf/libcw_gguf.a" \
  "$build/src/base/libcw_base.a" -licuuc -licudata -lz -lpthread -ldl 2> >(grep -v -e dlopen -e 'putil' >&2 || true)
mv "$out.tmp" "$out"
# Check: the same samples as the dynamic binary, byte for byte (the word list is the default one).
vocab="$tmp/vocab.gguf"
"$build/apps/chunkwise/chunkwise" train-tokenizer --vocab-size 300 --gen 'recipe=mix,n=50,length=500,seed=1' -o "$vocab" >/dev/null
"$out" gen-data --recipe mix --n 50 --seed 9 --length 300,900 --vocab "$vocab" --format tok -o "$tmp/a.tok" -q
"$build/apps/chunkwise/chunkwise" gen-data --recipe mix --n 50 --seed 9 --length 300,900 --vocab "$vocab" --format tok -o "$tmp/b.tok" -q
cmp "$tmp/a.tok" "$tmp/b.tok"
echo "wrote $out ($(stat -c %s "$out") bytes; output identical to chunkwise gen-data)"
