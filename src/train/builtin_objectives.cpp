// The stage kinds the arwkv program knows: one register_objective line per kind (align, kd, sft
// register here as their objectives land).
#include "train/objective.h"

namespace arwkv {

void register_builtin_objectives() {}

}  // namespace arwkv
