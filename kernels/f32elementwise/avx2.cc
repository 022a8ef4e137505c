// The fp32 elementwise loops compiled for -mavx2 -mfma: 8 floats a vector.
#include "kernels/f32elementwise/f32elementwise.h"
#include "kernels/f32elementwise/loops.h"

namespace huddle::kernels {

const F32ElementwiseUkernel f32elementwise_avx2 = f32elementwise_variant("f32_elementwise__avx2", Isa::avx2);

}  // namespace huddle::kernels
