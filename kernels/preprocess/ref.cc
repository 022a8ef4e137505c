// The scalar reference of the preprocess family: the formula of preprocess.h
// element by element. It is the specification, not a fast path.
#include <cmath>

#include "kernels/preprocess/preprocess.h"

namespace huddle::kernels {
namespace {

constexpr float kOne = 2048.0f;  // 2^F

void pad(const PreprocessPlan& plan, size_t first, size_t count, float* dst) {
  preprocess_pad_f32(plan, first, count, dst);
}
void pad(const PreprocessPlan& plan, size_t first, size_t count, int8_t* dst) {
  preprocess_pad_qs8(plan, first, count, dst);
}

// Runs every output row: padding rows and columns through pad, box rows
// through box(v, e, dst, plan) with v the vertically interpolated value of
// element e (the value before normalisation).
template <class T, class Box>
void run(const PreprocessParams& p, const uint8_t* src, T* dst, void* scratch, Box box) {
  const PreprocessPlan plan = preprocess_plan(p, scratch);
  const size_t by = p.box.w == 0 ? 0 : p.box.y;
  const size_t bh = p.box.w == 0 ? p.out_height : p.box.h;
  int32_t* h0 = plan.rows;
  int32_t* h1 = plan.rows + ((plan.elems + 7) & ~size_t{7});
  for (size_t oy = 0; oy < p.out_height; ++oy, dst += plan.row_elems) {
    if (oy < by || oy >= by + bh) {
      pad(plan, 0, plan.row_elems, dst);
      continue;
    }
    const int32_t* y = plan.ys + 3 * (oy - by);
    preprocess_horizontal(plan, src + static_cast<size_t>(y[0]) * p.stride, 0, plan.elems, h0);
    preprocess_horizontal(plan, src + static_cast<size_t>(y[1]) * p.stride, 0, plan.elems, h1);
    const float w0 = kOne - static_cast<float>(y[2]), w1 = static_cast<float>(y[2]);
    pad(plan, 0, plan.left_elems, dst);
    for (size_t e = 0; e < plan.elems; ++e) {
      const float v = static_cast<float>(h0[e]) * w0 + static_cast<float>(h1[e]) * w1;
      box(v, e, dst + plan.left_elems + e, plan);
    }
    const size_t right = plan.left_elems + plan.elems;
    pad(plan, right, plan.row_elems - right, dst + right);
  }
}

void f32_ref(const PreprocessParams& p, const uint8_t* src, float* dst, void* scratch) {
  run(p, src, dst, scratch, [](float v, size_t e, float* out, const PreprocessPlan& plan) {
    *out = v * plan.mul[e % 24] + plan.add[e % 24];
  });
}

void qs8_ref(const PreprocessParams& p, const uint8_t* src, int8_t* dst, void* scratch) {
  run(p, src, dst, scratch, [](float v, size_t e, int8_t* out, const PreprocessPlan& plan) {
    float f = v * plan.qmul[e % 24] + plan.qadd[e % 24];
    f = f < -128.0f ? -128.0f : (f > 127.0f ? 127.0f : f);
    *out = static_cast<int8_t>(std::nearbyint(f));
  });
}

}  // namespace

const PreprocessUkernel preprocess_ref = {"u8_resize_bilinear_normalize__ref", Isa::ref, f32_ref, qs8_ref};

}  // namespace huddle::kernels
