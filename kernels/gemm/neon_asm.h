// Pieces of the AArch64 GEMM tiles' asm main loops: their 16 accumulators
// live in v16-v31 during the loop and in memory (16 int32x4_t at the asm
// operand %[acc], in register order) around it.
#pragma once

#define HUDDLE_ASM_LOAD_V16_V31     \
  "ldp q16, q17, [%[acc], #0]\n"   \
  "ldp q18, q19, [%[acc], #32]\n"  \
  "ldp q20, q21, [%[acc], #64]\n"  \
  "ldp q22, q23, [%[acc], #96]\n"  \
  "ldp q24, q25, [%[acc], #128]\n" \
  "ldp q26, q27, [%[acc], #160]\n" \
  "ldp q28, q29, [%[acc], #192]\n" \
  "ldp q30, q31, [%[acc], #224]\n"

#define HUDDLE_ASM_STORE_V16_V31    \
  "stp q16, q17, [%[acc], #0]\n"   \
  "stp q18, q19, [%[acc], #32]\n"  \
  "stp q20, q21, [%[acc], #64]\n"  \
  "stp q22, q23, [%[acc], #96]\n"  \
  "stp q24, q25, [%[acc], #128]\n" \
  "stp q26, q27, [%[acc], #160]\n" \
  "stp q28, q29, [%[acc], #192]\n" \
  "stp q30, q31, [%[acc], #224]\n"
