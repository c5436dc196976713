#!/usr/bin/env bash
# The server load comparison of issue 15 (docs/perf.md): 64 streaming clients (tools/loadgen, one connection
# per request, 64 tokens each) against `chunkwise serve` with 64 and 16 parallel requests and, when
# LLAMA_SERVER points at a llama.cpp `llama-server` built outside this repository, against it with 16 and 64
# slots — the same model, threads, KV size (8,192 tokens), clients and machine. One JSON line per server.
# usage: tools/bench_serve.sh MODEL.gguf [OUT_DIR=/tmp/cw_bench_serve] [SECONDS=60] [THREADS=2]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:?usage: tools/bench_serve.sh MODEL.gguf [OUT_DIR] [SECONDS] [THREADS]}"
out="${2:-/tmp/cw_bench_serve}"
dur="${3:-60}"
threads="${4:-2}"
cw="$root/build/release/apps/chunkwise/chunkwise"
lg="$root/build/release/tools/loadgen/cw-loadgen"
mkdir -p "$out"
run() {  # name port command...
  local name=$1 port=$2
  shift 2
  "$@" > "$out/$name.server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.2; done
  "$lg" --url "http://127.0.0.1:$port" --clients 64 --duration "$dur" --warmup 10 --max-tokens 64 --pid "$pid" \
    --json > "$out/$name.json" || true
  echo "$name $(cat "$out/$name.json")"
  kill "$pid"
  wait "$pid" 2> /dev/null || true
}
run chunkwise-parallel64 18601 "$cw" serve -m "$model" --port 18601 -t "$threads" --parallel 64 --queue 256 --ctx 8192
run chunkwise-parallel16 18602 "$cw" serve -m "$model" --port 18602 -t "$threads" --parallel 16 --queue 256 --ctx 8192
if [ -n "${LLAMA_SERVER:-}" ]; then
  run llama-server-np16 18603 "$LLAMA_SERVER" -m "$model" --port 18603 -t "$threads" -np 16 -c 8192
  run llama-server-np64 18604 "$LLAMA_SERVER" -m "$model" --port 18604 -t "$threads" -np 64 -c 8192
fi
