// The loss curves of a run: out/curves.png drawn from metrics.jsonl, one row per stage: the
// training loss (raw, light; smoothed by a moving average, dark) and the validation loss (red,
// with dots) against the stage's training tokens, and beside it, for stages validated against the
// teacher, the validation KL with the top-1 agreement printed at its points. A value axis is
// logarithmic when its values are positive and span more than a decade and a half.
#pragma once

#include <string>
#include <vector>

namespace arwkv {

// Lines of the metrics file that do not parse (a write cut short) are skipped; nothing to draw
// writes nothing. Throws arwkv::Error naming png_path when it cannot be written.
void draw_curves(const std::string& metrics_path, const std::string& png_path);

// Held-out loss by context length (arwkv eval --plot): the mean next-token loss of each model
// against the tokens of context (log2 axis) on the left, and the student's KL to the teacher
// against the same axis on the right when there is one. Throws arwkv::Error naming png_path.
struct PositionCurve {
  std::string name;
  std::vector<double> context, value;  // bucket centres (tokens of context), mean loss or KL (nats)
};
void draw_position_curves(const std::string& title, const std::vector<PositionCurve>& loss, const PositionCurve* kl,
                          const std::string& png_path);

}  // namespace arwkv
