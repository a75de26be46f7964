// A small RGB raster for the training curves: lines, rectangles, text in a built-in 5×7 bitmap
// font, and a PNG writer (zlib-compressed, no filtering).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace arwkv {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

class Image {
 public:
  Image(int width, int height, Rgb background);

  int width() const { return w_; }
  int height() const { return h_; }
  Rgb at(int x, int y) const { return px_[static_cast<size_t>(y) * w_ + x]; }
  void set(int x, int y, Rgb c);  // ignores points outside
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  void rect(int x0, int y0, int x1, int y1, Rgb c);  // filled, inclusive
  // Text with its top-left corner at (x, y), `scale` pixels per font dot; capitals other than M
  // and G are drawn in lower case, characters outside the font as a box. Returns the width drawn.
  int text(int x, int y, const std::string& s, Rgb c, int scale = 1);
  static int text_width(const std::string& s, int scale = 1);

  // Throws arwkv::Error naming path when it cannot be written; replaced atomically.
  void write_png(const std::string& path) const;

 private:
  int w_, h_;
  std::vector<Rgb> px_;
};

}  // namespace arwkv
