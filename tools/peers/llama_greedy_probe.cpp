// Peer probe (not part of the chunkwise build): greedy decoding with llama.cpp's public API, printing per
// step "token id:logit ..." for the five highest logits, to compare llama.cpp on THIS machine with the
// reference files and with chunkwise (tools/peers/compare_greedy.py). Build against a llama.cpp checkout
// built outside the repository:
//   g++ -O2 -std=c++17 llama_greedy_probe.cpp -I$LLAMA/include -I$LLAMA/ggml/include -L$LLAMA/build/bin \
//       -lllama -lggml -lggml-base -Wl,-rpath,$LLAMA/build/bin -o llama_greedy_probe
// Usage: llama_greedy_probe MODEL.gguf STEPS TOKEN_ID...   (FA=1 in the environment: flash attention)
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <string>
int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL.gguf STEPS TOKEN_ID...\n", argv[0]);
    return 2;
  }
  llama_backend_init();
  auto mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (model == nullptr) return 1;
  int steps = atoi(argv[2]);
  std::vector<llama_token> toks;
  for (int i = 3; i < argc; ++i) toks.push_back(atoi(argv[i]));
  auto cp = llama_context_default_params();
  cp.n_ctx = 512; cp.n_batch = 512; cp.n_threads = 2; cp.n_threads_batch = 2;
  if (getenv("FA")) cp.flash_attn = true;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) return 1;
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  llama_batch b = llama_batch_get_one(toks.data(), toks.size());
  if (llama_decode(ctx, b)) return 1;
  for (int s = 0; s < steps; ++s) {
    float* lg = llama_get_logits_ith(ctx, -1);
    std::vector<int> idx(n_vocab);
    for (int i = 0; i < n_vocab; ++i) idx[i] = i;
    std::partial_sort(idx.begin(), idx.begin() + 5, idx.end(), [&](int a, int c) { return lg[a] > lg[c]; });
    printf("%d", idx[0]);
    for (int k = 0; k < 5; ++k) printf(" %d:%.9g", idx[k], lg[idx[k]]);
    printf("\n");
    llama_token t = idx[0];
    llama_batch one = llama_batch_get_one(&t, 1);
    if (llama_decode(ctx, one)) return 1;
  }
  return 0;
}
