// qwen2: as llama, with biases on the q/k/v projections and NeoX-style RoPE (rotating dims i, i + n_rot/2).
#include "model/hparams.h"

namespace cw::model {
extern const ArchSpec kArchQwen2 = {"qwen2", kernels::RopeStyle::kNeox, /*qkv_bias=*/true};
}  // namespace cw::model
