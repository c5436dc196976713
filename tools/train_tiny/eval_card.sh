#!/usr/bin/env bash
# The model card's evaluation tables (issue 14), on the CPU:
#   within the window: passkey and four needles with one asked (multi), lengths up to W, depths 0..1,
#     TRIALS_IN trials per cell (default 100);
#   beyond the window: passkey at 2x, 4x, 8x W for `full` and `sink_window`, TRIALS_OUT trials per cell
#     (default 5: full at 8x W takes ~25 s a trial on 2 cores);
#   per-recipe accuracy at 1W for kv, extract and quote;
#   answers on real documents: `eval ask` on ../shared/data/chunking_eval when present, quoting (the default)
#   and with --free-answer.
# Writes JSON and SVG heatmaps to OUT (default docs/needle). Usage:
#   tools/train_tiny/eval_card.sh [MODEL] [OUT]      (THREADS, TRIALS_IN, TRIALS_OUT from the environment)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${CW_BIN:-$root/build/release/apps/chunkwise/chunkwise}"
model="${1:-$root/models/chunkwise-tiny-q8_0.gguf}"
out="${2:-$root/docs/needle}"
threads="${THREADS:-2}"
tin="${TRIALS_IN:-100}"
tout="${TRIALS_OUT:-5}"
mkdir -p "$out"
run() { echo "+ chunkwise $*" >&2; "$bin" "$@"; }

run eval needle -m "$model" -t "$threads" --recipe passkey --lengths 256,512,1024,1W --depths 0,0.25,0.5,0.75,1 \
  --trials "$tin" --json --plot "$out/passkey-window.svg" > "$out/passkey-window.json"
run eval needle -m "$model" -t "$threads" --recipe multi --needles 4 --lengths 256,512,1024,1W \
  --depths 0,0.25,0.5,0.75,1 --trials "$tin" --json --plot "$out/multi4-window.svg" > "$out/multi4-window.json"
for r in kv extract quote; do
  run eval needle -m "$model" -t "$threads" --recipe $r --lengths 1W --depths 0,0.5,1 --trials "$tin" --json \
    > "$out/$r-1w.json"
done
run eval needle -m "$model" -t "$threads" --recipe passkey --lengths 2W,4W,8W --depths 0,0.5,1 --trials "$tout" \
  --kv-policy full --kv-policy sink_window:sinks=4,window=1792 --json --plot "$out/passkey-beyond.svg" \
  > "$out/passkey-beyond.json"
data="$root/../shared/data/chunking_eval"
if [ -d "$data" ]; then
  run eval ask -m "$model" -t "$threads" --corpora "$data/corpora" --questions "$data/questions.csv" --json \
    > "$out/eval-ask-chunking_eval.json"
  run eval ask -m "$model" -t "$threads" --corpora "$data/corpora" --questions "$data/questions.csv" --json \
    --free-answer > "$out/eval-ask-chunking_eval-free.json"
fi
echo "wrote $out" >&2
