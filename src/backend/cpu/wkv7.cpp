// The CPU forms of WKV-7. For now they run the scalar reference; the fast forms replace this file.
#include "backend/cpu/wkv7.h"

#include "backend/cpu/ref/wkv7_ref.h"

namespace arwkv::cpu {

void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
                  Tensor reset) {
  ref::wkv7_forward(y, state, r, w, k, v, a, b, reset);
}

void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b) {
  ref::wkv7_decode(y, state, r, w, k, v, a, b);
}

}  // namespace arwkv::cpu
