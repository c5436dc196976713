#!/usr/bin/env bash
# Builds the GGUF reader's libFuzzer harness with clang (ASan + UBSan + LeakSanitizer) outside the CMake
# tree, writes the seed corpus, and fuzzes for SECONDS (default 60).
#   usage: tools/fuzz_gguf.sh [SECONDS] [WORKDIR]
# Exit code 0 only when the fuzzer ran the whole time with no crash, leak or sanitizer report.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"
work="${2:-$root/build/fuzz-gguf}"
cxx="${CXX_FUZZ:-clang++}"
command -v "$cxx" >/dev/null || { echo "fuzz_gguf: $cxx not found (apt-get install clang libclang-rt-dev)"; exit 2; }
mkdir -p "$work/corpus" "$work/seeds"
srcs=("$root/src/base/status.cc" "$root/src/base/file_io.cc" "$root/src/base/mapped_file.cc" "$root/src/base/utf8.cc"
      "$root/src/gguf/types.cc" "$root/src/gguf/reader.cc" "$root/src/gguf/writer.cc")
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I"$root/src" -I"$root/include")
"$cxx" "${flags[@]}" "${srcs[@]}" "$root/fuzz/make_seeds.cc" -o "$work/make_seeds"
"$work/make_seeds" "$work/seeds"
"$cxx" "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  "${srcs[@]}" "$root/fuzz/gguf_fuzz.cc" -o "$work/gguf_fuzz"
cd "$work"
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ./gguf_fuzz -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=4096 \
  -print_final_stats=1 corpus seeds 2>&1 | tee fuzz.log | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' || true
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY:' fuzz.log; then
  echo "fuzz_gguf: FAILED (see $work/fuzz.log)"; exit 1
fi
grep -q 'Done [0-9]* runs' fuzz.log || { echo "fuzz_gguf: fuzzer did not finish (see $work/fuzz.log)"; exit 1; }
echo "fuzz_gguf: ok"
