// The subcommand table. Each subcommand lives in its own file (<name>_cmd.cc) and only parses arguments,
// calls the library, and prints; no engine logic here.
#pragma once

namespace cw::app {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*main)(int argc, char** argv);  // argv[1] is the subcommand name
};

int inspect_main(int argc, char** argv);
int make_model_main(int argc, char** argv);
int tokenize_main(int argc, char** argv);
int perplexity_main(int argc, char** argv);
int run_main(int argc, char** argv);
int batch_main(int argc, char** argv);
int bench_main(int argc, char** argv);
int chunk_main(int argc, char** argv);
int embed_main(int argc, char** argv);
int eval_main(int argc, char** argv);  // the `eval` group: eval_commands.h
int index_main(int argc, char** argv);
int query_main(int argc, char** argv);
int gen_data_main(int argc, char** argv);
int train_tokenizer_main(int argc, char** argv);
int convert_main(int argc, char** argv);
int ask_main(int argc, char** argv);
// `chunkwise serve` runs the server program, chunkwise-serve, installed next to chunkwise (serve_exec.cc):
// only it links the HTTP stack (cpp-httplib, OpenSSL, brotli), whose loading and start-up would otherwise
// cost every short-lived command (a `query` process) several milliseconds. serve_main is its entry point.
int serve_exec_main(int argc, char** argv);
int serve_main(int argc, char** argv);

inline constexpr Subcommand kSubcommands[] = {
    {"ask", "answer a question from documents (BM25 + the model; cites its sources)", ask_main},
    {"inspect", "show a GGUF file's metadata and tensor table", inspect_main},
    {"tokenize", "tokenize text with the vocabulary of a GGUF file", tokenize_main},
    {"perplexity", "perplexity of a text file (llama.cpp's method)", perplexity_main},
    {"run", "generate text from a prompt", run_main},
    {"serve", "OpenAI-compatible HTTP server: completions, chat (SSE), embeddings, metrics", serve_exec_main},
    {"batch", "generate for many prompts at once (JSON lines in, JSON lines out)", batch_main},
    {"bench", "prefill / decode throughput (like llama-bench)", bench_main},
    {"chunk", "split documents into chunks with exact offsets (JSON lines)", chunk_main},
    {"embed", "embedding vectors of texts (bert embedding models, or a decoder mean-pooled)", embed_main},
    {"index", "build, inspect or prune a document index (SQLite: BM25 + vectors)", index_main},
    {"query", "retrieve the chunks of an index that answer a question", query_main},
    {"eval", "evaluations: chunking, needle, ask (chunkwise eval --help)", eval_main},
    {"gen-data", "generate needle-in-a-haystack samples (deterministic; JSON lines)", gen_data_main},
    {"train-tokenizer", "train a byte-level BPE vocabulary (GGUF gpt2) on text or generated data",
     train_tokenizer_main},
    {"convert", "trained weights (safetensors + JSON config) to a GGUF model: f32, f16, q8_0", convert_main},
    {"make-model", "write a random-weight GGUF model at a real shape (llama, qwen2, bert)", make_model_main},
};

}  // namespace cw::app
