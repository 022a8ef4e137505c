// <immintrin.h> for the AVX-512 variant files. GCC 12 initialises its
// "undefined" vectors from themselves (_mm512_undefined_epi32), which
// -Wuninitialized / -Wmaybe-uninitialized report once inlined (GCC bug
// 105593). The warning is issued where the intrinsic is inlined, so it is
// turned off for the whole including file; clang has no such false warning.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
