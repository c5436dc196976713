// Plot writer for evaluation results: line plots (e.g. perplexity against token position, one line per
// KV policy) and heatmaps (e.g. needle accuracy over length x depth, one panel per policy), written as
// SVG (text) or PNG (rasterized here with a built-in bitmap font, compressed with zlib).
//
// Contract:
//   - Input is validated; anything wrong with it (no series, mismatched sizes, no finite data, values
//     out of range, a figure that would be absurdly large) is kInvalidArgument with a one-line message.
//     Nothing here aborts on user data.
//   - Labels are UTF-8; invalid bytes and control characters are replaced. SVG escapes & < > " '. The PNG
//     font covers printable ASCII; other characters are drawn as '?'.
//   - Both formats come from one layout, so an SVG and a PNG of the same plot look the same (SVG text uses
//     the viewer's monospace font).
//   - write_plot writes atomically (cw::OutputFile: temporary file + rename); an error leaves any previous
//     file in place.
// Thread-safety: all functions are reentrant (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace cw::eval {

// One line of a line plot. A point whose x or y is NaN or infinite (or y <= 0 on a log axis) is not drawn
// and breaks the line (a gap). x need not be sorted: points are joined in order.
struct Series {
  std::string label;  // shown in the legend
  std::vector<double> x, y;
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<Series> series;  // at least one; colours come from a fixed palette, in order
  bool log_y = false;          // log10 y axis
};

// A grid of values in [0, 1] (NaN = no data, drawn grey). Cell text is round(100 * value).
struct Heatmap {
  std::string title, x_label, y_label;
  std::vector<std::string> x_ticks;  // column labels, left to right
  std::vector<std::string> y_ticks;  // row labels, top to bottom
  std::vector<double> values;        // [rows = y_ticks.size()][cols = x_ticks.size()], row-major
};

// Validation alone (render_* and write_plot call these first).
Status validate(const LinePlot& plot);
Status validate(const std::vector<Heatmap>& heatmaps);

// SVG documents (start with "<svg", end with "</svg>\n"). A line plot has one <path> per series; a heatmap
// figure holds the panels side by side, each with its own title, and one shared colour scale.
Result<std::string> render_svg(const LinePlot& plot);
Result<std::string> render_svg(const std::vector<Heatmap>& heatmaps);

// PNG files (8-bit RGB).
Result<std::vector<uint8_t>> render_png(const LinePlot& plot);
Result<std::vector<uint8_t>> render_png(const std::vector<Heatmap>& heatmaps);

// Writes the plot to `path`, picking the format from its extension (".svg" or ".png", any case); any other
// name is kInvalidArgument "plot file must end in .svg or .png". Input errors come before any file is
// touched; file errors (missing directory, ...) are those of cw::OutputFile and name the path.
Status write_plot(const std::string& path, const LinePlot& plot);
Status write_plot(const std::string& path, const std::vector<Heatmap>& heatmaps);

}  // namespace cw::eval
