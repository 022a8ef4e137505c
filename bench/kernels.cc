// `bench/kernels`: the int8 kernel benchmark that `bench/run kernels` drives.
//
// Times every runnable int8 GEMM variant, one thread, on the convolutions of
// MobileNetV2-224 and ResNet18-224 and a square 512^3 GEMM, against the
// measured int8 peak of this CPU and against XNNPACK on the same shapes, and
// the depthwise family (kernels/dwconv/) on MobileNetV2's depthwise layers
// against XNNPACK's, then the fp32 depthwise family (kernels/f32dw/) on the
// same layers against XNNPACK's f32 convolution, and ends with grep-able headline lines. `--run` runs one
// variant on one shape a given number of times and nothing else, for instruction counts under qemu (see
// bench/run).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/clock.h"
#include "bench/peak.h"
#include "bench/xnnpack_peer.h"
#include "kernels/conv/conv.h"
#include "kernels/dwconv/dwconv.h"
#include "kernels/f32dw/f32dw.h"
#include "kernels/gemm/gemm.h"

namespace huddle::bench {
namespace {

using namespace huddle::kernels;

constexpr const char* kHelp =
    "usage: kernels [--seconds S] [--variants a,b] [--filter TEXT] [--no-peer]\n"
    "       kernels --list\n"
    "       kernels --run VARIANT CASE [--reps N]\n"
    "\n"
    "Times every int8 GEMM variant this CPU runs (one thread, median thread CPU\n"
    "time per call, at least S seconds per case and variant, default 0.2) on the\n"
    "convolutions of MobileNetV2-224 and ResNet18-224 and a 512^3 GEMM, against\n"
    "the measured int8 peak and XNNPACK (when built in), and the depthwise\n"
    "variant of each isa on MobileNetV2's depthwise layers against XNNPACK (no\n"
    "% of peak: they are memory-bound), then prints headlines; last the fp32\n"
    "depthwise variant of each isa on the same layers against XNNPACK's f32.\n"
    "The variants, XNNPACK and the peak loops are sampled in turn, so a change in\n"
    "the machine's load hits them alike.\n"
    "\n"
    "  --variants a,b   only these variants (isa names: ref avx2 avx512vnni neon neondot i8mm)\n"
    "  --filter TEXT    only the cases whose name contains TEXT\n"
    "  --no-peer        skip XNNPACK\n"
    "  --list           print the case names\n"
    "  --run V C        prepare case C for variant V and run it N times (default 1),\n"
    "                   printing one line: for instruction counts under qemu\n"
    "Exit status: 0 done, 1 failure, 2 usage error.\n";

// What a case runs: a GEMM (kernels/gemm/), a convolution (kernels/conv/), or
// a depthwise convolution (kernels/dwconv/: groups = channels, shape.in_c =
// shape.out_c = 1; the column of an isa runs dwconv_for(isa), what huddle runs
// with HUDDLE_ISA=<isa>). XNNPACK runs every kind as a convolution.
enum class Kind { gemm, conv, dwconv };

// One benchmark case: a layer shape and how often its network runs it.
struct Case {
  std::string net;   // "MobileNetV2-224", ...: totals are per net
  std::string part;  // a subtotal within the net, e.g. "pointwise"
  std::string name;  // unique, no spaces: what --run and --filter take
  Kind kind;
  ConvShape shape;  // gemm: in_h = M, in_w = 1, in_c = K, out_c = N
  int count = 1;    // layers of the net with this shape
  size_t groups = 1;

  size_t gemm_m() const { return shape.out_h() * shape.out_w(); }
  size_t gemm_n() const { return shape.out_c * groups; }
  size_t gemm_k() const { return shape.kernel_h * shape.kernel_w * shape.in_c; }
  double macs() const { return static_cast<double>(gemm_m()) * gemm_n() * gemm_k(); }
};

// A pointwise convolution as a GEMM: M = hw * hw pixels, K = cin, N = cout.
Case pointwise(const char* net, const char* prefix, const char* part, size_t hw, size_t cin, size_t cout,
               int count) {
  char name[64];
  std::snprintf(name, sizeof name, "%spw%zu-%zu@%zu", prefix, cin, cout, hw);
  Case c{net, part, name, Kind::gemm, {}, count};
  c.shape.in_h = hw * hw;
  c.shape.in_c = cin;
  c.shape.out_c = cout;
  return c;
}

// A k x k convolution with stride s on an hw x hw input, padded by k / 2.
Case conv(const char* net, const char* prefix, const char* part, size_t hw, size_t cin, size_t cout, size_t k,
          size_t s, int count) {
  char name[64];
  if (s > 1)
    std::snprintf(name, sizeof name, "%s%zux%zus%zu.%zu-%zu@%zu", prefix, k, k, s, cin, cout, hw);
  else
    std::snprintf(name, sizeof name, "%s%zux%zu.%zu-%zu@%zu", prefix, k, k, cin, cout, hw);
  Case c{net, part, name, Kind::conv, {}, count};
  ConvShape& sh = c.shape;
  sh.in_h = sh.in_w = hw;
  sh.in_c = cin;
  sh.out_c = cout;
  sh.kernel_h = sh.kernel_w = k;
  sh.stride_h = sh.stride_w = s;
  sh.pad_top = sh.pad_left = sh.pad_bottom = sh.pad_right = k / 2;
  return c;
}

const char* const kMbv2 = "MobileNetV2-224";
const char* const kRn18 = "ResNet18-224";
const char* const kEffb0 = "EfficientNet-B0-224";
const char* const kSquare = "square GEMM";
const char* const kSquareName = "gemm.512x512x512";

// A k x k depthwise convolution (channel multiplier 1) with stride s on an
// hw x hw x channels input, padded by k / 2.
Case depthwise(const char* net, const char* prefix, const char* part, size_t hw, size_t channels, size_t k,
               size_t s, int count) {
  Case c = conv(net, prefix, part, hw, 1, 1, k, s, count);
  char name[64];
  if (s > 1)
    std::snprintf(name, sizeof name, "%sdw%zux%zus%zu.%zu@%zu", prefix, k, k, s, channels, hw);
  else
    std::snprintf(name, sizeof name, "%sdw%zux%zu.%zu@%zu", prefix, k, k, channels, hw);
  c.name = name;
  c.kind = Kind::dwconv;
  c.groups = channels;
  return c;
}

// Every case, in network order.
std::vector<Case> cases() {
  std::vector<Case> v;
  // MobileNetV2-224 (width 1.0): stem, then the inverted residual blocks'
  // expansion and projection 1x1 convolutions, then the last 1x1. Counts:
  // blocks of a stage after the first share a shape with the next stage's
  // first expansion.
  v.push_back(conv(kMbv2, "mbv2.", "stem", 224, 3, 32, 3, 2, 1));
  const struct {
    size_t hw, cin, cout;
    int count;
  } pw[] = {
      {112, 32, 16, 1}, {112, 16, 96, 1}, {56, 96, 24, 1},  {56, 24, 144, 2},  {56, 144, 24, 1},
      {28, 144, 32, 1}, {28, 32, 192, 3}, {28, 192, 32, 2}, {14, 192, 64, 1},  {14, 64, 384, 4},
      {14, 384, 64, 3}, {14, 384, 96, 1}, {14, 96, 576, 3}, {14, 576, 96, 2},  {7, 576, 160, 1},
      {7, 160, 960, 3}, {7, 960, 160, 2}, {7, 960, 320, 1}, {7, 320, 1280, 1},
  };
  for (const auto& p : pw) v.push_back(pointwise(kMbv2, "mbv2.", "pointwise", p.hw, p.cin, p.cout, p.count));
  // Its 3x3 depthwise convolutions, one per inverted residual block (17; the
  // table t/c/n/s 1/16/1/1, 6/24/2/2, 6/32/3/2, 6/64/4/2, 6/96/3/1, 6/160/3/2,
  // 6/320/1/1): a stage's first block has the stage's stride on the previous
  // stage's width times t, its other blocks stride 1 on its own width times t,
  // so the first block of a stride-1 stage shares a shape with the previous
  // stage's other blocks (14x14x384 four times, 7x7x960 three times).
  const struct {
    size_t hw, channels, stride;
    int count;
  } dw[] = {
      {112, 32, 1, 1}, {112, 96, 2, 1}, {56, 144, 1, 1}, {56, 144, 2, 1}, {28, 192, 1, 2},
      {28, 192, 2, 1}, {14, 384, 1, 4}, {14, 576, 1, 2}, {14, 576, 2, 1}, {7, 960, 1, 3},
  };
  for (const auto& d : dw)
    v.push_back(depthwise(kMbv2, "mbv2.", "depthwise", d.hw, d.channels, 3, d.stride, d.count));
  // EfficientNet-B0-224's depthwise convolutions (3x3 and 5x5, one per MBConv
  // block: expansion t, kernel, stride, channels, blocks 1/3/1/16/1, 6/3/2/24/2,
  // 6/5/2/40/2, 6/3/2/80/3, 6/5/1/112/3, 6/5/2/192/4, 6/3/1/320/1).
  const struct {
    size_t hw, channels, k, stride;
    int count;
  } edw[] = {
      {112, 32, 3, 1, 1}, {112, 96, 3, 2, 1}, {56, 144, 3, 1, 1}, {56, 144, 5, 2, 1},
      {28, 240, 5, 1, 1}, {28, 240, 3, 2, 1}, {14, 480, 3, 1, 2}, {14, 480, 5, 1, 1},
      {14, 672, 5, 1, 2}, {14, 672, 5, 2, 1}, {7, 1152, 5, 1, 3}, {7, 1152, 3, 1, 1},
  };
  for (const auto& d : edw)
    v.push_back(depthwise(kEffb0, "effb0.", "depthwise", d.hw, d.channels, d.k, d.stride, d.count));
  // ResNet18-224: conv1, the 3x3 convolutions of the four stages (the first
  // of stages 2-4 with stride 2), the 1x1 stride-2 downsample convolutions.
  v.push_back(conv(kRn18, "rn18.", "conv1", 224, 3, 64, 7, 2, 1));
  v.push_back(conv(kRn18, "rn18.", "3x3", 56, 64, 64, 3, 1, 4));
  for (size_t c = 64; c < 512; c *= 2) {
    v.push_back(conv(kRn18, "rn18.", "3x3", 56 * 64 / c, c, 2 * c, 3, 2, 1));
    v.push_back(conv(kRn18, "rn18.", "3x3", 28 * 64 / c, 2 * c, 2 * c, 3, 1, 3));
  }
  for (size_t c = 64; c < 512; c *= 2)
    v.push_back(conv(kRn18, "rn18.", "downsample", 56 * 64 / c, c, 2 * c, 1, 2, 1));
  Case sq = pointwise(kSquare, "", "gemm", 1, 512, 512, 1);
  sq.name = kSquareName;
  sq.shape.in_h = 512;
  v.push_back(sq);
  return v;
}

// Random operands for one case, the same for every variant and the peer.
struct Data {
  std::vector<int8_t> in, weights, out;
  std::vector<int32_t> bias;
  std::vector<float> scale;
  int32_t in_zp = 0;
  QGemmOutput params;
};

Data make_data(const Case& c) {
  std::mt19937 gen(1234);
  std::uniform_int_distribution<int> byte(-128, 127), weight(-127, 127), unit(0, 1000);
  Data d;
  const ConvShape& s = c.shape;
  d.in.resize(s.in_h * s.in_w * s.in_c * c.groups);
  d.weights.resize(c.gemm_n() * c.gemm_k());
  d.out.resize(c.gemm_m() * c.gemm_n());
  for (auto& x : d.in) x = static_cast<int8_t>(byte(gen));
  for (auto& x : d.weights) x = static_cast<int8_t>(weight(gen));
  d.bias.resize(c.gemm_n());
  d.scale.resize(c.gemm_n());
  for (auto& x : d.bias) x = byte(gen) * 64;
  // Accumulators spread about 74 * 73 * sqrt(K): scale them to about +-40.
  const float spread = 40.0f / (74.0f * 73.0f * std::sqrt(static_cast<float>(c.gemm_k())));
  for (auto& x : d.scale) x = spread * (0.5f + static_cast<float>(unit(gen)) / 1000.0f);
  d.in_zp = byte(gen);
  d.params = {3, -128, 127};
  return d;
}

using Run = std::function<void()>;

// huddle on `uk`: weights packed (or the convolution prepared) once; the
// returned call computes d.out from d.in.
Run prepare_huddle(const QGemmUkernel& uk, const Case& c, Data& d) {
  switch (c.kind) {
    case Kind::gemm: {
      const size_t m = c.gemm_m(), n = c.gemm_n(), k = c.gemm_k();
      auto packed = std::make_shared<std::vector<uint8_t>>(qgemm_packed_size(uk, n, k));
      qgemm_pack(uk, n, k, d.weights.data(), d.bias.data(), d.scale.data(), d.in_zp, packed->data());
      return [&uk, &d, packed, m, n, k] {
        uk.gemm(m, n, k, d.in.data(), k, packed->data(), d.out.data(), n, d.params);
      };
    }
    case Kind::conv: {
      auto qc =
          std::make_shared<QConv>(uk, c.shape, d.weights.data(), d.bias.data(), d.scale.data(), d.in_zp);
      return [&d, qc] { qc->run(d.in.data(), d.out.data(), d.params); };
    }
    case Kind::dwconv: {
      const QDwConvUkernel& dw = dwconv_for(uk.isa);
      const ConvShape& s = c.shape;
      QDwConvShape ds;
      ds.in_h = s.in_h;
      ds.in_w = s.in_w;
      ds.channels = ds.in_stride = ds.out_stride = c.groups;
      ds.kernel = static_cast<uint32_t>(s.kernel_h);
      ds.stride = static_cast<uint32_t>(s.stride_h);
      ds.pad_top = static_cast<uint32_t>(s.pad_top);
      ds.pad_left = static_cast<uint32_t>(s.pad_left);
      ds.pad_bottom = static_cast<uint32_t>(s.pad_bottom);
      ds.pad_right = static_cast<uint32_t>(s.pad_right);
      // d.weights are XNNPACK's [channel][kh][kw]; the family takes [kh][kw][channel].
      const size_t taps = c.gemm_k();
      std::vector<int8_t> w(taps * c.groups);
      for (size_t ch = 0; ch < c.groups; ++ch)
        for (size_t t = 0; t < taps; ++t) w[t * c.groups + ch] = d.weights[ch * taps + t];
      auto packed = std::make_shared<std::vector<uint8_t>>(dwconv_packed_size(dw, ds.kernel, c.groups));
      dwconv_pack(dw, ds.kernel, c.groups, w.data(), d.bias.data(), d.scale.data(), d.in_zp, packed->data());
      return [&dw, &d, packed, ds] { dw.run(ds, d.in.data(), packed->data(), d.out.data(), d.params); };
    }
  }
  return {};
}

// The same case in XNNPACK (every kind is a convolution there), writing
// `out` (d.out's size).
Run prepare_peer(const Case& c, Data& d, std::vector<int8_t>& out) {
  auto op = std::make_shared<XnnConv>(c.shape, c.groups, d.weights.data(), d.bias.data(), d.scale.data(),
                                      d.in_zp, d.params, d.in.data(), out.data());
  return [op] { op->run(); };
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Median milliseconds per call of each of `runs` (thread CPU time, see
// clock.h), measured in rounds: a round takes one sample of every run in
// turn, so a change in the machine's load hits them all alike. A sample is a
// batch of calls lasting about 1 ms (one call when it takes longer); rounds go
// on until `seconds` per run have passed and at least 5 rounds (3 when a
// round takes over 0.3 s) are in. Each run is called once first to warm up.
std::vector<double> median_ms(const std::vector<Run>& runs, double seconds) {
  std::vector<size_t> batch;
  double round = 0;
  for (const Run& run : runs) {
    const double t0 = thread_seconds();
    run();
    const double first = thread_seconds() - t0;
    round += first;
    batch.push_back(first >= 1e-3 ? 1 : static_cast<size_t>(1e-3 / std::max(first, 1e-8)) + 1);
  }
  const size_t min_rounds = round > 0.3 ? 3 : 5;
  std::vector<std::vector<double>> ms(runs.size());
  const auto start = std::chrono::steady_clock::now();
  while (ms[0].size() < min_rounds || seconds_since(start) < seconds * static_cast<double>(runs.size())) {
    for (size_t r = 0; r < runs.size(); ++r) {
      const double t0 = thread_seconds();
      for (size_t i = 0; i < batch[r]; ++i) runs[r]();
      ms[r].push_back((thread_seconds() - t0) * 1e3 / static_cast<double>(batch[r]));
    }
  }
  std::vector<double> out;
  for (auto& v : ms) {
    std::sort(v.begin(), v.end());
    out.push_back(v[v.size() / 2]);
  }
  return out;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
      return line.substr(line.find(':') + 2);
  return "unknown CPU model";
}

// The name of what `uk`'s column runs on case `c`.
const char* variant_name(const QGemmUkernel& uk, const Case& c) {
  return c.kind == Kind::dwconv ? dwconv_for(uk.isa).name : uk.name;
}

const QGemmUkernel* find_variant(const std::string& name) {
  for (const QGemmUkernel* uk : qgemm_all())
    if (name == isa_name(uk->isa) || name == uk->name) return uk;
  return nullptr;
}

// Results of one case.
struct Row {
  const Case* c;
  std::vector<double> ms;   // per variant
  double peer_ms = 0;       // 0: not measured
  int peer_diff = -1;       // max |huddle - XNNPACK| of the best variant's output, -1: not compared
  size_t peer_bytes = 0;    // how many of its output bytes differ from XNNPACK's
  std::vector<Peak> peaks;  // the peak loops, timed in turn with this case (none for depthwise)
};

struct Options {
  double seconds = 0.2;
  std::vector<const QGemmUkernel*> variants;
  std::string filter;
  bool peer = true;
};

void print_rule(size_t variants) { std::printf("%s\n", std::string(46 + variants * 24 + 29, '-').c_str()); }

void print_header(const std::vector<const QGemmUkernel*>& variants) {
  std::printf("%-26s %3s %19s", "case", "x", "GEMM M x N x K");
  for (const QGemmUkernel* uk : variants) std::printf(" | %22s", isa_name(uk->isa));
  std::printf(" | %16s %8s\n", "XNNPACK", "vs XNN");
  std::printf("%-26s %3s %19s", "", "", "");
  for (size_t i = 0; i < variants.size(); ++i) std::printf(" | %8s %7s %5s", "ms", "GMAC/s", "%peak");
  std::printf(" | %8s %7s %8s\n", "ms", "GMAC/s", "");
}

// One line of times: per variant ms, GMAC/s and % of its peak ("-" without
// one in `peaks`), then the peer and the best variant's speed relative to it
// (>1: huddle faster).
void print_times(const char* label, const char* count, const std::string& gemm, double macs,
                 const std::vector<double>& ms, double peer_ms,
                 const std::vector<const QGemmUkernel*>& variants, const std::vector<Peak>& peaks) {
  std::printf("%-26s %3s %19s", label, count, gemm.c_str());
  for (size_t i = 0; i < variants.size(); ++i) {
    const Peak* p = peak_for(peaks, variants[i]->isa);
    const double gmacs = macs / ms[i] * 1e-6;
    if (p)
      std::printf(" | %8.3f %7.1f %4.0f%%", ms[i], gmacs, 100.0 * gmacs / p->gmacs);
    else
      std::printf(" | %8.3f %7.1f %5s", ms[i], gmacs, "-");
  }
  if (peer_ms > 0)
    std::printf(" | %8.3f %7.1f %7.2fx\n", peer_ms, macs / peer_ms * 1e-6, peer_ms / ms.back());
  else
    std::printf(" | %8s %7s %8s\n", "-", "-", "-");
}

// A sum of rows: MACs and per variant and peer ms.
struct Total {
  double macs = 0, peer_ms = 0;
  std::vector<double> ms;
  bool peer = true;
};

// Sum over rows (each times its count) of one net, or of some parts of it
// (`parts` empty: all of them).
Total total(const std::vector<Row>& rows, const std::string& net, const std::vector<std::string>& parts,
            size_t nv) {
  Total t;
  t.ms.assign(nv, 0.0);
  for (const Row& r : rows) {
    if (r.c->net != net) continue;
    if (!parts.empty() && std::find(parts.begin(), parts.end(), r.c->part) == parts.end()) continue;
    t.macs += r.c->macs() * r.c->count;
    for (size_t i = 0; i < nv; ++i) t.ms[i] += r.ms[i] * r.c->count;
    t.peer_ms += r.peer_ms * r.c->count;
    t.peer = t.peer && r.peer_ms > 0;
  }
  if (!t.peer) t.peer_ms = 0;
  return t;
}

// The fp32 depthwise family (kernels/f32dw/) on the depthwise cases: per
// column f32dw_for(isa), against XNNPACK's f32 convolution with groups =
// channels; ReLU6 fused, as in MobileNetV2. Prints its table, the outputs'
// largest difference from XNNPACK and a headline.
void bench_f32dw(const Options& o, const std::vector<Case>& all, bool peer, const std::string& peer_missing) {
  const std::vector<const QGemmUkernel*>& variants = o.variants;
  std::vector<Row> rows;
  double worst = 0;
  for (const Case& c : all) {
    if (c.kind != Kind::dwconv) continue;
    if (!o.filter.empty() && c.name.find(o.filter) == std::string::npos) continue;
    std::fprintf(stderr, "kernels: fp32 %s\n", c.name.c_str());
    F32ConvShape s;
    s.in_h = c.shape.in_h, s.in_w = c.shape.in_w, s.in_c = s.out_c = c.groups;
    s.kernel_h = c.shape.kernel_h, s.kernel_w = c.shape.kernel_w;
    s.stride_h = c.shape.stride_h, s.stride_w = c.shape.stride_w;
    s.pad_top = c.shape.pad_top, s.pad_left = c.shape.pad_left;
    s.pad_bottom = c.shape.pad_bottom, s.pad_right = c.shape.pad_right;
    std::mt19937 gen(1234);
    std::normal_distribution<float> normal;
    const size_t taps = s.kernel_h * s.kernel_w, out_size = s.out_h() * s.out_w() * s.out_c;
    std::vector<float> in(s.in_h * s.in_w * s.in_c), w(taps * s.in_c), w_xnn(w.size()), bias(s.in_c);
    for (auto* v : {&in, &w, &bias})
      for (float& x : *v) x = normal(gen);
    for (size_t ch = 0; ch < s.in_c; ++ch)  // XNNPACK takes [channel][kh][kw]
      for (size_t t = 0; t < taps; ++t) w_xnn[ch * taps + t] = w[t * s.in_c + ch];
    std::vector<float> out(out_size), peer_out(out_size);
    std::vector<Run> runs;
    std::vector<std::shared_ptr<std::vector<float>>> packs;
    for (const QGemmUkernel* uk : variants) {
      const F32DwUkernel& dw = f32dw_for(uk->isa);
      auto packed = std::make_shared<std::vector<float>>(f32dw_packed_size(s) / sizeof(float));
      f32dw_pack(s, w.data(), bias.data(), packed->data());
      const size_t oh = s.out_h();
      runs.push_back([&dw, s, oh, packed, &in, &out] {
        dw.run(s, 0, oh, in.data(), packed->data(), out.data(), kF32Relu6);
      });
    }
    std::shared_ptr<XnnF32DwConv> op;
    if (peer) {
      op =
          std::make_shared<XnnF32DwConv>(s, w_xnn.data(), bias.data(), kF32Relu6, in.data(), peer_out.data());
      runs.push_back([op] { op->run(); });
    }
    Row r{&c, median_ms(runs, o.seconds), 0, -1, 0, {}};
    if (peer) {
      r.peer_ms = r.ms.back();
      r.ms.pop_back();
      runs[variants.size() - 1]();
      for (size_t i = 0; i < out_size; ++i) worst = std::max(worst, double(std::abs(out[i] - peer_out[i])));
    }
    rows.push_back(r);
  }
  if (rows.empty()) return;
  std::printf(
      "\n== fp32 depthwise convolutions, ReLU6 fused (kernels/f32dw/; MAC = pixels x channels x taps)\n");
  std::printf("variants (per column):");
  for (const QGemmUkernel* uk : variants) std::printf(" %s", f32dw_for(uk->isa).name);
  std::printf("\npeer: %s\n",
              peer ? "XNNPACK f32 convolution, groups = channels" : ("none: " + peer_missing).c_str());
  print_header(variants);
  print_rule(variants.size());
  for (const Row& r : rows) {
    char count[16];
    std::snprintf(count, sizeof count, "%d", r.c->count);
    const std::string gemm = std::to_string(r.c->gemm_m()) + "x" + std::to_string(r.c->gemm_n()) + "x" +
                             std::to_string(r.c->gemm_k());
    print_times(("f32." + r.c->name).c_str(), count, gemm, r.c->macs(), r.ms, r.peer_ms, variants, {});
  }
  const std::pair<const char*, const char*> nets[] = {{kMbv2, "MobileNetV2"}, {kEffb0, "EfficientNet-B0"}};
  std::vector<std::pair<std::string, Total>> totals;
  for (const auto& [net, label] : nets) {
    const Total t = total(rows, net, {}, variants.size());
    if (t.macs == 0) continue;
    char mmac[32];
    std::snprintf(mmac, sizeof mmac, "%.0f MMAC", t.macs * 1e-6);
    print_times((std::string(label) + " f32 depthwise").c_str(), "", mmac, t.macs, t.ms, t.peer_ms, variants,
                {});
    totals.emplace_back(label, t);
  }
  if (peer) std::printf("outputs: best variant vs XNNPACK max |difference| %.3g\n", worst);
  for (const auto& [label, t] : totals) {
    if (t.peer_ms > 0)
      std::printf("%s fp32 depthwise total vs XNNPACK: %.2f x [%s %.3f ms, XNNPACK %.3f ms]\n", label.c_str(),
                  t.peer_ms / t.ms.back(), isa_name(variants.back()->isa), t.ms.back(), t.peer_ms);
    else
      std::printf("%s fp32 depthwise total vs XNNPACK: n/a (%s) [%s %.3f ms]\n", label.c_str(),
                  peer ? "not measured" : peer_missing.c_str(), isa_name(variants.back()->isa), t.ms.back());
  }
}

int bench(const Options& o) {
  const std::vector<const QGemmUkernel*>& variants = o.variants;
  const std::string peer_missing = o.peer ? xnnpack_unavailable() : "skipped (--no-peer)";
  const bool peer = peer_missing.empty();

  std::printf(
      "huddle kernels bench: int8 GEMM family, 1 thread, median thread CPU ms per call (>= %.2f s per "
      "case)\n",
      o.seconds);
  std::printf("CPU: %s (%s)\n", cpu_model().c_str(), cpu_feature_summary().c_str());
  std::printf("variants:");
  for (const QGemmUkernel* uk : variants) std::printf(" %s", uk->name);
  std::printf("\ndepthwise variants (per column):");
  for (const QGemmUkernel* uk : variants) std::printf(" %s", dwconv_for(uk->isa).name);
  std::printf("\npeer: %s\n", peer ? "XNNPACK (qc8 convolution, per-channel int8; 1x1 for the GEMMs, "
                                     "groups = channels for the depthwise ones)"
                                   : ("none: " + peer_missing).c_str());

  // The peak loops are timed in turn with the kernels of every case, so a
  // case's "% of peak" compares two figures taken under the same load.
  const std::vector<PeakLoop> loops = peak_loops();

  std::vector<Case> all = cases();
  std::vector<Row> rows;
  int compared = 0, identical = 0, worst_diff = 0;
  for (const Case& c : all) {
    if (!o.filter.empty() && c.name.find(o.filter) == std::string::npos) continue;
    std::fprintf(stderr, "kernels: %s\n", c.name.c_str());
    Row r{&c, {}, 0, -1, 0, {}};
    Data d = make_data(c);
    std::vector<Run> runs;
    for (const QGemmUkernel* uk : variants) runs.push_back(prepare_huddle(*uk, c, d));
    std::vector<int8_t> peer_out(d.out.size());
    if (peer) runs.push_back(prepare_peer(c, d, peer_out));
    // Depthwise convolutions are memory-bound: no % of peak, no peak loops.
    const size_t nloops = c.kind == Kind::dwconv ? 0 : loops.size();
    for (size_t i = 0; i < nloops; ++i) runs.push_back(loops[i].call);
    std::vector<double> ms = median_ms(runs, o.seconds);
    for (size_t i = 0; i < nloops; ++i)
      r.peaks.push_back({loops[i].what, loops[i].isa, loops[i].macs / ms[runs.size() - nloops + i] * 1e-6});
    ms.resize(variants.size() + (peer ? 1 : 0));
    if (peer) {
      r.peer_ms = ms.back();
      ms.pop_back();
      runs[variants.size() - 1]();
      int diff = 0;
      for (size_t i = 0; i < d.out.size(); ++i) {
        diff = std::max(diff, std::abs(d.out[i] - peer_out[i]));
        r.peer_bytes += d.out[i] != peer_out[i];
      }
      r.peer_diff = diff;
      ++compared;
      identical += diff == 0;
      worst_diff = std::max(worst_diff, diff);
    }
    r.ms = ms;
    rows.push_back(r);
  }

  // The peak the totals are rated against: per loop, the median over the cases.
  std::vector<Peak> peaks;
  std::printf("\nmeasured int8 peak, 1 thread, timed in turn with every case (median over the cases):\n");
  const bool timed = std::any_of(rows.begin(), rows.end(), [](const Row& r) { return !r.peaks.empty(); });
  if (loops.empty() || !timed) std::printf("  none: no peak loop for this CPU, or no case timed with them\n");
  for (size_t i = 0; i < loops.size() && timed; ++i) {
    std::vector<double> g;
    for (const Row& r : rows)
      if (!r.peaks.empty()) g.push_back(r.peaks[i].gmacs);
    std::sort(g.begin(), g.end());
    peaks.push_back({loops[i].what, loops[i].isa, g[g.size() / 2]});
    std::printf("  %-22s %8.1f GMAC/s  (range %.1f to %.1f; the %s tier's peak)\n", loops[i].what.c_str(),
                g[g.size() / 2], g.front(), g.back(), isa_name(loops[i].isa));
  }

  // One table per net, the depthwise cases in a table of their own.
  std::string table;
  for (const Row& r : rows) {
    const Case& c = *r.c;
    const bool dw = c.kind == Kind::dwconv;
    if (c.net + (dw ? " dw" : "") != table) {
      table = c.net + (dw ? " dw" : "");
      std::printf("\n== %s%s\n", c.net.c_str(),
                  dw ? ": depthwise convolutions (M x N x K = pixels x channels x taps; memory-bound, "
                       "so no % of peak)"
                  : c.net == kMbv2 ? ": stem and pointwise convolutions"
                                   : "");
      print_header(variants);
      print_rule(variants.size());
    }
    char count[16];
    std::snprintf(count, sizeof count, "%d", c.count);
    const std::string gemm =
        std::to_string(c.gemm_m()) + "x" + std::to_string(c.gemm_n()) + "x" + std::to_string(c.gemm_k());
    print_times(c.name.c_str(), count, gemm, c.macs(), r.ms, r.peer_ms, variants, r.peaks);
  }

  // Totals per net, and per part where a net has several.
  std::vector<std::string> nets;
  std::map<std::string, std::vector<std::string>> parts;
  for (const Row& r : rows) {
    if (r.c->net == kSquare) continue;
    if (std::find(nets.begin(), nets.end(), r.c->net) == nets.end()) nets.push_back(r.c->net);
    auto& p = parts[r.c->net];
    if (std::find(p.begin(), p.end(), r.c->part) == p.end()) p.push_back(r.c->part);
  }
  if (!nets.empty()) {
    std::printf("\n== totals (each layer times its count)\n");
    print_header(variants);
    print_rule(variants.size());
  }
  for (const std::string& n : nets) {
    std::vector<std::string> labels = parts[n].size() > 1 ? parts[n] : std::vector<std::string>{};
    labels.push_back("");
    for (const std::string& part : labels) {
      const Total t =
          total(rows, n, part.empty() ? std::vector<std::string>{} : std::vector{part}, variants.size());
      const std::string label = (n == kMbv2    ? "MobileNetV2"
                                 : n == kRn18  ? "ResNet18"
                                 : n == kEffb0 ? "EfficientNet-B0"
                                               : n) +
                                " " + (part.empty() ? "all" : part);
      char mmac[32];
      std::snprintf(mmac, sizeof mmac, "%.0f MMAC", t.macs * 1e-6);
      print_times(label.c_str(), "", mmac, t.macs, t.ms, t.peer_ms, variants,
                  part == "depthwise" ? std::vector<Peak>{} : peaks);
    }
  }
  if (compared) {
    std::printf("\noutputs: best variant vs XNNPACK identical on %d of %d cases (max |difference| %d)\n",
                identical, compared, worst_diff);
    for (const Row& r : rows)
      if (r.peer_diff > 0)
        std::printf("  %s: %zu of %zu bytes differ (max |difference| %d)\n", r.c->name.c_str(), r.peer_bytes,
                    r.c->gemm_m() * r.c->gemm_n(), r.peer_diff);
  }

  // Headlines.
  std::printf("\n== headlines\n");
  for (const Row& r : rows) {
    if (r.c->name != kSquareName) continue;
    for (size_t i = variants.size(); i-- > 0;) {
      const Peak* p = peak_for(r.peaks, variants[i]->isa);
      const double gmacs = r.c->macs() / r.ms[i] * 1e-6;
      if (p)
        std::printf(
            "512^3 GEMM: %.1f GMAC/s = %.1f%% of measured peak (target >= 70%%) [%s%s; peak %s %.1f "
            "GMAC/s]\n",
            gmacs, 100.0 * gmacs / p->gmacs, isa_name(variants[i]->isa),
            i + 1 == variants.size() ? ", best" : "", p->what.c_str(), p->gmacs);
      else
        std::printf("512^3 GEMM: %.1f GMAC/s [%s; no measured peak]\n", gmacs, isa_name(variants[i]->isa));
    }
  }
  const struct {
    const char* label;
    const char* net;
    std::vector<std::string> parts;
    const char* target;
  } heads[] = {
      {"MobileNetV2 pointwise total", kMbv2, {"pointwise"}, " (target >= 1.3x)"},
      {"MobileNetV2 depthwise total", kMbv2, {"depthwise"}, " (target >= 1.3x)"},
      {"MobileNetV2 stem+pointwise total", kMbv2, {"stem", "pointwise"}, ""},
      {"MobileNetV2 all convolutions total", kMbv2, {}, ""},
      {"ResNet18 convolutions total", kRn18, {}, ""},
  };
  for (const auto& h : heads) {
    const Total t = total(rows, h.net, h.parts, variants.size());
    if (t.macs == 0) continue;
    if (t.peer_ms > 0)
      std::printf("%s vs XNNPACK: %.2f x%s [%s %.3f ms, XNNPACK %.3f ms]\n", h.label, t.peer_ms / t.ms.back(),
                  h.target, isa_name(variants.back()->isa), t.ms.back(), t.peer_ms);
    else
      std::printf("%s vs XNNPACK: n/a (%s) [%s %.3f ms]\n", h.label,
                  peer ? "not measured" : peer_missing.c_str(), isa_name(variants.back()->isa), t.ms.back());
  }
  bench_f32dw(o, all, peer, peer_missing);
  return 0;
}

// --run: prepare one case for one variant, run it `reps` times.
int run_one(const std::string& variant, const std::string& name, long reps) {
  const QGemmUkernel* uk = find_variant(variant);
  if (!uk || !isa_runnable(uk->isa)) {
    std::fprintf(stderr, "kernels: variant '%s' is unknown or not runnable here\n", variant.c_str());
    return 2;
  }
  const std::vector<Case> all = cases();
  const auto c = std::find_if(all.begin(), all.end(), [&](const Case& x) { return x.name == name; });
  if (c == all.end()) {
    std::fprintf(stderr, "kernels: unknown case '%s' (see kernels --list)\n", name.c_str());
    return 2;
  }
  Data d = make_data(*c);
  const Run run = prepare_huddle(*uk, *c, d);
  for (long i = 0; i < reps; ++i) run();
  long sum = 0;
  for (int8_t x : d.out) sum += x;
  std::printf("ran %s on %s %ld times (%.1f MMAC each; checksum %ld)\n", c->name.c_str(),
              variant_name(*uk, *c), reps, c->macs() * 1e-6, sum);
  return 0;
}

int main_(int argc, char** argv) {
  Options o;
  std::string run_variant, run_case;
  long reps = 1;
  bool list = false;
  std::vector<std::string> wanted;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](int n = 1) -> const char* {
      if (i + n >= argc) {
        std::fprintf(stderr, "kernels: %s needs a value (see kernels --help)\n", arg.c_str());
        std::exit(2);
      }
      return argv[i + n];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (arg == "--seconds") {
      o.seconds = std::atof(value());
      ++i;
      if (!(o.seconds >= 0 && o.seconds <= 60)) {
        std::fprintf(stderr, "kernels: --seconds needs a number from 0 to 60\n");
        return 2;
      }
    } else if (arg == "--variants") {
      std::string s = value();
      ++i;
      for (size_t p = 0; p <= s.size();) {
        const size_t q = std::min(s.find(',', p), s.size());
        if (q > p) wanted.push_back(s.substr(p, q - p));
        p = q + 1;
      }
    } else if (arg == "--filter") {
      o.filter = value();
      ++i;
    } else if (arg == "--no-peer") {
      o.peer = false;
    } else if (arg == "--list") {
      list = true;
    } else if (arg == "--run") {
      run_variant = value(1);
      run_case = value(2);
      i += 2;
    } else if (arg == "--reps") {
      char* end = nullptr;
      reps = std::strtol(value(), &end, 10);
      ++i;
      if (*end != '\0' || reps < 0 || reps > 1000000) {
        std::fprintf(stderr, "kernels: --reps needs a whole number from 0 to 1000000\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "kernels: unknown option '%s' (see kernels --help)\n", arg.c_str());
      return 2;
    }
  }
  if (list) {
    for (const Case& c : cases())
      std::printf("%-28s %-16s %-11s x%d  GEMM %zux%zux%zu\n", c.name.c_str(), c.net.c_str(), c.part.c_str(),
                  c.count, c.gemm_m(), c.gemm_n(), c.gemm_k());
    return 0;
  }
  if (!run_variant.empty()) return run_one(run_variant, run_case, reps);

  for (const QGemmUkernel* uk : qgemm_runnable())
    if (wanted.empty() || std::find(wanted.begin(), wanted.end(), isa_name(uk->isa)) != wanted.end())
      o.variants.push_back(uk);
  for (const std::string& w : wanted)
    if (!find_variant(w) || !isa_runnable(find_variant(w)->isa)) {
      std::fprintf(stderr, "kernels: variant '%s' is unknown or not runnable here\n", w.c_str());
      return 2;
    }
  if (o.variants.empty()) {
    std::fprintf(stderr, "kernels: no variant selected\n");
    return 2;
  }
  return bench(o);
}

}  // namespace
}  // namespace huddle::bench

int main(int argc, char** argv) {
  try {
    return huddle::bench::main_(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernels: %s\n", e.what());
    return 1;
  }
}
