// The fp32 elementwise loops for the baseline target (SSE2 on x86-64, Advanced SIMD on AArch64).
#include "kernels/f32elementwise/f32elementwise.h"
#include "kernels/f32elementwise/loops.h"

namespace huddle::kernels {

const F32ElementwiseUkernel f32elementwise_ref = f32elementwise_variant("f32_elementwise__ref", Isa::ref);

}  // namespace huddle::kernels
