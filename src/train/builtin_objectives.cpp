// The stage kinds the arwkv program knows: one register_objective line per kind (align, kd, sft
// register here as their objectives land).
#include "train/objective.h"
#include "train/objectives.h"

namespace arwkv {

void register_builtin_objectives() { register_student_objectives(); }

}  // namespace arwkv
