// chunkwise convert --safetensors FILE --config FILE.json --vocab VOCAB.gguf --type f32|f16|q8_0 -o OUT.gguf
#include <cstdio>
#include <string>

#include "args.h"
#include "base/file_io.h"
#include "commands.h"
#include "model/convert.h"

namespace cw::app {

int convert_main(int argc, char** argv) {
  model::ConvertOptions opts;
  ArgParser p("convert", "--safetensors FILE --config FILE.json --vocab VOCAB.gguf --type f32|f16|q8_0 -o OUT.gguf",
              "Converts trained weights to a GGUF model through the project's own writer. The safetensors\n"
              "file holds F32/F16/BF16 tensors named as in llama.cpp's GGUF files (token_embd.weight,\n"
              "blk.N.attn_q.weight, ..., output.weight optional) in PyTorch's [n_out, n_in] layout; the config\n"
              "is {\"arch\":\"llama\",\"n_embd\":..,\"n_layer\":..,\"n_head\":..,\"n_head_kv\":..,\"n_ff\":..,\"n_ctx\":..,\n"
              "\"rope_freq_base\":..,\"rms_eps\":..}; all tokenizer.* metadata is copied from VOCAB.gguf.");
  p.option("--safetensors", &opts.safetensors_path, "FILE", "weights (required)");
  p.option("--config", &opts.config_path, "FILE.json", "hyper-parameters (required)");
  p.option("--vocab", &opts.vocab_path, "VOCAB.gguf", "GGUF file to take the vocabulary from (required)");
  p.option("--type", &opts.type, "T", "f32, f16 or q8_0 (default f16)");
  p.option("-o,--output", &opts.out_path, "OUT.gguf", "file to write (required)");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("convert", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (opts.safetensors_path.empty()) return report_error("convert", invalid_argument("--safetensors FILE is required (see --help)"));
  if (opts.config_path.empty()) return report_error("convert", invalid_argument("--config FILE.json is required (see --help)"));
  if (opts.vocab_path.empty()) return report_error("convert", invalid_argument("--vocab VOCAB.gguf is required (see --help)"));
  if (opts.out_path.empty()) return report_error("convert", invalid_argument("-o OUT.gguf is required (see --help)"));
  if (Status s = check_output_not_input(opts.out_path, {opts.safetensors_path, opts.config_path, opts.vocab_path});
      !s.is_ok())
    return report_error("convert", s);
  auto r = model::convert_safetensors(opts);
  if (!r.is_ok()) return report_error("convert", r.status());
  std::printf("wrote %s: %s, %zu tensors, %.3f M params, n_vocab %lld, %.1f MB\n", opts.out_path.c_str(),
              model::file_type_name(r->file_type), r->n_tensors, static_cast<double>(r->n_params) / 1e6,
              static_cast<long long>(r->n_vocab), static_cast<double>(r->file_bytes) / 1e6);
  return kExitOk;
}

}  // namespace cw::app
