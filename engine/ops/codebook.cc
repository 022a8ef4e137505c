// CodebookFullyConnected (engine/INT8.md, kernels/codebook/codebook.h):
//   inputs:  X [..., K] f32 or i8 (per tensor), W u8 [O, ceil(K * bits / 8)]
//            (constant indices; 4-bit: two per byte, low nibble first, rows
//            padded to whole bytes), T f16 [2^bits] (constant, finite), B f32 [O]
//            (constant, optional)
//   attrs:   bits (4 or 8, required), activation (see common.h)
//   output:  Y [..., O] of X's dtype (i8: Y's quantisation from the graph),
//            y = B[o] + sum_k x[k] * fp32(T[W[o][k]]), clamped by the activation
//            (in Y's domain for i8, as quant.h's quantized_clamp).
// The output columns are cut at prepare into fixed slices of whole tiles,
// each packed on its own, so a run splits the slices over threads and gives
// the same bits for any thread count.
#include <algorithm>
#include <vector>

#include "engine/ops/common.h"
#include "engine/ops/conv.h"
#include "engine/ops/quant.h"
#include "kernels/codebook/codebook.h"

namespace huddle::engine::ops {
namespace {

using kernels::CodebookFcUkernel;

// Column slices of a layer big enough to be split.
constexpr size_t kSlices = 16;

class CodebookFc final : public OpKernel {
 public:
  CodebookFc(unsigned bits, size_t m, size_t n, size_t k, size_t chunk,
             std::vector<std::vector<uint8_t>> packed, bool int8, kernels::CodebookQs8Input in,
             kernels::CodebookQs8Output out8, kernels::CodebookF32Output out32)
      : uk_(&kernels::codebook_fc()),
        bits_(bits),
        m_(m),
        n_(n),
        k_(k),
        chunk_(chunk),
        packed_(std::move(packed)),
        int8_(int8),
        in_(in),
        out8_(out8),
        out32_(out32) {}

  void run(const RunContext& ctx) const override {
    const kernels::CodebookFcKernels& fn = uk_->kernels(bits_);
    ctx.pool->parallel_for(packed_.size(), 1, [&](size_t begin, size_t end) {
      for (size_t j = begin; j < end; ++j) {
        const size_t n0 = j * chunk_, n = std::min(chunk_, n_ - n0);
        if (int8_)
          fn.qs8(m_, n, k_, ctx.in<int8_t>(0), k_, packed_[j].data(), ctx.out<int8_t>(0) + n0, n_, in_,
                 out8_);
        else
          fn.f32(m_, n, k_, ctx.in<float>(0), k_, packed_[j].data(), ctx.out<float>(0) + n0, n_, out32_);
      }
    });
  }

 private:
  const CodebookFcUkernel* uk_;
  unsigned bits_;
  size_t m_, n_, k_, chunk_;
  std::vector<std::vector<uint8_t>> packed_;  // one per slice of chunk_ columns
  bool int8_;
  kernels::CodebookQs8Input in_;
  kernels::CodebookQs8Output out8_;
  kernels::CodebookF32Output out32_;
};

// The table (input 2): 2^bits finite fp16 values.
const uint16_t* codebook_table(const PrepareContext& ctx, unsigned bits) {
  const Tensor& t = ctx.require_constant(2, DType::f16, 1);
  const auto entries = static_cast<int64_t>(kernels::codebook_entries(bits));
  if (t.shape[0] != entries)
    ctx.fail("table " + shape_text(t.shape) + " needs " + std::to_string(entries) + " entries for " +
             std::to_string(bits) + "-bit indices");
  const std::span<const uint16_t> v = t.values<uint16_t>();
  for (size_t i = 0; i < v.size(); ++i)
    if ((v[i] & 0x7c00) == 0x7c00) ctx.fail("table entry " + std::to_string(i) + " is not finite");
  return v.data();
}

std::unique_ptr<OpKernel> prepare_codebook_fc(PrepareContext& ctx) {
  const Tensor& x = ctx.input(0);
  const bool int8 = x.dtype == DType::i8;
  if (!int8 && x.dtype != DType::f32)
    ctx.fail("input 0 '" + x.name + "' is " + dtype_text(x.dtype) + ", expected f32 or i8");
  if (!ctx.node().has_attr("bits")) ctx.fail("attribute 'bits' is missing");
  const int64_t bits = ctx.node().attr_int("bits", 0);
  if (bits != 4 && bits != 8) ctx.fail("attribute 'bits' has " + std::to_string(bits) + ", not 4 or 8");
  const auto b = static_cast<unsigned>(bits);
  const Tensor& w = ctx.require_constant(1, DType::u8, 2);
  if (x.shape.empty()) ctx.fail("input is a scalar");
  const int64_t k = x.shape.back(), o = w.shape[0];
  const auto row = static_cast<int64_t>(kernels::codebook_row_bytes(b, static_cast<size_t>(k)));
  if (w.shape[1] != row)
    ctx.fail("indices " + shape_text(w.shape) + " do not fit input " + shape_text(x.shape) + ": rows of " +
             std::to_string(bits) + "-bit indices need " + std::to_string(row) + " bytes");
  const uint16_t* table = codebook_table(ctx, b);
  const float* bias = optional_bias(ctx, o, 3);
  Shape out = x.shape;
  out.back() = o;
  ctx.set_output(0, x.dtype, out);

  kernels::CodebookQs8Input in;
  kernels::CodebookQs8Output out8;
  kernels::CodebookF32Output out32;
  if (int8) {
    const TensorQuant xq = activation_quant(ctx, x, "input 0"),
                      yq = activation_quant(ctx, ctx.output(0), "output 0");
    const kernels::QGemmOutput clamp = quantized_clamp(ctx, yq);
    in = {xq.scale, xq.zero_point};
    out8 = {yq.scale, yq.zero_point, clamp.min, clamp.max};
  } else {
    const kernels::F32Clamp clamp = activation_clamp(ctx);
    out32 = {clamp.min, clamp.max};
  }
  const size_t m = static_cast<size_t>(elements(x.shape) / (k ? k : 1)), n = static_cast<size_t>(o),
               kk = static_cast<size_t>(k);
  const CodebookFcUkernel& uk = kernels::codebook_fc();
  const size_t chunk = column_chunk(n ? n : 1, uk.nr, m * n * kk < 2 * kMinParallelMacs ? 1 : kSlices);
  std::vector<std::vector<uint8_t>> packed;
  const uint8_t* idx = w.values<uint8_t>().data();
  for (size_t n0 = 0; n0 < n; n0 += chunk) {
    const size_t cols = std::min(chunk, n - n0);
    packed.emplace_back(kernels::codebook_fc_packed_size(uk, b, cols, kk));
    kernels::codebook_fc_pack(uk, b, cols, kk, table, idx + n0 * static_cast<size_t>(row),
                              static_cast<size_t>(row), bias ? bias + n0 : nullptr, packed.back().data());
  }
  return std::make_unique<CodebookFc>(b, m, n, kk, chunk, std::move(packed), int8, in, out8, out32);
}

}  // namespace

extern const OpDef kCodebookFullyConnected = {"CodebookFullyConnected", 3, 4, 1, false, prepare_codebook_fc};

}  // namespace huddle::engine::ops
