#include "model/weights.h"

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::model {

// Binds a 2-D matrix with GGUF shape {n_in, n_out}.
Status bind_matrix(const gguf::File& f, const std::string& name, int64_t n_in, int64_t n_out, WeightRef* out) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (t == nullptr) return data_loss("tensor '" + name + "' is missing");
  if (t->shape.size() != 2 || static_cast<int64_t>(t->shape[0]) != n_in || static_cast<int64_t>(t->shape[1]) != n_out)
    return data_loss("tensor '" + name + "' has shape {" + std::to_string(t->shape[0]) +
                     (t->shape.size() > 1 ? ", " + std::to_string(t->shape[1]) : "") + "}, expected {" +
                     std::to_string(n_in) + ", " + std::to_string(n_out) + "}");
  if (!kernels::matmul_supports(static_cast<uint32_t>(t->type)))
    return unimplemented("tensor '" + name + "': type " + gguf::type_traits(t->type).name +
                         " is not supported for weights (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
                         "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
  *out = WeightRef{t->data, static_cast<uint32_t>(t->type), n_in, n_out};
  return Status::ok();
}

// Reads a 1-D vector of n elements (any supported type) into fp32.
Status read_vector(const gguf::File& f, const std::string& name, int64_t n, std::vector<float>* out) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (t == nullptr) return data_loss("tensor '" + name + "' is missing");
  if (t->shape.size() != 1 || static_cast<int64_t>(t->shape[0]) != n)
    return data_loss("tensor '" + name + "' should be a vector of " + std::to_string(n) + " elements");
  if (kernels::quant_traits(static_cast<uint32_t>(t->type)) == nullptr)
    return unimplemented("tensor '" + name + "': unsupported type " + gguf::type_traits(t->type).name);
  out->resize(static_cast<size_t>(n));
  kernels::get_row_ref(t->data, static_cast<uint32_t>(t->type), n, 0, out->data());
  return Status::ok();
}

}  // namespace cw::model
