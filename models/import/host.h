// Tensors known at import time and the host arithmetic the importers fold
// them with (shape arithmetic, weight layout changes), shared by the ONNX and
// TensorFlow.js importers. Internal to models/import/.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace huddle::models::importing {

using engine::Shape;

// The most elements of one tensor: 2^28 (a GiB of floats).
inline constexpr int64_t kMaxElements = int64_t{1} << 28;

// Why one node cannot be converted; collected, reported together at the end.
struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] inline void unsupported(const std::string& what) { throw Unsupported(what); }

inline std::string shape_text(const Shape& s) { return engine::shape_text(s); }

inline int64_t checked_elements(const Shape& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) unsupported(what + " has a negative dimension in " + shape_text(shape));
    if (d != 0 && n > kMaxElements / d) unsupported(what + " " + shape_text(shape) + " is too large");
    n *= d;
  }
  return n;
}

// A tensor known at import time: float values or integer values (ONNX's
// integer and bool types, held as int64).
struct Host {
  bool is_float = true;
  Shape shape;
  std::vector<float> f;
  std::vector<int64_t> i;

  size_t size() const { return is_float ? f.size() : i.size(); }
  static Host floats(Shape shape, std::vector<float> v) { return {true, std::move(shape), std::move(v), {}}; }
  static Host ints(Shape shape, std::vector<int64_t> v) {
    return {false, std::move(shape), {}, std::move(v)};
  }
  std::vector<int64_t> as_ints(const std::string& what) const {
    if (is_float) unsupported(what + " must be an integer tensor");
    return i;
  }
  float as_scalar_float(const std::string& what) const {
    if (size() != 1) unsupported(what + " must hold one value, holds " + std::to_string(size()));
    return is_float ? f[0] : static_cast<float>(i[0]);
  }
};

// Row-major strides of `shape`.
inline std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t k = shape.size(); k-- > 1;) s[k - 1] = s[k] * shape[k];
  return s;
}

// out[j] takes in's dim perm[j].
template <class T>
std::vector<T> permute(const std::vector<T>& in, const Shape& shape, const std::vector<int64_t>& perm) {
  const size_t rank = shape.size();
  Shape out_shape(rank);
  for (size_t j = 0; j < rank; ++j) out_shape[j] = shape[static_cast<size_t>(perm[j])];
  const auto in_strides = strides_of(shape);
  std::vector<T> out(in.size());
  std::vector<int64_t> idx(rank, 0);
  for (size_t e = 0; e < out.size(); ++e) {
    int64_t src = 0;
    for (size_t j = 0; j < rank; ++j) src += idx[j] * in_strides[static_cast<size_t>(perm[j])];
    out[e] = in[static_cast<size_t>(src)];
    for (size_t j = rank; j-- > 0;) {
      if (++idx[j] < out_shape[j]) break;
      idx[j] = 0;
    }
  }
  return out;
}

inline Host permute_host(const Host& h, const std::vector<int64_t>& perm) {
  Shape shape(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) shape[j] = h.shape[static_cast<size_t>(perm[j])];
  if (h.is_float) return Host::floats(shape, permute(h.f, h.shape, perm));
  return Host::ints(shape, permute(h.i, h.shape, perm));
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

inline std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline Shape broadcast_shape(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank, 1);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t da = k < a.size() ? a[a.size() - 1 - k] : 1, db = k < b.size() ? b[b.size() - 1 - k] : 1;
    if (da != db && da != 1 && db != 1)
      unsupported("shapes " + shape_text(a) + " and " + shape_text(b) + " do not broadcast");
    out[rank - 1 - k] = da == 1 ? db : da;
  }
  return out;
}

// Element e of `out_shape` read from a broadcast operand of shape `shape`.
struct BroadcastIndex {
  BroadcastIndex(const Shape& shape, const Shape& out) : out_(out), stride_(out.size(), 0) {
    const auto s = strides_of(shape);
    for (size_t k = 0; k < shape.size(); ++k) {
      const size_t o = out.size() - shape.size() + k;
      stride_[o] = shape[k] == 1 ? 0 : s[k];
    }
  }
  size_t operator()(size_t e) const {
    size_t src = 0;
    for (size_t k = out_.size(); k-- > 0;) {
      const auto d = static_cast<size_t>(out_[k]);
      src += (e % d) * static_cast<size_t>(stride_[k]);
      e /= d;
    }
    return src;
  }
  Shape out_;
  std::vector<int64_t> stride_;
};

template <class T, class Fn>
std::vector<T> host_binary(const std::vector<T>& a, const Shape& sa, const std::vector<T>& b, const Shape& sb,
                           const Shape& out, Fn fn) {
  const BroadcastIndex ia(sa, out), ib(sb, out);
  std::vector<T> y(static_cast<size_t>(engine::elements(out)));
  for (size_t e = 0; e < y.size(); ++e) y[e] = fn(a[ia(e)], b[ib(e)]);
  return y;
}

}  // namespace huddle::models::importing
