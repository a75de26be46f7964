// Errors. What a user can cause (a bad file, a wrong shape, a bad option) throws arwkv::Error with a
// message naming the file and the problem; only the CLI and the server catch it. Broken internal
// invariants abort through ARWKV_ASSERT.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace arwkv {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] void assert_failed(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace arwkv

#define ARWKV_ASSERT(cond, ...)                                                          \
  do {                                                                                   \
    if (!(cond)) ::arwkv::assert_failed(#cond, __FILE__, __LINE__, fmt::format(__VA_ARGS__)); \
  } while (0)
