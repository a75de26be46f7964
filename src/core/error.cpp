#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace arwkv {

void assert_failed(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "arwkv: internal error at %s:%d: %s (%s)\n", file, line, msg.c_str(), expr);
  std::abort();
}

}  // namespace arwkv
