#!/usr/bin/env bash
# Chunking throughput: chunkwise chunk vs the npm peers (@chonkiejs/core, @langchain/textsplitters,
# llm-splitter) on the same >= 25 MB corpus of real text. Results go to docs/perf.md by hand.
#
# usage: tools/bench_chunkers.sh [BUILD_DIR=build/release] [RUNS=5]
# env:   CW_SHARED_DIR (default ../shared), CW_CORPUS_DIR (default /tmp/cw_chunk_corpus),
#        CW_PEERS_DIR (default /tmp/chunk_peers; npm installs the peers there, outside the repository),
#        CW_SKIP_PEERS=1 to time chunkwise only, CW_THREADS (default 2).
# Timed runs are serialized with `flock /tmp/cw_bench.lock` (other people benchmark on the same machine).
#
# Corpus: 100 documents, each the concatenation of the chunking_eval corpora (chatlogs.md,
# state_of_the_union.md, wikitexts.md) and text/stories260K-generated.txt from the shared data
# (268 kB of real English text and markdown) -> 26.8 MB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build/release}
runs=${2:-5}
shared=${CW_SHARED_DIR:-$root/../shared}
corpus=${CW_CORPUS_DIR:-/tmp/cw_chunk_corpus}
peers=${CW_PEERS_DIR:-/tmp/chunk_peers}
threads=${CW_THREADS:-2}
bin=$root/$build/apps/chunkwise/chunkwise
data=$shared/data
[ -x "$bin" ] || { echo "build chunkwise first: $bin" >&2; exit 2; }
[ -d "$data/chunking_eval" ] || { echo "shared data not found under $data" >&2; exit 2; }

if [ ! -f "$corpus/doc100.txt" ]; then
  mkdir -p "$corpus"
  for i in $(seq -w 1 100); do
    cat "$data"/chunking_eval/corpora/{chatlogs,state_of_the_union,wikitexts}.md \
        "$data"/text/stories260K-generated.txt > "$corpus/doc$i.txt"
  done
fi
bytes=$(cat "$corpus"/*.txt | wc -c)
echo "# corpus $corpus: $(ls "$corpus"/*.txt | wc -l) documents, $bytes bytes; $threads threads; median of $runs"

# Median wall time of `runs` runs of a command (seconds), each timed inside the shared benchmark lock
# (waiting for the lock is not timed).
median_time() {
  local ts=()
  for _ in $(seq "$runs"); do
    ts+=("$(flock /tmp/cw_bench.lock bash -c \
      's=$(date +%s%N); "$@" > /dev/null || exit 1; e=$(date +%s%N); echo "($e - $s) / 1000000000" | bc -l' _ "$@")")
  done
  printf '%s\n' "${ts[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

row() {  # name, command...
  local name=$1; shift
  local t; t=$(median_time "$@")
  printf '%s\t%.3f s\t%.1f MB/s\n' "$name" "$t" "$(echo "$bytes / 1000000 / $t" | bc -l)"
}

vocab=$data/vocab/ggml-vocab-gpt-2.gguf
row "chunkwise recursive, 512 chars" "$bin" chunk --method recursive --size 512 --unit chars --threads "$threads" -o /dev/null "$corpus"/*.txt
row "chunkwise recursive, 512 chars, --no-text" "$bin" chunk --method recursive --size 512 --unit chars --threads "$threads" --no-text -o /dev/null "$corpus"/*.txt
row "chunkwise token, 512 chars" "$bin" chunk --method token --size 512 --unit chars --threads "$threads" -o /dev/null "$corpus"/*.txt
row "chunkwise markdown, 512 chars" "$bin" chunk --method markdown --size 512 --unit chars --threads "$threads" -o /dev/null "$corpus"/*.txt
row "chunkwise sentence, 512 chars" "$bin" chunk --method sentence --size 512 --unit chars --threads "$threads" -o /dev/null "$corpus"/*.txt
row "chunkwise recursive, 512 gpt-2 tokens" "$bin" chunk --method recursive --size 512 --tokenizer "$vocab" --threads "$threads" -o /dev/null "$corpus"/*.txt
row "chunkwise recursive, 512 gpt-2 tokens, --no-text" "$bin" chunk --method recursive --size 512 --tokenizer "$vocab" --threads "$threads" --no-text -o /dev/null "$corpus"/*.txt
row "chunkwise token, 512 gpt-2 tokens" "$bin" chunk --method token --size 512 --tokenizer "$vocab" --threads "$threads" -o /dev/null "$corpus"/*.txt

if [ "${CW_SKIP_PEERS:-0}" != 1 ]; then
  if [ ! -d "$peers/node_modules/@chonkiejs/core" ]; then
    mkdir -p "$peers"
    (cd "$peers" && { [ -f package.json ] || npm init -y > /dev/null; } &&
      npm install --no-audit --no-fund @chonkiejs/core @langchain/textsplitters llm-splitter > /dev/null)
  fi
  cp "$root/tools/bench_chunkers_peers.mjs" "$peers/"
  (cd "$peers" && npm ls --depth=0 2>/dev/null | tail -n +2)
  flock /tmp/cw_bench.lock node "$peers/bench_chunkers_peers.mjs" "$corpus" 512 "$runs"
fi
