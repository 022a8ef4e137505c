// Subcommands of the `huddle` tool. Each takes its own argv (argv[0] is the
// subcommand's name) and returns the process exit status: 0 ok, 1 failure or
// bad input, 2 usage error.
#pragma once

namespace huddle::tools {

int selftest(int argc, char** argv);
int convert(int argc, char** argv);
int info(int argc, char** argv);
int infer(int argc, char** argv);
int bench(int argc, char** argv);
int quantize(int argc, char** argv);
int run(int argc, char** argv);
int serve_node(int argc, char** argv);  // huddle node
int ask(int argc, char** argv);
int recognize(int argc, char** argv);
int nodes(int argc, char** argv);
int coordinator_service(int argc, char** argv);  // huddle coordinator
int demo(int argc, char** argv);
int identity(int argc, char** argv);
int pair(int argc, char** argv);
int unpair(int argc, char** argv);

}  // namespace huddle::tools
