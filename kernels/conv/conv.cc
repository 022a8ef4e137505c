#include "kernels/conv/conv.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace huddle::kernels {
namespace {

// Gathered rows: at most this many bytes each (longer windows take the
// indirect GEMM), this many output pixels at a time (a multiple of every
// tile's mr), so the buffer is 16 KiB of stack.
constexpr size_t kMaxGatherK = 512;
constexpr size_t kGatherRows = 32;

// True when gathering windows beats the indirect GEMM for in_c channels per
// tap: the K group pads each tap's channels and its tail loads run per tap.
bool worth_gathering(const QGemmUkernel& uk, size_t in_c, size_t taps) {
  return in_c < 16 && in_c % uk.kr != 0 && qgemm_round_k(taps * in_c, uk.kr) <= kMaxGatherK;
}

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
  if (!gemm && worth_gathering(uk, s.in_c, ks)) {
    // OHWI weights are already rows of kernel_h * kernel_w * in_c: pack them
    // as a plain GEMM. Its K padding is zero weights, so the kernel may run
    // on the rounded K and the row bytes past the window never count.
    const size_t k = ks * s.in_c;
    gather_k_ = qgemm_round_k(k, uk.kr);
    packed_.resize(qgemm_packed_size(uk, s.out_c, k));
    qgemm_pack(uk, s.out_c, k, weights, bias, scale, in_zero_point, packed_.data());
    zero_.assign(1, static_cast<int8_t>(in_zero_point));
    return;
  }
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
  if (gathers()) {
    run_gathered(p0, p1, in, out, params);
    return;
  }
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

void QConv::run_gathered(size_t p0, size_t p1, const int8_t* in, int8_t* out, const QGemmOutput& params) const {
  alignas(16) int8_t rows[kGatherRows * kMaxGatherK];
  const ConvShape& s = shape_;
  for (size_t q0 = p0; q0 < p1; q0 += kGatherRows) {
    const size_t q1 = std::min(q0 + kGatherRows, p1);
    for (size_t p = q0; p < q1; ++p) gather_window(p, in, rows + (p - q0) * gather_k_);
    uk_->gemm(q1 - q0, s.out_c, gather_k_, rows, gather_k_, packed_.data(), out + q0 * s.out_stride(),
              s.out_stride(), params);
  }
}

void QConv::gather_window(size_t p, const int8_t* in, int8_t* dst) const {
  const ConvShape& s = shape_;
  const size_t ow = s.out_w(), oy = p / ow, ox = p % ow, c = s.in_c, kw = s.kernel_w;
  const int8_t zp = zero_[0];
  // Taps kx in [lo, hi) of a row lie inside the input (coordinates shifted by the padding).
  const size_t x0 = ox * s.stride_w;
  size_t lo = 0, hi = 0;
  if (s.dilation_w == 1) {
    lo = x0 < s.pad_left ? std::min(kw, s.pad_left - x0) : 0;
    hi = x0 + kw <= s.pad_left + s.in_w ? kw : (s.pad_left + s.in_w > x0 ? s.pad_left + s.in_w - x0 : 0);
    hi = std::max(lo, hi);
  }
  // One copy per row when its inside taps are adjacent pixels of the input.
  const bool runs = s.dilation_w == 1 && s.in_stride() == c;
  for (size_t ky = 0; ky < s.kernel_h; ++ky, dst += kw * c) {
    const size_t iy = oy * s.stride_h + ky * s.dilation_h;
    if (iy < s.pad_top || iy - s.pad_top >= s.in_h) {
      std::memset(dst, zp, kw * c);
      continue;
    }
    const int8_t* row = in + (iy - s.pad_top) * s.in_w * s.in_stride();
    if (runs) {
      std::memset(dst, zp, lo * c);
      if (hi > lo) std::memcpy(dst + lo * c, row + (x0 + lo - s.pad_left) * c, (hi - lo) * c);
      std::memset(dst + hi * c, zp, (kw - hi) * c);
      continue;
    }
    for (size_t kx = 0; kx < kw; ++kx) {
      const size_t ix = x0 + kx * s.dilation_w;
      if (ix >= s.pad_left && ix - s.pad_left < s.in_w)
        std::memcpy(dst + kx * c, row + (ix - s.pad_left) * s.in_stride(), c);
      else
        std::memset(dst + kx * c, zp, c);
    }
  }
  // The row's K padding meets zero weights; it is set only so that no byte is undefined.
  const size_t k = s.kernel_h * kw * c;
  std::memset(dst, 0, gather_k_ - k);
}

size_t QConv::prepared_bytes() const {
  return packed_.size() + indirection_.size() * sizeof(size_t) + zero_.size();
}

}  // namespace huddle::kernels
