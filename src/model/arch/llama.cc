// llama: Llama 1/2/3, Mistral, and other GGUFs with general.architecture = "llama".
// RMSNorm, RoPE on adjacent pairs, SwiGLU FFN, GQA, optional rope_freqs (Llama 3 rope scaling).
#include "model/hparams.h"

namespace cw::model {
extern const ArchSpec kArchLlama = {"llama", kernels::RopeStyle::kNormal, /*qkv_bias=*/false};
}  // namespace cw::model
