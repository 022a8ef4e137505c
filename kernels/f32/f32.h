// fp32 GEMM and convolution family: the float fallback and on-device training.
//
// GEMM: C[i][j] = clamp(bias[j] + sum_k A[i][k] * W[j][k], min, max), W n x k
// with one row per output channel. The scalar reference (f32gemm_ref) is the
// specification: it starts from the bias and adds the products in increasing
// k, rounding after every multiply and every add. Vector variants may fuse
// multiply and add and may sum in another order; every variant stays within
//   |c - c_ref| <= kF32RelTolerance * (|bias[j]| + sum_k |A[i][k] * W[j][k]|) + kF32AbsTolerance
// of the reference (tested; the clamp only narrows the difference).
//
// Convolution: NHWC input and output, OHWI weights, any kernel size, stride,
// dilation and padding, groups = 1 (a grouped or depthwise convolution is run
// per group by the caller through the pixel strides). It is an indirect GEMM
// ("igemm"): at prepare an indirection buffer holds, for every output pixel
// and kernel tap, the offset of the input pixel it reads, padding taps naming
// a zero buffer; no im2col is materialised. 1x1 stride-1 unpadded convolutions
// run the GEMM directly on the input.
//
// Weights are packed once (f32gemm_pack) into the layout a variant wants; the
// packed buffer also holds the bias. The conv weights OHWI pack as the n x k
// GEMM matrix with n = output channels and k = kernel_h * kernel_w * input channels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/isa.h"

namespace huddle::kernels {

// Tolerance of every variant against the reference (see above).
constexpr float kF32RelTolerance = 1e-5f;
constexpr float kF32AbsTolerance = 1e-6f;

// Output clamp fused into the kernels: no clamp, ReLU {0, inf}, ReLU6 {0, 6}.
struct F32Clamp {
  float min = -std::numeric_limits<float>::infinity();
  float max = std::numeric_limits<float>::infinity();
};
constexpr F32Clamp kF32NoClamp{};
constexpr F32Clamp kF32Relu{0.0f, std::numeric_limits<float>::infinity()};
constexpr F32Clamp kF32Relu6{0.0f, 6.0f};

// C (m x n, row stride c_stride floats) from A (m x k, row stride a_stride
// floats) and packed weights.
using F32GemmFn = void (*)(size_t m, size_t n, size_t k, const float* a, size_t a_stride, const void* packed,
                           float* c, size_t c_stride, const F32Clamp& clamp);
// The indirect form: row i of A is the concatenation over s < ks of the kc
// floats at `zero` when indirection[i * ks + s] == kF32IndirectZero, else at
// input + indirection[i * ks + s]. K = ks * kc; C as for F32GemmFn.
using F32IGemmFn = void (*)(size_t m, size_t n, size_t ks, size_t kc, const size_t* indirection,
                            const float* input, const float* zero, const void* packed, float* c,
                            size_t c_stride, const F32Clamp& clamp);
// The indirection entry that reads the zero buffer (a padding tap).
constexpr size_t kF32IndirectZero = ~size_t{0};

// One variant of the family: an mr x nr tile. The packed layout is the same
// for every variant, only nr differs:
//   per block of nr columns: float bias[nr], then for each k: the nr weights;
//   columns past n padded with zero weights and bias.
struct F32GemmUkernel {
  const char* name;  // XNNPACK-style: family, tile, isa
  Isa isa;
  uint32_t mr, nr;
  F32GemmFn gemm;
  F32IGemmFn igemm;
};

// Floats one block of nr columns takes in the packed buffer.
inline size_t f32gemm_block_floats(const F32GemmUkernel& uk, size_t k) { return uk.nr * (k + 1); }
// Bytes the packed buffer for an n x k weight matrix takes.
size_t f32gemm_packed_size(const F32GemmUkernel& uk, size_t n, size_t k);
// Packs W (n x k, row stride k) and bias (n floats, or nullptr for zeros) into
// `packed` (f32gemm_packed_size bytes, aligned for float).
void f32gemm_pack(const F32GemmUkernel& uk, size_t n, size_t k, const float* w, const float* bias,
                  void* packed);
// Packs like f32gemm_pack from W transposed: wt is k x n with row stride
// wt_stride >= n, W[j][kk] = wt[kk * wt_stride + j]. With it the GEMM gives
// the training gradients of C = A * W^T (A m x k, W n x k):
//   dA = dC * W:   f32gemm_pack_transposed(uk, k, n, W, k, nullptr, p), then gemm(m, k, n, dC, ...);
//   dW = dC^T * A: f32gemm_pack_transposed(uk, k, m, A, a_stride, nullptr, p), then gemm(n, k, m, dCt, ...)
// with dCt the n x m transpose of dC (small: batch x classes for a head).
void f32gemm_pack_transposed(const F32GemmUkernel& uk, size_t n, size_t k, const float* wt, size_t wt_stride,
                             const float* bias, void* packed);
// The packed weights of columns n0.. (n0 a multiple of nr): lets a caller
// split the columns of one GEMM between threads.
inline const void* f32gemm_packed_at(const F32GemmUkernel& uk, const void* packed, size_t k, size_t n0) {
  return static_cast<const float*>(packed) + (n0 / uk.nr) * f32gemm_block_floats(uk, k);
}

// The scalar reference: the specification every other variant must match.
extern const F32GemmUkernel f32gemm_ref;
#if defined(__x86_64__)
extern const F32GemmUkernel f32gemm_avx2;        // 6x16, AVX2 + FMA
extern const F32GemmUkernel f32gemm_avx512vnni;  // 8x32, AVX-512F (the avx512vnni tier)
#elif defined(__aarch64__)
extern const F32GemmUkernel f32gemm_neon;  // 8x8, NEON FMA by lane
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const F32GemmUkernel*>& f32gemm_all();
// The variants this CPU runs, ref first.
std::vector<const F32GemmUkernel*> f32gemm_runnable();
// The variant kernels use for `isa` (the best one whose isa `isa` implies).
const F32GemmUkernel& f32gemm_for(Isa isa);
// The variant for selected_isa().
const F32GemmUkernel& f32gemm();

// Geometry of one NHWC convolution (groups = 1).
struct F32ConvShape {
  size_t batch = 1, in_h = 1, in_w = 1, in_c = 1, out_c = 1;
  size_t kernel_h = 1, kernel_w = 1;
  size_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  // Floats between consecutive pixels; 0 means in_c / out_c (dense tensors).
  size_t in_pixel_stride = 0, out_pixel_stride = 0;

  size_t out_h() const;  // 0 when the padded input is smaller than the dilated kernel
  size_t out_w() const;
  size_t in_stride() const { return in_pixel_stride ? in_pixel_stride : in_c; }
  size_t out_stride() const { return out_pixel_stride ? out_pixel_stride : out_c; }
  // K of the equivalent GEMM: kernel_h * kernel_w * in_c.
  size_t k() const { return kernel_h * kernel_w * in_c; }
  // True for 1x1, stride 1, unpadded: the GEMM on the input itself.
  bool is_gemm() const;
};

// Entries of the indirection buffer of one image: out_h * out_w * kernel_h * kernel_w.
size_t f32conv_indirection_size(const F32ConvShape& shape);
// Fills the indirection buffer: for output pixel p (row-major over out_h x
// out_w) and tap s (row-major over kernel_h x kernel_w), entry p * taps + s is
// the input offset (floats, within one image) of the pixel read, or kF32IndirectZero.
void f32conv_indirection(const F32ConvShape& shape, size_t* indirection);
// Runs a prepared convolution over every image of the batch. `packed` from
// f32gemm_pack(uk, out_c, shape.k(), ...); `indirection` from
// f32conv_indirection (unused when shape.is_gemm()); `zero` holds in_c zeros.
// Input images are in_h * in_w * in_stride floats apart, output images
// out_h * out_w * out_stride. Allocates nothing.
void f32conv_run(const F32GemmUkernel& uk, const F32ConvShape& shape, const void* packed,
                 const size_t* indirection, const float* zero, const float* input, float* output,
                 const F32Clamp& clamp);

// A convolution prepared once for one variant: owns its packed weights,
// indirection and zero buffers; run() allocates nothing and may be called
// from several threads at once.
class F32Conv {
 public:
  // Validates the shape (throws std::invalid_argument) and packs `weights`
  // (OHWI, out_c x kernel_h x kernel_w x in_c) and `bias` (out_c, or nullptr).
  F32Conv(const F32GemmUkernel& uk, const F32ConvShape& shape, const float* weights, const float* bias);
  // output = clamp(conv(input) + bias), over the whole batch.
  void run(const float* input, float* output, const F32Clamp& clamp = kF32NoClamp) const;
  // Only output channels [n0, n1) (n0 a multiple of column_granule()); the
  // sums are formed exactly as in run(), so threads splitting the channels
  // get the same bits.
  void run_columns(size_t n0, size_t n1, const float* input, float* output,
                   const F32Clamp& clamp = kF32NoClamp) const;
  size_t column_granule() const { return uk_->nr; }
  // Only output pixels [p0, p1) of the batch (pixel p is pixel p % (out_h *
  // out_w) of image p / (out_h * out_w)), every channel; the sums are formed
  // exactly as in run(), so threads splitting the pixels get the same bits.
  void run_pixels(size_t p0, size_t p1, const float* input, float* output,
                  const F32Clamp& clamp = kF32NoClamp) const;
  const F32ConvShape& shape() const { return shape_; }
  const F32GemmUkernel& ukernel() const { return *uk_; }

 private:
  const F32GemmUkernel* uk_;
  F32ConvShape shape_;
  std::vector<float> packed_;
  std::vector<size_t> indirection_;
  std::vector<float> zero_;
};

}  // namespace huddle::kernels
