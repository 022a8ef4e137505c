// The portable part of the fp32 convolution: shape checks, the indirection
// buffer and the run loop over images; the variants do the arithmetic.
#include <stdexcept>
#include <string>

#include "kernels/f32/f32.h"

namespace huddle::kernels {
namespace {

size_t out_size(size_t in, size_t pad0, size_t pad1, size_t kernel, size_t stride, size_t dilation) {
  const size_t padded = in + pad0 + pad1, span = dilation * (kernel - 1) + 1;
  if (stride == 0 || kernel == 0 || dilation == 0 || padded < span) return 0;
  return (padded - span) / stride + 1;
}

void check(const F32ConvShape& s) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("f32 conv: " + what); };
  if (s.batch == 0 || s.in_h == 0 || s.in_w == 0 || s.in_c == 0 || s.out_c == 0) fail("empty tensor");
  if (s.kernel_h == 0 || s.kernel_w == 0) fail("empty kernel");
  if (s.stride_h == 0 || s.stride_w == 0 || s.dilation_h == 0 || s.dilation_w == 0)
    fail("stride and dilation must be at least 1");
  if (s.in_stride() < s.in_c) fail("input pixel stride below input channels");
  if (s.out_stride() < s.out_c) fail("output pixel stride below output channels");
  if (s.out_h() == 0 || s.out_w() == 0) fail("padded input smaller than the dilated kernel");
}

}  // namespace

size_t F32ConvShape::out_h() const {
  return out_size(in_h, pad_top, pad_bottom, kernel_h, stride_h, dilation_h);
}
size_t F32ConvShape::out_w() const {
  return out_size(in_w, pad_left, pad_right, kernel_w, stride_w, dilation_w);
}
bool F32ConvShape::is_gemm() const {
  return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 && pad_left == 0 &&
         pad_bottom == 0 && pad_right == 0;
}

size_t f32conv_indirection_size(const F32ConvShape& s) {
  return s.out_h() * s.out_w() * s.kernel_h * s.kernel_w;
}

void f32conv_indirection(const F32ConvShape& s, size_t* ind) {
  const size_t oh = s.out_h(), ow = s.out_w(), stride = s.in_stride();
  for (size_t oy = 0; oy < oh; ++oy) {
    for (size_t ox = 0; ox < ow; ++ox) {
      for (size_t ky = 0; ky < s.kernel_h; ++ky) {
        // Input row oy * stride + ky * dilation - pad, unsigned: wraps past in_h when above the image.
        const size_t iy = oy * s.stride_h + ky * s.dilation_h - s.pad_top;
        for (size_t kx = 0; kx < s.kernel_w; ++kx) {
          const size_t ix = ox * s.stride_w + kx * s.dilation_w - s.pad_left;
          *ind++ = iy < s.in_h && ix < s.in_w ? (iy * s.in_w + ix) * stride : kF32IndirectZero;
        }
      }
    }
  }
}

void f32conv_run(const F32GemmUkernel& uk, const F32ConvShape& s, const void* packed,
                 const size_t* indirection, const float* zero, const float* input, float* output,
                 const F32Clamp& clamp) {
  const size_t in_image = s.in_h * s.in_w * s.in_stride();
  const size_t out_pixels = s.out_h() * s.out_w(), out_image = out_pixels * s.out_stride();
  for (size_t b = 0; b < s.batch; ++b) {
    const float* in = input + b * in_image;
    float* out = output + b * out_image;
    if (s.is_gemm()) {
      uk.gemm(out_pixels, s.out_c, s.in_c, in, s.in_stride(), packed, out, s.out_stride(), clamp);
    } else {
      uk.igemm(out_pixels, s.out_c, s.kernel_h * s.kernel_w, s.in_c, indirection, in, zero, packed, out,
               s.out_stride(), clamp);
    }
  }
}

F32Conv::F32Conv(const F32GemmUkernel& uk, const F32ConvShape& shape, const float* weights, const float* bias)
    : uk_(&uk), shape_(shape) {
  check(shape_);
  packed_.resize(f32gemm_packed_size(uk, shape_.out_c, shape_.k()) / sizeof(float));
  f32gemm_pack(uk, shape_.out_c, shape_.k(), weights, bias, packed_.data());
  if (!shape_.is_gemm()) {
    indirection_.resize(f32conv_indirection_size(shape_));
    f32conv_indirection(shape_, indirection_.data());
    zero_.assign(shape_.in_c, 0.0f);
  }
}

void F32Conv::run(const float* input, float* output, const F32Clamp& clamp) const {
  f32conv_run(*uk_, shape_, packed_.data(), indirection_.data(), zero_.data(), input, output, clamp);
}

void F32Conv::run_columns(size_t n0, size_t n1, const float* input, float* output,
                          const F32Clamp& clamp) const {
  if (n1 > shape_.out_c) n1 = shape_.out_c;
  if (n0 >= n1) return;
  // The same convolution restricted to output channels [n0, n1): their packed
  // blocks, written into a channel slice of the same output pixels.
  F32ConvShape slice = shape_;
  slice.out_c = n1 - n0;
  slice.out_pixel_stride = shape_.out_stride();
  f32conv_run(*uk_, slice, f32gemm_packed_at(*uk_, packed_.data(), shape_.k(), n0), indirection_.data(),
              zero_.data(), input, output + n0, clamp);
}

void F32Conv::run_pixels(size_t p0, size_t p1, const float* input, float* output,
                         const F32Clamp& clamp) const {
  const F32ConvShape& s = shape_;
  const size_t pixels = s.out_h() * s.out_w(), in_image = s.in_h * s.in_w * s.in_stride();
  const size_t ks = s.kernel_h * s.kernel_w;
  if (p1 > s.batch * pixels) p1 = s.batch * pixels;
  while (p0 < p1) {
    // The part of [p0, p1) in image b: its pixels [q0, q1).
    const size_t b = p0 / pixels, q0 = p0 % pixels, q1 = p1 - b * pixels < pixels ? p1 - b * pixels : pixels;
    const float* in = input + b * in_image;
    float* out = output + (b * pixels + q0) * s.out_stride();
    if (s.is_gemm()) {
      uk_->gemm(q1 - q0, s.out_c, s.in_c, in + q0 * s.in_stride(), s.in_stride(), packed_.data(), out,
                s.out_stride(), clamp);
    } else {
      uk_->igemm(q1 - q0, s.out_c, ks, s.in_c, indirection_.data() + q0 * ks, in, zero_.data(),
                 packed_.data(), out, s.out_stride(), clamp);
    }
    p0 = b * pixels + q1;
  }
}

}  // namespace huddle::kernels
