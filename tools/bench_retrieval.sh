#!/usr/bin/env bash
# Retrieval scale benchmark (issue 13): ~100 MB of text made by shuffling the paragraphs of the three
# chunking-eval corpora with a seeded generator (into a temp dir, never the repo), `chunkwise index build`
# MB/s (BM25 only), then query latency p50/p99 at k=10 over the eval questions (one process per query, so
# the figure includes opening the index; and in-process through one long-lived query loop).
# usage: tools/bench_retrieval.sh BUILD_DIR [OUT_DIR=/tmp/cw_retrieval_bench] [MB=100] [THREADS=2]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:?build dir}/apps/chunkwise/chunkwise"
out="${2:-/tmp/cw_retrieval_bench}"
mb="${3:-100}"
threads="${4:-2}"
data="$root/../shared/data/chunking_eval"
mkdir -p "$out"
python3 - "$data/corpora" "$out/corpus" "$mb" <<'PY'
import os, random, sys
src, dst, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
paras = []
for name in sorted(os.listdir(src)):
    with open(os.path.join(src, name), encoding="utf-8") as f:
        paras += [p for p in f.read().split("\n\n") if p.strip()]
rng = random.Random(13)
os.makedirs(dst, exist_ok=True)
total, i = 0, 0
while total < mb * 1_000_000:
    size = rng.randint(20_000, 200_000)
    parts, n = [], 0
    while n < size:
        p = rng.choice(paras)
        parts.append(p)
        n += len(p.encode()) + 2
    data = "\n\n".join(parts) + "\n"
    sub = os.path.join(dst, f"d{i % 16:02d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"doc{i:05d}.md"), "w", encoding="utf-8") as f:
        f.write(data)
    total += len(data.encode())
    i += 1
print(f"{i} files, {total / 1e6:.1f} MB in {dst}")
PY
rm -f "$out/index.db" "$out/index.db-wal" "$out/index.db-shm"
uptime
/usr/bin/time -f "index build: %e s wall, %U s user, %S s sys, %M KB max RSS" "$bin" index build --threads "$threads" --db "$out/index.db" "$out/corpus"
ls -la "$out/index.db"
python3 - "$bin" "$out/index.db" "$data/questions.csv" <<'PY'
import csv, subprocess, sys, time
bin, db, questions = sys.argv[1:4]
qs = [r["question"] for r in csv.DictReader(open(questions, encoding="utf-8"))][:200]
import resource
lat, cpu = [], []
for q in qs:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([bin, "query", "--db", db, "-k", "10", "--json", q], check=True, stdout=subprocess.DEVNULL)
    lat.append((time.perf_counter() - t) * 1000)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print(f"query (process per query, k=10, {len(lat)} questions): wall p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
      f"max {max(lat):.1f} ms; CPU (user+sys) p50 {pct(cpu, 50):.1f} ms, p99 {pct(cpu, 99):.1f} ms")
PY
