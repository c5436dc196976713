#!/usr/bin/env bash
# One training call on the lent GPU machine: generate the data there with the static generator, train, and
# leave the log, loss curve and the exported weights (split into 15 MB parts) under $OUT/run.
# Usage: RUN=r4 RECIPES="multi multi ..." SEED0=200 N=40000 TRAIN_ARGS="..." tools/train_tiny/gpu_run.sh
set -euo pipefail
: "${RUN:?}" "${RECIPES:?}" "${SEED0:?}" "${N:?}" "${TRAIN_ARGS:?}"
LENGTHS=${LENGTHS:-240,480,1000,1500,2000}
OUT=${OUT:-/tmp/out}
data=/tmp/data; run=$OUT/run
mkdir -p "$data" "$run"
i=0
for r in $RECIPES; do
  i=$((i + 1))
  .train/cw-gen-data gen-data --recipe "$r" --n "$N" --seed $((SEED0 + i)) --length "$LENGTHS" \
    --vocab .train/vocab.gguf --words .train/american-english --format tok -o "$data/$r-$i.tok" -q &
done
wait
ls -l "$data" > "$run/data.txt"
export PYTHONUNBUFFERED=1
# shellcheck disable=SC2086
python3 tools/train_tiny/train.py $(for f in "$data"/*.tok; do echo --data "$f"; done) \
  --eval-data .train/eval.min.jsonl.gz --eval-every 500 --bucket 256 --batch-tokens 65536 --log-every 100 \
  --compile --out-dir /tmp/run --export /tmp/run/model.safetensors --name "chunkwise-tiny-$RUN" \
  $TRAIN_ARGS > "$run/train.out" 2>&1 || { tail -30 "$run/train.out"; exit 1; }
cp /tmp/run/log.txt /tmp/run/loss.csv /tmp/run/config.json "$run/"
split -b 15M -d /tmp/run/model.safetensors "$run/model.safetensors.part"
sha256sum /tmp/run/model.safetensors > "$run/model.sha256"
tail -5 "$run/log.txt"
