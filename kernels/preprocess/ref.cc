// The scalar reference of the preprocess family: the formula of preprocess.h
// element by element. It is the specification, not a fast path.
#include <cmath>

#include "kernels/preprocess/preprocess.h"

namespace huddle::kernels {
namespace {

void horizontal_ref(const PreprocessPlan& plan, const uint8_t* row, int32_t* h) {
  preprocess_horizontal(plan, row, 0, plan.elems, h);
}

// The vertically interpolated value of element e (before normalisation).
float vertical(const int32_t* h0, const int32_t* h1, int32_t wy, size_t e) {
  return static_cast<float>(h0[e]) * static_cast<float>(2048 - wy) +
         static_cast<float>(h1[e]) * static_cast<float>(wy);
}

void vertical_f32_ref(const PreprocessPlan& plan, const int32_t* h0, const int32_t* h1, int32_t wy,
                      float* out) {
  for (size_t e = 0; e < plan.elems; ++e)
    out[e] = vertical(h0, h1, wy, e) * plan.mul[e % 24] + plan.add[e % 24];
}

void vertical_qs8_ref(const PreprocessPlan& plan, const int32_t* h0, const int32_t* h1, int32_t wy,
                      int8_t* out) {
  for (size_t e = 0; e < plan.elems; ++e) {
    float f = vertical(h0, h1, wy, e) * plan.qmul[e % 24] + plan.qadd[e % 24];
    f = f < -128.0f ? -128.0f : (f > 127.0f ? 127.0f : f);
    out[e] = static_cast<int8_t>(std::nearbyint(f));  // round half to even (the default mode)
  }
}

void f32_ref(const PreprocessParams& p, const uint8_t* src, float* dst, void* scratch) {
  preprocess_run(p, src, dst, scratch, horizontal_ref, vertical_f32_ref);
}

void qs8_ref(const PreprocessParams& p, const uint8_t* src, int8_t* dst, void* scratch) {
  preprocess_run(p, src, dst, scratch, horizontal_ref, vertical_qs8_ref);
}

}  // namespace

const PreprocessUkernel preprocess_ref = {"u8_resize_bilinear_normalize__ref", Isa::ref, f32_ref, qs8_ref};

}  // namespace huddle::kernels
