#include "bench/xnnpack_peer.h"

#include <stdexcept>

#if HUDDLE_BENCH_XNNPACK
#include <xnnpack.h>
#endif

namespace huddle::bench {

#if HUDDLE_BENCH_XNNPACK

namespace {

void check(xnn_status status, const char* what) {
  if (status != xnn_status_success)
    throw std::runtime_error(std::string("XNNPACK: ") + what + " failed (status " +
                             std::to_string(static_cast<int>(status)) + ")");
}

}  // namespace

std::string xnnpack_unavailable() {
  static const xnn_status status = xnn_initialize(nullptr);
  return status == xnn_status_success
             ? ""
             : "xnn_initialize failed (status " + std::to_string(static_cast<int>(status)) + ")";
}

XnnConv::XnnConv(const kernels::ConvShape& s, size_t groups, const int8_t* weights, const int32_t* bias,
                 const float* scale, int32_t in_zero_point, const kernels::QGemmOutput& params,
                 const int8_t* in, int8_t* out) {
  xnn_operator_t op = nullptr;
  check(xnn_create_convolution2d_nhwc_qc8(
            static_cast<uint32_t>(s.pad_top), static_cast<uint32_t>(s.pad_right),
            static_cast<uint32_t>(s.pad_bottom), static_cast<uint32_t>(s.pad_left),
            static_cast<uint32_t>(s.kernel_h), static_cast<uint32_t>(s.kernel_w),
            static_cast<uint32_t>(s.stride_h), static_cast<uint32_t>(s.stride_w),
            static_cast<uint32_t>(s.dilation_h), static_cast<uint32_t>(s.dilation_w),
            static_cast<uint32_t>(groups), s.in_c, s.out_c,
            s.in_pixel_stride ? s.in_pixel_stride : groups * s.in_c,
            s.out_pixel_stride ? s.out_pixel_stride : groups * s.out_c, static_cast<int8_t>(in_zero_point),
            1.0f, scale, weights, bias, static_cast<int8_t>(params.zero_point), 1.0f, params.min, params.max,
            0, &op),
        "xnn_create_convolution2d_nhwc_qc8");
  op_ = op;
  check(xnn_setup_convolution2d_nhwc_qc8(op, 1, s.in_h, s.in_w, in, out, nullptr),
        "xnn_setup_convolution2d_nhwc_qc8");
}

XnnConv::~XnnConv() { xnn_delete_operator(static_cast<xnn_operator_t>(op_)); }

void XnnConv::run() const { check(xnn_run_operator(static_cast<xnn_operator_t>(op_), nullptr), "run"); }

XnnF32DwConv::XnnF32DwConv(const kernels::F32ConvShape& s, const float* weights, const float* bias,
                           const kernels::F32Clamp& clamp, const float* in, float* out) {
  xnn_operator_t op = nullptr;
  check(xnn_create_convolution2d_nhwc_f32(
            static_cast<uint32_t>(s.pad_top), static_cast<uint32_t>(s.pad_right),
            static_cast<uint32_t>(s.pad_bottom), static_cast<uint32_t>(s.pad_left),
            static_cast<uint32_t>(s.kernel_h), static_cast<uint32_t>(s.kernel_w),
            static_cast<uint32_t>(s.stride_h), static_cast<uint32_t>(s.stride_w),
            static_cast<uint32_t>(s.dilation_h), static_cast<uint32_t>(s.dilation_w),
            static_cast<uint32_t>(s.in_c), 1, 1, s.in_stride(), s.out_stride(), weights, bias, clamp.min,
            clamp.max, 0, &op),
        "xnn_create_convolution2d_nhwc_f32");
  op_ = op;
  check(xnn_setup_convolution2d_nhwc_f32(op, s.batch, s.in_h, s.in_w, in, out, nullptr),
        "xnn_setup_convolution2d_nhwc_f32");
}

XnnF32DwConv::~XnnF32DwConv() { xnn_delete_operator(static_cast<xnn_operator_t>(op_)); }

void XnnF32DwConv::run() const { check(xnn_run_operator(static_cast<xnn_operator_t>(op_), nullptr), "run"); }

#else

std::string xnnpack_unavailable() {
#if defined(__x86_64__)
  return "this build has no XNNPACK (cross or core_only build, or libxnnpack-dev missing)";
#else
  return "XNNPACK is the x86 peer only; not built for this architecture";
#endif
}

XnnConv::XnnConv(const kernels::ConvShape&, size_t, const int8_t*, const int32_t*, const float*, int32_t,
                 const kernels::QGemmOutput&, const int8_t*, int8_t*) {
  throw std::logic_error("XNNPACK is not in this build");
}
XnnConv::~XnnConv() = default;
void XnnConv::run() const {}

XnnF32DwConv::XnnF32DwConv(const kernels::F32ConvShape&, const float*, const float*, const kernels::F32Clamp&,
                           const float*, float*) {
  throw std::logic_error("XNNPACK is not in this build");
}
XnnF32DwConv::~XnnF32DwConv() = default;
void XnnF32DwConv::run() const {}

#endif

}  // namespace huddle::bench
