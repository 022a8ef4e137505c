// The scalar references of the elementwise, table lookup and pooling kernels:
// plain loops over the specifications in elementwise.h and pool.h, not fast paths.
#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/pool.h"

namespace huddle::kernels {
namespace {

// One element of add or mul (qs8_add_one, qs8_mul_one).
using QBinaryOneFn = int8_t (*)(int8_t a, int8_t b, const QBinaryParams& p);

template <QBinaryOneFn op>
void binary_ref(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride, int8_t* y,
                const QBinaryParams& p) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < channels; ++c)
      y[r * channels + c] = op(a[r * channels + c], b[r * b_stride + c], p);
}

template <QBinaryOneFn op>
void binary_scalar_ref(size_t n, const int8_t* a, int8_t b, int8_t* y, const QBinaryParams& p) {
  for (size_t i = 0; i < n; ++i) y[i] = op(a[i], b, p);
}

void rescale_ref(size_t rows, size_t channels, const int8_t* x, size_t x_stride, int8_t* y, size_t y_stride,
                 const QRescaleParams& p) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < channels; ++c) y[r * y_stride + c] = qs8_rescale_one(x[r * x_stride + c], p);
}

void lut_ref(size_t n, const int8_t* x, int8_t* y, const int8_t* table) {
  for (size_t i = 0; i < n; ++i) y[i] = table[static_cast<uint8_t>(x[i])];
}

void maxpool_ref(const QPoolShape& s, const int8_t* x, int8_t* y, int8_t min, int8_t max) {
  for (size_t b = 0; b < s.batch; ++b) {
    for (size_t oh = 0; oh < s.out_h; ++oh) {
      size_t h0, h1;
      qs8_pool_window(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &h0, &h1);
      for (size_t ow = 0; ow < s.out_w; ++ow) {
        size_t w0, w1;
        qs8_pool_window(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &w0, &w1);
        int8_t* out = y + ((b * s.out_h + oh) * s.out_w + ow) * s.channels;
        for (size_t c = 0; c < s.channels; ++c) {
          int8_t m = -128;
          for (size_t ih = h0; ih < h1; ++ih)
            for (size_t iw = w0; iw < w1; ++iw) {
              const int8_t v = x[((b * s.in_h + ih) * s.in_w + iw) * s.channels + c];
              m = v > m ? v : m;
            }
          m = m < min ? min : m;
          out[c] = m > max ? max : m;
        }
      }
    }
  }
}

void avgpool_ref(const QPoolShape& s, const int8_t* x, int8_t* y, const QAvgPoolParams& p) {
  for (size_t b = 0; b < s.batch; ++b) {
    for (size_t oh = 0; oh < s.out_h; ++oh) {
      size_t h0, h1;
      qs8_pool_window(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &h0, &h1);
      for (size_t ow = 0; ow < s.out_w; ++ow) {
        size_t w0, w1;
        qs8_pool_window(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &w0, &w1);
        const size_t cells = (h1 - h0) * (w1 - w0);
        const size_t count = p.count_include_pad ? s.kernel_h * s.kernel_w : (cells ? cells : 1);
        const float scale = p.scale / static_cast<float>(count);
        int8_t* out = y + ((b * s.out_h + oh) * s.out_w + ow) * s.channels;
        for (size_t c = 0; c < s.channels; ++c) {
          int32_t acc = 0;
          for (size_t ih = h0; ih < h1; ++ih)
            for (size_t iw = w0; iw < w1; ++iw)
              acc += x[((b * s.in_h + ih) * s.in_w + iw) * s.channels + c] - p.in_zero_point;
          out[c] = qs8_requant_f32(static_cast<float>(acc) * scale, p.out);
        }
      }
    }
  }
}

void global_avgpool_ref(size_t batch, size_t pixels, size_t channels, const int8_t* x, int8_t* y,
                        const QAvgPoolParams& p) {
  const float scale = p.scale / static_cast<float>(pixels ? pixels : 1);
  for (size_t b = 0; b < batch; ++b) {
    for (size_t c = 0; c < channels; ++c) {
      int32_t acc = 0;
      for (size_t i = 0; i < pixels; ++i) acc += x[(b * pixels + i) * channels + c] - p.in_zero_point;
      y[b * channels + c] = qs8_requant_f32(static_cast<float>(acc) * scale, p.out);
    }
  }
}

}  // namespace

const QElementwiseUkernel qs8_elementwise_ref = {"qs8_elementwise_minmax_fp32__ref",
                                                 Isa::ref,
                                                 binary_ref<qs8_add_one>,
                                                 binary_scalar_ref<qs8_add_one>,
                                                 binary_ref<qs8_mul_one>,
                                                 binary_scalar_ref<qs8_mul_one>,
                                                 rescale_ref};

const QLutUkernel x8_lut_ref = {"x8_lut__ref", Isa::ref, lut_ref};

const QPoolUkernel qs8_pool_ref = {"qs8_pool_minmax_fp32__ref", Isa::ref, maxpool_ref, avgpool_ref,
                                   global_avgpool_ref};

}  // namespace huddle::kernels
