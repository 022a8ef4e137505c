// Seeded random numbers for the kernel tests.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <random>

namespace huddle::test {

class Rng {
 public:
  explicit Rng(uint32_t seed) : gen_(seed) {}
  // Uniform integer in [lo, hi].
  size_t uniform(size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(gen_); }
  bool coin(double p) { return std::bernoulli_distribution(p)(gen_); }
  template <class T>
  T pick(std::initializer_list<T> v) {
    return *(v.begin() + uniform(0, v.size() - 1));
  }
  float normal() { return std::normal_distribution<float>()(gen_); }

 private:
  std::mt19937 gen_;
};

}  // namespace huddle::test
