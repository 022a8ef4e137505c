// Catch2's main for builds where Debian's prebuilt Catch2WithMain does not fit
// (cross builds: that library is built for the host architecture only).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
