#include "kernels/conv/conv.h"

#include <stdexcept>
#include <string>

namespace huddle::kernels {
namespace {

size_t out_extent(size_t in, size_t pad0, size_t pad1, size_t kernel, size_t dilation, size_t stride) {
  const size_t span = (kernel - 1) * dilation + 1;
  const size_t padded = in + pad0 + pad1;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("convolution: ") + what);
}

}  // namespace

size_t ConvShape::out_h() const {
  return out_extent(in_h, pad_top, pad_bottom, kernel_h, dilation_h, stride_h);
}
size_t ConvShape::out_w() const {
  return out_extent(in_w, pad_left, pad_right, kernel_w, dilation_w, stride_w);
}

void validate(const ConvShape& s) {
  require(s.in_h > 0 && s.in_w > 0, "in_h and in_w must be at least 1");
  require(s.in_c > 0 && s.out_c > 0, "in_c and out_c must be at least 1");
  require(s.kernel_h > 0 && s.kernel_w > 0, "kernel_h and kernel_w must be at least 1");
  require(s.stride_h > 0 && s.stride_w > 0, "stride_h and stride_w must be at least 1");
  require(s.dilation_h > 0 && s.dilation_w > 0, "dilation_h and dilation_w must be at least 1");
  require(s.in_stride() >= s.in_c, "in_pixel_stride is smaller than in_c");
  require(s.out_stride() >= s.out_c, "out_pixel_stride is smaller than out_c");
  require(s.out_h() > 0 && s.out_w() > 0, "the dilated kernel is larger than the padded input");
}

QConv::QConv(const QGemmUkernel& uk, const ConvShape& shape, const int8_t* weights, const int32_t* bias,
             const float* scale, int32_t in_zero_point)
    : uk_(&uk), shape_(shape) {
  validate(shape);
  const ConvShape& s = shape_;
  const size_t ks = s.kernel_h * s.kernel_w;
  const bool gemm = ks == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 && s.pad_left == 0 &&
                    s.pad_bottom == 0 && s.pad_right == 0;
  packed_.resize(qgemm_packed_size_segments(uk, s.out_c, s.in_c, ks));
  qgemm_pack_segments(uk, s.out_c, s.in_c, ks, weights, bias, scale, in_zero_point, packed_.data());
  if (gemm) return;

  zero_.assign(s.in_c, static_cast<int8_t>(in_zero_point));
  const size_t oh = s.out_h(), ow = s.out_w(), pixels = oh * ow, mr = uk.mr;
  indirection_.resize(qgemm_indirection_size(uk, pixels, ks));
  for (size_t t = 0; t * mr < pixels; ++t) {
    for (size_t i = 0; i < mr; ++i) {
      const size_t p = t * mr + i < pixels ? t * mr + i : pixels - 1;  // rows past the end repeat the last
      const size_t oy = p / ow, ox = p % ow;
      for (size_t ky = 0; ky < s.kernel_h; ++ky) {
        for (size_t kx = 0; kx < s.kernel_w; ++kx) {
          // Input coordinates, shifted by the padding so they stay unsigned.
          const size_t iy = oy * s.stride_h + ky * s.dilation_h, ix = ox * s.stride_w + kx * s.dilation_w;
          const bool inside =
              iy >= s.pad_top && iy - s.pad_top < s.in_h && ix >= s.pad_left && ix - s.pad_left < s.in_w;
          const size_t seg = ky * s.kernel_w + kx;
          indirection_[(t * ks + seg) * mr + i] =
              inside ? ((iy - s.pad_top) * s.in_w + (ix - s.pad_left)) * s.in_stride() : kIndirectZero;
        }
      }
    }
  }
}

void QConv::run(const int8_t* in, int8_t* out, const QGemmOutput& params) const {
  run_pixels(0, out_pixels(), in, out, params);
}

void QConv::run_pixels(size_t p0, size_t p1, const int8_t* in, int8_t* out, const QGemmOutput& params) const {
  if (p0 >= p1) return;
  const ConvShape& s = shape_;
  int8_t* c = out + p0 * s.out_stride();
  if (is_gemm()) {
    uk_->gemm(p1 - p0, s.out_c, s.in_c, in + p0 * s.in_stride(), s.in_stride(), packed_.data(), c,
              s.out_stride(), params);
  } else {
    const size_t ks = s.kernel_h * s.kernel_w;
    uk_->igemm(p1 - p0, s.out_c, s.in_c, ks, in, indirection_.data() + p0 * ks, zero_.data(), packed_.data(),
               c, s.out_stride(), params);
  }
}

size_t QConv::prepared_bytes() const {
  return packed_.size() + indirection_.size() * sizeof(size_t) + zero_.size();
}

}  // namespace huddle::kernels
