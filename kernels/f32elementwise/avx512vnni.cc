// The fp32 elementwise loops compiled for the AVX-512 flags (the avx512vnni tier): 16 floats a vector.
#include "kernels/f32elementwise/f32elementwise.h"
#include "kernels/f32elementwise/loops.h"

namespace huddle::kernels {

const F32ElementwiseUkernel f32elementwise_avx512vnni =
    f32elementwise_variant("f32_elementwise__avx512vnni", Isa::avx512vnni);

}  // namespace huddle::kernels
