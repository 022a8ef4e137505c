// Quantisation parameters of the elementwise and pooling kernels: the scale
// ratios every variant multiplies by, computed once per call site.
#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/pool.h"

namespace huddle::kernels {

QBinaryParams qs8_add_params(QuantParams a, QuantParams b, QuantParams y, int8_t min, int8_t max) {
  QBinaryParams p;
  p.a_zero_point = a.zero_point;
  p.b_zero_point = b.zero_point;
  p.a_multiplier = a.scale / y.scale;
  p.b_multiplier = b.scale / y.scale;
  p.out = QGemmOutput{y.zero_point, min, max};
  return p;
}

QBinaryParams qs8_mul_params(QuantParams a, QuantParams b, QuantParams y, int8_t min, int8_t max) {
  QBinaryParams p;
  p.a_zero_point = a.zero_point;
  p.b_zero_point = b.zero_point;
  p.a_multiplier = a.scale * b.scale / y.scale;
  p.b_multiplier = 0.0f;
  p.out = QGemmOutput{y.zero_point, min, max};
  return p;
}

QRescaleParams qs8_rescale_params(QuantParams x, QuantParams y, int8_t min, int8_t max) {
  QRescaleParams p;
  p.x_zero_point = x.zero_point;
  p.multiplier = x.scale / y.scale;
  p.out = QGemmOutput{y.zero_point, min, max};
  return p;
}

QAvgPoolParams qs8_avgpool_params(QuantParams x, QuantParams y, bool count_include_pad, int8_t min,
                                  int8_t max) {
  QAvgPoolParams p;
  p.in_zero_point = x.zero_point;
  p.scale = x.scale / y.scale;
  p.count_include_pad = count_include_pad;
  p.out = QGemmOutput{y.zero_point, min, max};
  return p;
}

size_t qs8_pool_out_size(size_t in, size_t kernel, size_t stride, size_t pad_before, size_t pad_after) {
  const size_t padded = in + pad_before + pad_after;
  return padded < kernel || stride == 0 ? 0 : (padded - kernel) / stride + 1;
}

void qs8_pool_window(size_t o, size_t stride, size_t pad, size_t kernel, size_t in, size_t* begin,
                     size_t* end) {
  const size_t start = o * stride;  // in padded coordinates
  const size_t stop = start + kernel;
  *begin = start < pad ? 0 : start - pad;
  *end = stop < pad ? 0 : (stop - pad < in ? stop - pad : in);
  if (*end < *begin) *end = *begin;
}

}  // namespace huddle::kernels
