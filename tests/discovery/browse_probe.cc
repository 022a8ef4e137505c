// A test program for tests/discovery-test.sh: browses `_huddle._tcp` and
// prints each event as a line, or publishes one service whose state turns
// ready later. Runs until SIGINT or SIGTERM.
//
//   browse_probe browse
//     join|update|leave ID TASK STATE ADDRESS:PORT INSTANCE  (one line per event)
//   browse_probe publish INSTANCE ID TASK PORT READY_AFTER_MS
//     "established INSTANCE" once the daemon confirms it (INSTANCE as renamed),
//     "state ready" once the state changed
// The library's log lines go to stderr.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>

#include "discovery/discovery.h"

using namespace huddle::discovery;

namespace {

void log_line(const std::string& line) {
  std::fprintf(stderr, "probe: %s\n", line.c_str());
  std::fflush(stderr);
}

// Waits for SIGINT or SIGTERM (blocked in every thread), at most `ms` when
// given. True if one came.
bool wait_signal(sigset_t& signals, long ms = -1) {
  if (ms < 0) {
    int sig = 0;
    return sigwait(&signals, &sig) == 0;
  }
  const timespec limit{ms / 1000, (ms % 1000) * 1000000};
  return sigtimedwait(&signals, nullptr, &limit) > 0;
}

int browse(sigset_t& signals) {
  Browser browser(
      [](const Event& e) {
        const Service& s = e.service;
        std::printf("%s %s %s %s %s:%u %s\n", kind_name(e.kind), s.id.c_str(), s.task.c_str(),
                    s.state.c_str(), s.address.c_str(), unsigned{s.port}, s.instance.c_str());
        std::fflush(stdout);
      },
      log_line);
  wait_signal(signals);
  return 0;
}

int publish(sigset_t& signals, char** argv) {
  Announcement a;
  a.instance = argv[0];
  a.id = argv[1];
  a.task = argv[2];
  a.port = static_cast<uint16_t>(std::atoi(argv[3]));
  const long ready_after_ms = std::atol(argv[4]);
  Publisher publisher(a, log_line);
  while (!publisher.established())
    if (wait_signal(signals, 10)) return 0;
  std::printf("established %s\n", publisher.instance().c_str());
  std::fflush(stdout);
  if (wait_signal(signals, ready_after_ms)) return 0;
  publisher.set_state("ready");
  std::printf("state ready\n");
  std::fflush(stdout);
  wait_signal(signals);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "browse" && argc == 2) return browse(signals);
  if (mode == "publish" && argc == 7) return publish(signals, argv + 2);
  std::fputs("usage: browse_probe browse | browse_probe publish INSTANCE ID TASK PORT READY_AFTER_MS\n",
             stderr);
  return 2;
}
