// The fp32 elementwise loops compiled for baseline AArch64 NEON: 4 floats a vector.
#include "kernels/f32elementwise/f32elementwise.h"
#include "kernels/f32elementwise/loops.h"

namespace huddle::kernels {

const F32ElementwiseUkernel f32elementwise_neon = f32elementwise_variant("f32_elementwise__neon", Isa::neon);

}  // namespace huddle::kernels
