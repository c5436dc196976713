// Internal to the plot writer (plot.cc lays out, plot_svg.cc and plot_png.cc draw): a figure as a list of
// drawing items in pixel coordinates (origin top left, y down), rendered by two back ends.
//
// Text metrics are those of the PNG bitmap font: a glyph is 5x7 pixels (plus 2 rows of descender) in a
// 6-pixel advance, multiplied by an integer `scale`. The SVG back end uses a monospace font of size
// 10 * scale, whose advance (~0.6 em) matches.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"

namespace cw::eval::plot_internal {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

struct Point {
  double x = 0, y = 0;
};

struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // x0 <= x1, y0 <= y1
};

// A filled rectangle (no outline).
struct RectItem {
  Box box;
  Rgb fill;
  std::string css_class;  // SVG only ("cell" for heatmap cells); empty for none
};

// A straight segment with square caps (axes, ticks, grid lines, legend swatches).
struct LineItem {
  Point a, b;
  Rgb color;
  double width = 1;
};

// A data line: runs of joined points (gaps between runs), clipped to `clip`. One SVG <path> each.
struct PathItem {
  std::vector<std::vector<Point>> runs;
  Rgb color;
  double width = 2;
  Box clip;
};

enum class Anchor { kStart, kMiddle, kEnd };

// Text whose baseline starts at / is centred on / ends at (x, y). `vertical` turns it 90 degrees
// counter-clockwise (reads bottom to top; then the anchor runs along y).
struct TextItem {
  double x = 0, y = 0;
  std::string text;  // sanitized UTF-8 (see sanitize_text)
  int scale = 2;
  Anchor anchor = Anchor::kStart;
  bool vertical = false;
  bool bold = false;
  Rgb color;
};

struct Canvas {
  int width = 0, height = 0;
  Rgb background{255, 255, 255};
  std::vector<std::variant<RectItem, LineItem, PathItem, TextItem>> items;
};

// Bitmap font metrics.
constexpr int kGlyphW = 5, kGlyphH = 7, kGlyphDescent = 2, kGlyphAdvance = 6;

// Valid UTF-8 with invalid bytes replaced by U+FFFD and control characters by spaces.
std::string sanitize_text(std::string_view s);
// Width in pixels of sanitized text at `scale` (one advance per code point, minus the trailing gap).
double text_width(std::string_view text, int scale);
// The 5x7 glyph of code point `cp` (rows 0..8 top to bottom, bit 4 = leftmost column); '?' when absent.
const uint8_t* glyph_rows(uint32_t cp);

std::string canvas_to_svg(const Canvas& canvas);
Result<std::vector<uint8_t>> canvas_to_png(const Canvas& canvas);

}  // namespace cw::eval::plot_internal
