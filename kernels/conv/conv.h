// int8 convolution, NHWC, any kernel size, stride, dilation and padding, run
// as an indirect GEMM on the int8 GEMM family's tiles: no im2col buffer is
// made for the whole image. 1x1 stride-1 unpadded convolutions go straight to
// the GEMM. Convolutions with few input channels (fewer than 16 and not a
// multiple of the tile's K group, e.g. a 3-channel stem) gather the windows of
// a few output pixels at a time into rows on the stack and run the plain GEMM
// on them: the indirect GEMM would pad every kernel tap's channels to the K
// group (3 to 16 on baseline NEON) and load each tap's bytes one by one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/gemm/gemm.h"

namespace huddle::kernels {

// One image (the caller loops over a batch). Pixel strides, in elements, may
// exceed the channel counts so a convolution can read or write a channel slice
// of a larger tensor (grouped convolutions, concatenation in place); 0 means
// "the channel count".
struct ConvShape {
  size_t in_h = 1, in_w = 1, in_c = 1;
  size_t out_c = 1;
  size_t kernel_h = 1, kernel_w = 1;
  size_t stride_h = 1, stride_w = 1;
  size_t dilation_h = 1, dilation_w = 1;
  size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  size_t in_pixel_stride = 0;
  size_t out_pixel_stride = 0;

  size_t out_h() const;
  size_t out_w() const;
  size_t in_stride() const { return in_pixel_stride ? in_pixel_stride : in_c; }
  size_t out_stride() const { return out_pixel_stride ? out_pixel_stride : out_c; }
};

// Throws std::invalid_argument naming the field when `shape` cannot be run
// (zero sizes, a kernel larger than the padded input, strides below the
// channel counts).
void validate(const ConvShape& shape);

// A convolution prepared for one GEMM variant: weights packed once, the
// indirection buffer built for the shape. run() allocates nothing and may be
// called from several threads at once on disjoint pixel ranges.
class QConv {
 public:
  // weights: out_c x kernel_h x kernel_w x in_c (OHWI), int8 in [-127, 127];
  // bias: out_c int32 or nullptr; scale: out_c floats (in_scale * w_scale[c] /
  // out_scale); in_zero_point: the input's zero point (padding reads it).
  QConv(const QGemmUkernel& uk, const ConvShape& shape, const int8_t* weights, const int32_t* bias,
        const float* scale, int32_t in_zero_point);

  // The whole output.
  void run(const int8_t* in, int8_t* out, const QGemmOutput& params) const;
  // Output pixels [p0, p1) in row-major order; p0 must be a multiple of
  // pixel_granule() (so threads can split the work).
  void run_pixels(size_t p0, size_t p1, const int8_t* in, int8_t* out, const QGemmOutput& params) const;

  const ConvShape& shape() const { return shape_; }
  const QGemmUkernel& ukernel() const { return *uk_; }
  size_t out_pixels() const { return shape_.out_h() * shape_.out_w(); }
  size_t pixel_granule() const { return uk_->mr; }
  // True when the convolution runs as a plain GEMM (1x1, stride 1, no padding).
  bool is_gemm() const { return indirection_.empty() && gather_k_ == 0; }
  // True when output pixels' windows are gathered into rows for the GEMM (few input channels).
  bool gathers() const { return gather_k_ != 0; }
  // Bytes held: packed weights, indirection buffer, zero row.
  size_t prepared_bytes() const;

 private:
  const QGemmUkernel* uk_;
  ConvShape shape_;
  std::vector<uint8_t> packed_;
  std::vector<size_t> indirection_;
  std::vector<int8_t> zero_;
  size_t gather_k_ = 0;  // gathers(): the row length, kernel_h * kernel_w * in_c rounded up to the K group

  // Output pixels [p0, p1) by gathering their windows (gathers()).
  void run_gathered(size_t p0, size_t p1, const int8_t* in, int8_t* out, const QGemmOutput& params) const;
};

}  // namespace huddle::kernels
