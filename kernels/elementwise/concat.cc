// Concatenation along channels: each input rescaled (or copied) into its
// column range of the output with the variant's rescale kernel.
#include <cstring>

#include "kernels/elementwise/elementwise.h"

namespace huddle::kernels {

void qs8_concat_channels(const QElementwiseUkernel& uk, size_t rows, size_t count, const QConcatInput* inputs,
                         int8_t* y, QuantParams y_quant) {
  size_t y_channels = 0;
  for (size_t i = 0; i < count; ++i) y_channels += inputs[i].channels;
  size_t offset = 0;
  for (size_t i = 0; i < count; ++i) {
    const QConcatInput& in = inputs[i];
    if (in.quant.scale == y_quant.scale && in.quant.zero_point == y_quant.zero_point) {
      for (size_t r = 0; r < rows; ++r)
        std::memcpy(y + r * y_channels + offset, in.data + r * in.channels, in.channels);
    } else {
      uk.rescale(rows, in.channels, in.data, in.channels, y + offset, y_channels,
                 qs8_rescale_params(in.quant, y_quant));
    }
    offset += in.channels;
  }
}

}  // namespace huddle::kernels
