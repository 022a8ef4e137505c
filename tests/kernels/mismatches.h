// Counts the failed checks of a loop over many values, keeping the first
// one's description, so that one assertion ends the loop: a Catch assertion
// (and an INFO message) per value is slow under qemu.
#pragma once

#include <cstddef>
#include <string>

namespace huddle::test {

class Mismatches {
 public:
  // Records a failure when !ok; describe() (returning a std::string) runs for the first one only.
  template <class Describe>
  void check(bool ok, Describe describe) {
    if (!ok && count_++ == 0) first_ = describe();
  }
  size_t count() const { return count_; }
  // The first failure, or "" when there was none.
  const std::string& first() const { return first_; }

 private:
  size_t count_ = 0;
  std::string first_;
};

}  // namespace huddle::test
