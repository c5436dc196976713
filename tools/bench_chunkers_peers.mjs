// Times the npm chunking peers on the same corpus as tools/bench_chunkers.sh (copied next to their
// node_modules by that script, which installs them into a temporary directory outside the repository).
// usage: node bench_chunkers_peers.mjs CORPUS_DIR [SIZE=512] [RUNS=3]
// Prints one line per peer: name, median seconds, MB/s (MB = 1e6 bytes of UTF-8 input), chunks.
// Timed: chunking all documents, already in memory as JS strings (reading files and output excluded).
import fs from "node:fs";
import path from "node:path";

const dir = process.argv[2];
const size = Number(process.argv[3] ?? 512);
const runs = Number(process.argv[4] ?? 3);
const files = fs.readdirSync(dir).filter((f) => f.endsWith(".txt")).sort();
const docs = files.map((f) => fs.readFileSync(path.join(dir, f), "utf8"));
const bytes = files.reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);

const { RecursiveChunker, FastChunker } = await import("@chonkiejs/core");
const { RecursiveCharacterTextSplitter } = await import("@langchain/textsplitters");
const { split } = await import("llm-splitter");
const { Tiktoken } = await import("js-tiktoken/lite");
const gpt2 = (await import("js-tiktoken/ranks/gpt2")).default;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function bench(name, fn, nruns = runs) {
  const times = [];
  let chunks = 0;
  for (let r = 0; r < nruns; ++r) {
    const t0 = process.hrtime.bigint();
    chunks = 0;
    for (const d of docs) chunks += (await fn(d)).length;
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const t = median(times);
  console.log(`${name}\t${t.toFixed(3)} s\t${(bytes / 1e6 / t).toFixed(1)} MB/s\t${chunks} chunks` +
              (nruns === 1 ? "\t(1 run)" : ""));
}

console.log(`# corpus ${dir}: ${docs.length} documents, ${(bytes / 1e6).toFixed(1)} MB; size ${size}; median of ${runs}`);
const chonkieRec = await RecursiveChunker.create({ chunkSize: size });
await bench("chonkiejs RecursiveChunker (chars)", (d) => chonkieRec.chunk(d));
const chonkieFast = await FastChunker.create({ chunkSize: size });
await bench("chonkiejs FastChunker (bytes)", (d) => chonkieFast.chunk(d));
const lc = new RecursiveCharacterTextSplitter({ chunkSize: size, chunkOverlap: 0 });
await bench("LangChain JS RecursiveCharacterTextSplitter (chars)", (d) => lc.splitText(d));
await bench("llm-splitter split (chars, paragraph strategy)", (d) =>
  split(d, { chunkSize: size, chunkOverlap: 0, chunkStrategy: "paragraph" }));
if (process.env.CW_PEERS_TOKENS !== "0") {
  const enc = new Tiktoken(gpt2);
  const lct = new RecursiveCharacterTextSplitter({
    chunkSize: size, chunkOverlap: 0, lengthFunction: (t) => enc.encode(t).length });
  // About a minute per run: timed once.
  await bench("LangChain JS RecursiveCharacterTextSplitter (gpt-2 tokens, js-tiktoken)", (d) => lct.splitText(d), 1);
}
