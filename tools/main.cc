// The `huddle` command-line entry point: dispatches to subcommands.
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include "kernels/codebook/codebook.h"
#include "kernels/dwconv/dwconv.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/pool.h"
#include "kernels/f32/f32.h"
#include "kernels/gemm/gemm.h"
#include "kernels/isa.h"
#include "kernels/preprocess/preprocess.h"
#include "protocol/socket.h"
#include "tools/commands.h"

namespace {

constexpr const char* kUsage =
    "usage: huddle [--help] [--version] <command> [<args>]\n"
    "\n"
    "huddle recognises one scene with several devices on a LAN; each device runs\n"
    "a node with an int8 engine.\n"
    "\n"
    "commands:\n"
    "  selftest   check every int8 GEMM kernel variant this CPU runs against the\n"
    "             scalar reference and report their speed\n"
    "  convert    turn an ONNX model into a huddle model file (.hdm)\n"
    "  quantize   make an int8 model from an fp32 one, with a fidelity report\n"
    "  info       what a model file (.hdm) holds: inputs, outputs, ops, arena\n"
    "  infer      run a model once on .npy tensors and write its outputs as .npy\n"
    "  bench      time a model's inference and load, and report its memory use\n"
    "  run        run a recognition task (classify, ...) on images, standalone\n"
    "  node       serve one task to coordinators over ZeroMQ\n"
    "  ask        send images to a node and print its answers\n"
    "  recognize  recognise images with the pool's nodes (found over mDNS) and\n"
    "             print the fused scene\n"
    "  nodes      list the pool's nodes: task, model, address, state, load\n"
    "  coordinator serve the pool to other programs over ZeroMQ\n"
    "  demo       start a pool of task nodes on this machine and recognise a photo\n"
    "  identity   this device's id and public key (created on first use)\n"
    "  pair       list the nodes on the LAN and pair with one (both devices show a\n"
    "             code to compare); without pairing a node gets no image\n"
    "  unpair     forget a paired device (and tell it, when it can be reached)\n"
    "\n"
    "Run 'huddle <command> --help' for a command's options.\n"
    "Environment: HUDDLE_ISA=ref|avx2|avx512vnni|neon|neondot|i8mm forces a kernel variant.\n";

int print_version() {
  using namespace huddle::kernels;
  std::printf("huddle %s\n", HUDDLE_VERSION);
  std::string variants;
  for (Isa isa : runnable_isas()) variants += std::string(variants.empty() ? "" : " ") + isa_name(isa);
  std::printf("kernel variants this CPU runs: %s\n", variants.c_str());
  std::printf("selected: %s\n", isa_name(selected_isa()));
  const std::pair<const char*, const char*> families[] = {
      {"int8 gemm/conv", qgemm().name},
      {"int8 depthwise", dwconv().name},
      {"int8 elementwise", qs8_elementwise().name},
      {"int8 lookup", x8_lut().name},
      {"int8 pooling", qs8_pool().name},
      {"fp32 gemm/conv", f32gemm().name},
      {"codebook fc", codebook_fc().name},
      {"preprocess", preprocess().name},
  };
  for (const auto& [family, name] : families) std::printf("  %-18s %s\n", family, name);
  std::printf("cpu features: %s\n", cpu_feature_summary().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  huddle::protocol::keep_freed_memory();
  // Every image a node or `huddle run` decodes needs buffers of megabytes
  // (a 1352x900 photo: 3.6 MB of pixels, more for the decoder's rows). With
  // glibc's defaults each is a fresh mmap, page-faulted in and unmapped on
  // free, for every image: darknet's kite.jpg decoded in 44 ms instead of 15.
  // Kept on the heap instead, freed buffers serve the next image.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view cmd = argv[1];
  try {
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    // A bad HUDDLE_ISA is reported before any command prints anything.
    huddle::kernels::selected_isa();
    if (cmd == "--version" || cmd == "-V") return print_version();
    if (cmd == "selftest") return huddle::tools::selftest(argc - 1, argv + 1);
    if (cmd == "convert") return huddle::tools::convert(argc - 1, argv + 1);
    if (cmd == "info") return huddle::tools::info(argc - 1, argv + 1);
    if (cmd == "infer") return huddle::tools::infer(argc - 1, argv + 1);
    if (cmd == "bench") return huddle::tools::bench(argc - 1, argv + 1);
    if (cmd == "quantize") return huddle::tools::quantize(argc - 1, argv + 1);
    if (cmd == "run") return huddle::tools::run(argc - 1, argv + 1);
    if (cmd == "node") return huddle::tools::serve_node(argc - 1, argv + 1);
    if (cmd == "ask") return huddle::tools::ask(argc - 1, argv + 1);
    if (cmd == "recognize") return huddle::tools::recognize(argc - 1, argv + 1);
    if (cmd == "nodes") return huddle::tools::nodes(argc - 1, argv + 1);
    if (cmd == "coordinator") return huddle::tools::coordinator_service(argc - 1, argv + 1);
    if (cmd == "demo") return huddle::tools::demo(argc - 1, argv + 1);
    if (cmd == "identity") return huddle::tools::identity(argc - 1, argv + 1);
    if (cmd == "pair") return huddle::tools::pair(argc - 1, argv + 1);
    if (cmd == "unpair") return huddle::tools::unpair(argc - 1, argv + 1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "huddle: %s\n", e.what());
    return 1;
  }
  if (!cmd.empty() && cmd[0] == '-')
    std::fprintf(stderr, "huddle: unknown option '%s' (see 'huddle --help')\n", argv[1]);
  else
    std::fprintf(stderr, "huddle: unknown command '%s' (see 'huddle --help')\n", argv[1]);
  return 2;
}
