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

// The n bytes at src to dst, n up to 32 by fixed-size moves that may overlap
// (a variable-length memcpy is a library call, dearer than the few bytes of
// a window row), longer by memcpy. The source is read only inside [src, src + n).
inline void copy_bytes(int8_t* dst, const int8_t* src, size_t n) {
  auto move = [&](size_t at, auto word) {
    std::memcpy(&word, src + at, sizeof word);
    std::memcpy(dst + at, &word, sizeof word);
  };
  if (n > 32) {
    std::memcpy(dst, src, n);
  } else if (n >= 16) {
    move(0, uint64_t{}), move(8, uint64_t{}), move(n - 16, uint64_t{}), move(n - 8, uint64_t{});
  } else if (n >= 8) {
    move(0, uint64_t{}), move(n - 8, uint64_t{});
  } else if (n >= 4) {
    move(0, uint32_t{}), move(n - 4, uint32_t{});
  } else if (n >= 2) {
    move(0, uint16_t{}), move(n - 2, uint16_t{});
  } else if (n == 1) {
    *dst = *src;
  }
}

size_t out_extent(size_t in, size_t pad0, size_t pad1, size_t kernel, size_t dilation, size_t stride) {
  const size_t span = (kernel - 1) * dilation + 1;
  const size_t padded = in + pad0 + pad1;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("convolution: ") + what);
}

// The window of output pixel (oy, ox) of s as one row of row_bytes at dst:
// padding taps read the input's zero point, as do the bytes past the window
// (they meet zero weights). zp: kMaxGatherK bytes of the zero point.
void gather_window(const ConvShape& s, size_t oy, size_t ox, const int8_t* zp, size_t row_bytes,
                   const int8_t* in, int8_t* dst) {
  const size_t c = s.in_c, kw = s.kernel_w, x0 = ox * s.stride_w;
  // Taps kx in [lo, hi) of a row lie inside the input (coordinates shifted by the padding).
  size_t lo = 0, hi = 0;
  if (s.dilation_w == 1) {
    lo = x0 < s.pad_left ? std::min(kw, s.pad_left - x0) : 0;
    hi = x0 + kw <= s.pad_left + s.in_w ? kw : (s.pad_left + s.in_w > x0 ? s.pad_left + s.in_w - x0 : 0);
    hi = std::max(lo, hi);
  }
  // One copy per row when its inside taps are adjacent pixels of the input.
  const bool runs = s.dilation_w == 1 && s.in_stride() == c;
  int8_t* const start = dst;
  for (size_t ky = 0; ky < s.kernel_h; ++ky, dst += kw * c) {
    const size_t iy = oy * s.stride_h + ky * s.dilation_h;
    if (iy < s.pad_top || iy - s.pad_top >= s.in_h) {
      copy_bytes(dst, zp, kw * c);
      continue;
    }
    const int8_t* row = in + (iy - s.pad_top) * s.in_w * s.in_stride();
    if (runs) {
      if (lo > 0) copy_bytes(dst, zp, lo * c);
      copy_bytes(dst + lo * c, row + (x0 + lo - s.pad_left) * c, (hi - lo) * c);
      if (hi < kw) copy_bytes(dst + hi * c, zp, (kw - hi) * c);
      continue;
    }
    for (size_t kx = 0; kx < kw; ++kx) {
      const size_t ix = x0 + kx * s.dilation_w;
      if (ix >= s.pad_left && ix - s.pad_left < s.in_w)
        copy_bytes(dst + kx * c, row + (ix - s.pad_left) * s.in_stride(), c);
      else
        copy_bytes(dst + kx * c, zp, c);
    }
  }
  if (row_bytes > static_cast<size_t>(dst - start))
    copy_bytes(dst, zp, row_bytes - static_cast<size_t>(dst - start));
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

void QConv::run_gathered(size_t p0, size_t p1, const int8_t* in, int8_t* out,
                         const QGemmOutput& params) const {
  alignas(16) int8_t rows[kGatherRows * kMaxGatherK];
  const ConvShape s = shape_;  // a local copy: the int8 stores of the gathering cannot alias it
  const size_t ow = s.out_w(), row_bytes = gather_k_;
  int8_t zp[kMaxGatherK];
  std::memset(zp, zero_[0], sizeof zp);
  for (size_t q0 = p0; q0 < p1; q0 += kGatherRows) {
    const size_t q1 = std::min(q0 + kGatherRows, p1);
    size_t oy = q0 / ow, ox = q0 % ow;
    for (size_t p = q0; p < q1; ++p) {
      gather_window(s, oy, ox, zp, row_bytes, in, rows + (p - q0) * row_bytes);
      if (++ox == ow) ox = 0, ++oy;
    }
    uk_->gemm(q1 - q0, s.out_c, row_bytes, rows, row_bytes, packed_.data(), out + q0 * s.out_stride(),
              s.out_stride(), params);
  }
}

size_t QConv::prepared_bytes() const {
  return packed_.size() + indirection_.size() * sizeof(size_t) + zero_.size();
}

}  // namespace huddle::kernels
