#!/usr/bin/env bash
# Past the trained window (issue 16), on the CPU: the pass key at 8x and 32x W for chunk_select (50 haystacks
# a cell) beside sink_window (10 a cell), compress (keeping 12% of the prompt's KV) within the window
# (100 a cell, the grid of the card's passkey-window.json for full), and retain from 8x to 512x W. JSON and SVG heatmaps to OUT (default
# docs/needle). JOBS haystacks run at once (default 2, one thread each). Usage:
#   tools/train_tiny/eval_beyond.sh [MODEL] [OUT]
# About 3 hours on the 2-core development machine (32x W: ~40 s a haystack on one thread; 512x W: ~8 min).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${CW_BIN:-$root/build/release/apps/chunkwise/chunkwise}"
model="${1:-$root/models/chunkwise-tiny-q8_0.gguf}"
out="${2:-$root/docs/needle}"
jobs="${JOBS:-2}"
mkdir -p "$out"
run() { echo "+ chunkwise $*" >&2; "$bin" "$@"; }
needle() { run eval needle -m "$model" --recipe passkey -q --json -t 1 -j "$jobs" "$@"; }

needle --lengths 8W --depths 0,0.25,0.5,0.75,1 --trials 50 --kv-policy chunk_select \
  --plot "$out/chunk-select-8w.svg" > "$out/chunk-select-8w.json"
needle --lengths 32W --depths 0,0.5,1 --trials 50 --kv-policy chunk_select \
  --plot "$out/chunk-select-32w.svg" > "$out/chunk-select-32w.json"
needle --lengths 8W,32W --depths 0,0.5,1 --trials 10 --kv-policy sink_window:sinks=4,window=1792 \
  --plot "$out/sink-window-8w-32w.svg" > "$out/sink-window-8w-32w.json"
needle --lengths 256,512,1024,1W --depths 0,0.25,0.5,0.75,1 --trials 100 --kv-policy compress \
  --plot "$out/compress-window.svg" > "$out/compress-window.json"
# retain (InfiniRetri: chunk by chunk within 512 + 544 slots, linear time): 8x, 32x W, then the length push
# to 128x and 512x W (1,048,512 tokens: ~8 minutes a haystack on one thread, so 2 a cell).
needle --lengths 8W --depths 0,0.25,0.5,0.75,1 --trials 50 --kv-policy retain \
  --plot "$out/retain-8w.svg" > "$out/retain-8w.json"
needle --lengths 32W --depths 0,0.25,0.5,0.75,1 --trials 10 --kv-policy retain \
  --plot "$out/retain-32w.svg" > "$out/retain-32w.json"
needle --lengths 128W --depths 0,0.5,1 --trials 2 --kv-policy retain \
  --plot "$out/retain-128w.svg" > "$out/retain-128w.json"
needle --lengths 512W --depths 0,0.5,1 --trials 2 --kv-policy retain \
  --plot "$out/retain-512w.svg" > "$out/retain-512w.json"
# The two routes to long input side by side: ask with retrieval (BM25 chunks that fit W) and with attention
# (every chunk through chunk_select), 10 haystacks a cell.
for r in passkey; do
  for mode in retrieval attention; do
    run eval needle -m "$model" --recipe $r -q --json -t 1 -j "$jobs" --lengths 2W,8W --depths 0,0.5,1 --trials 10 \
      --ask $mode > "$out/ask-$r-$mode.json"
  done
done
