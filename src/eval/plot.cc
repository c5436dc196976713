// Plot writer: validation, axes and layout (into a plot_internal::Canvas), and the public entry points.
// plot_svg.cc and plot_png.cc draw the canvas; plot_canvas.h describes it.
#include "eval/plot.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "base/file_io.h"
#include "base/utf8.h"
#include "eval/plot_canvas.h"

namespace cw::eval {
namespace pi = plot_internal;

namespace plot_internal {

std::string sanitize_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = utf8_decode(s, i);
    if (cp == kInvalidCodepoint) cp = 0xFFFD;
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) cp = ' ';
    utf8_append(out, cp);
  }
  return out;
}

double text_width(std::string_view text, int scale) {
  const size_t n = utf8_count_codepoints(text);
  return n == 0 ? 0.0 : static_cast<double>(n * kGlyphAdvance - (kGlyphAdvance - kGlyphW)) * scale;
}

}  // namespace plot_internal

namespace {

using pi::Anchor;
using pi::Box;
using pi::Canvas;
using pi::LineItem;
using pi::PathItem;
using pi::Point;
using pi::RectItem;
using pi::Rgb;
using pi::TextItem;

constexpr int kMaxSide = 20000;  // pixels; a larger figure is refused
constexpr Rgb kBlack{0, 0, 0}, kInk{34, 34, 34}, kGrid{225, 225, 225}, kFrame{80, 80, 80};
constexpr Rgb kNoData{200, 200, 200}, kWhite{255, 255, 255};
// Distinct series colours, used in order (they repeat after ten series).
constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                            {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

// Text helpers -------------------------------------------------------------------------------------------

// Sanitized text cut to at most `max_chars` code points ("..." marks a cut).
std::string fit(const std::string& s, size_t max_chars) {
  std::string t = pi::sanitize_text(s);
  if (utf8_count_codepoints(t) <= max_chars) return t;
  std::string out;
  size_t i = 0, n = 0;
  while (i < t.size() && n + 3 < max_chars) {
    utf8_append(out, utf8_decode(t, i));
    ++n;
  }
  return out + "...";
}

// Sanitized text cut to fit `width` pixels at `scale`.
std::string fit_width(const std::string& s, double width, int scale) {
  const double chars = (width + (pi::kGlyphAdvance - pi::kGlyphW) * scale) / (pi::kGlyphAdvance * scale);
  return fit(s, static_cast<size_t>(std::max(4.0, std::floor(chars))));
}

double cap_h(int scale) { return pi::kGlyphH * scale; }
double line_h(int scale) { return (pi::kGlyphH + pi::kGlyphDescent) * scale; }

void text(Canvas& c, double x, double y, std::string s, int scale, Anchor a, bool vertical = false,
          bool bold = false, Rgb color = kInk) {
  if (s.empty()) return;
  c.items.push_back(TextItem{x, y, std::move(s), scale, a, vertical, bold, color});
}

void line(Canvas& c, double x0, double y0, double x1, double y1, Rgb color, double width = 1) {
  c.items.push_back(LineItem{{x0, y0}, {x1, y1}, color, width});
}

void rect(Canvas& c, double x0, double y0, double x1, double y1, Rgb fill, std::string css = {}) {
  c.items.push_back(RectItem{{x0, y0, x1, y1}, fill, std::move(css)});
}

double snap(double v) { return std::floor(v) + 0.5; }  // centre of a pixel: crisp 1-pixel lines

// Axes ------------------------------------------------------------------------------------------------------

struct Axis {
  double lo = 0, hi = 1;  // data range shown
  bool log = false;
  std::vector<double> ticks;
  std::vector<std::string> labels;
  double pos(double v) const { return log ? std::log10(v) : v; }  // the linear coordinate
};

// A tick label: fixed decimals from the step, or exponent notation for very large / small values.
std::string format_tick(double v, double step) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (!(step > 0) || !std::isfinite(step)) step = a;
  char buf[64];
  if (a >= 1e6 || a < 1e-4) {
    const int digits = std::clamp(static_cast<int>(std::floor(std::log10(a)) - std::floor(std::log10(step))), 0, 6);
    std::snprintf(buf, sizeof buf, "%.*e", digits, v);
    std::string s = buf;
    const size_t e = s.find('e');
    std::string mant = s.substr(0, e), ex = s.substr(e + 1);
    if (mant.find('.') != std::string::npos) {
      while (mant.back() == '0') mant.pop_back();
      if (mant.back() == '.') mant.pop_back();
    }
    const bool neg = ex[0] == '-';
    ex = ex.substr(1);
    while (ex.size() > 1 && ex[0] == '0') ex.erase(0, 1);
    return mant + "e" + (neg ? "-" : "") + ex;
  }
  const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 10);
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s.find_first_not_of("-0.") == std::string::npos) return "0";
  return s;
}

// 1-2-5 step for about `target` intervals over [mn, mx].
double nice_step(double mn, double mx, int target) {
  const double raw = (mx - mn) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

Axis linear_axis(double mn, double mx, int target) {
  if (mn == mx) {
    const double d = mn == 0 ? 1 : std::max(std::fabs(mn) * 0.1, 1e-300);
    mn -= d, mx += d;
  }
  Axis ax;
  const double step = nice_step(mn, mx, target);
  const bool ok_step = step > 0 && std::isfinite(step);
  ax.lo = ok_step ? std::floor(mn / step) * step : mn;
  ax.hi = ok_step ? std::ceil(mx / step) * step : mx;
  const double count = ok_step ? (ax.hi - ax.lo) / step : 0;
  const long long n = count >= 1 && count <= 100 ? std::llround(count) : 0;
  if (n == 0 || !std::isfinite(ax.lo) || !std::isfinite(ax.hi)) {
    ax.lo = mn, ax.hi = mx;  // degenerate (denormal or huge-magnitude data): just the ends
    ax.ticks = {mn, mx};
    ax.labels = {format_tick(mn, (mx - mn) / 10), format_tick(mx, (mx - mn) / 10)};
    return ax;
  }
  for (long long k = 0; k <= n; ++k) {
    double v = ax.lo + static_cast<double>(k) * step;
    if (std::fabs(v) < step * 1e-9) v = 0;
    ax.ticks.push_back(v);
    ax.labels.push_back(format_tick(v, step));
  }
  return ax;
}

Axis log_axis(double mn, double mx) {
  if (mx / mn < 1.0001) mn /= 2, mx *= 2;
  Axis ax;
  ax.log = true;
  const int d0 = static_cast<int>(std::floor(std::log10(mn)));
  const int d1 = static_cast<int>(std::ceil(std::log10(mx)));
  if (d1 - d0 >= 3) {  // decades only, every k-th for at most ~8 ticks
    const int k = (d1 - d0 + 7) / 8;
    const int top = d0 + (d1 - d0 + k - 1) / k * k;
    ax.lo = std::pow(10.0, d0), ax.hi = std::pow(10.0, top);
    for (int d = d0; d <= top; d += k) ax.ticks.push_back(std::pow(10.0, d));
  } else {
    std::vector<double> cand;
    for (int d = d0; d <= d1; ++d)
      for (double m : {1.0, 2.0, 5.0}) cand.push_back(m * std::pow(10.0, d));
    ax.lo = cand.front(), ax.hi = cand.back();
    for (double c : cand) {
      if (c <= mn * (1 + 1e-12)) ax.lo = c;
    }
    for (auto it = cand.rbegin(); it != cand.rend(); ++it) {
      if (*it >= mx * (1 - 1e-12)) ax.hi = *it;
    }
    for (double c : cand) {
      if (c >= ax.lo && c <= ax.hi) ax.ticks.push_back(c);
    }
    if (ax.ticks.size() < 4) {  // a narrow range: linear 1-2-5 ticks, placed on the log scale
      Axis lin = linear_axis(mn, mx, 5);
      if (lin.lo > 0) {
        lin.log = true;
        return lin;
      }
    }
  }
  for (double t : ax.ticks) ax.labels.push_back(format_tick(t, t));
  return ax;
}

// The largest label width of an axis at `scale`.
double max_label_w(const std::vector<std::string>& labels, int scale) {
  double w = 0;
  for (const auto& l : labels) w = std::max(w, pi::text_width(l, scale));
  return w;
}

// Validation ------------------------------------------------------------------------------------------------

std::string quoted(const std::string& s) {
  std::string out(1, '\'');  // built up with += (GCC 12 warns falsely on "'" + std::string&&)
  out += fit(s, 40);
  out += '\'';
  return out;
}

std::string fmt_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

constexpr double kMaxMagnitude = 1e300;  // larger values are refused (axis arithmetic would overflow)

bool plottable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

Status check_size(double w, double h, const char* what) {
  if (w > kMaxSide || h > kMaxSide) {
    return invalid_argument(std::string(what) + " would be " + std::to_string(std::lround(w)) + "x" +
                            std::to_string(std::lround(h)) + " pixels; at most " + std::to_string(kMaxSide) +
                            " a side");
  }
  return Status::ok();
}

}  // namespace

Status validate(const LinePlot& plot) {
  if (plot.series.empty()) return invalid_argument("line plot has no series");
  bool any = false, any_finite = false;
  double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const Series& s = plot.series[i];
    if (s.x.size() != s.y.size()) {
      return invalid_argument("series " + std::to_string(i) + " " + quoted(s.label) + " has " +
                              std::to_string(s.x.size()) + " x values but " + std::to_string(s.y.size()) +
                              " y values");
    }
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (std::isfinite(s.x[k]) && std::isfinite(s.y[k])) any_finite = true;
      if (!plottable(s.x[k], s.y[k], plot.log_y)) continue;
      any = true;
      xmn = std::min(xmn, s.x[k]), xmx = std::max(xmx, s.x[k]);
      ymn = std::min(ymn, s.y[k]), ymx = std::max(ymx, s.y[k]);
    }
  }
  if (!any_finite) return invalid_argument("line plot has no finite data points (all NaN or infinite)");
  if (!any) return invalid_argument("line plot has a log-scale y axis but no positive y values");
  if (plot.log_y && ymn < 1 / kMaxMagnitude) {
    return invalid_argument("line plot value " + fmt_g(ymn) + " is too small for a log-scale y axis (at least 1e-300)");
  }
  for (double v : {xmn, xmx, ymn, ymx}) {
    if (std::fabs(v) > kMaxMagnitude) {
      return invalid_argument("line plot value " + fmt_g(v) + " is too large to plot (at most 1e300 in magnitude)");
    }
  }
  return Status::ok();
}

Status validate(const std::vector<Heatmap>& heatmaps) {
  if (heatmaps.empty()) return invalid_argument("no heatmaps to plot");
  bool any = false;
  for (size_t i = 0; i < heatmaps.size(); ++i) {
    const Heatmap& h = heatmaps[i];
    const std::string name = "heatmap " + std::to_string(i) + " " + quoted(h.title);
    if (h.x_ticks.empty() || h.y_ticks.empty()) {
      return invalid_argument(name + " has no " + (h.x_ticks.empty() ? "columns (x_ticks)" : "rows (y_ticks)"));
    }
    const size_t rows = h.y_ticks.size(), cols = h.x_ticks.size();
    if (rows > 1000 || cols > 1000) return invalid_argument(name + " has more than 1000 rows or columns");
    if (h.values.size() != rows * cols) {
      return invalid_argument(name + " has " + std::to_string(h.values.size()) + " values, expected " +
                              std::to_string(rows) + " rows x " + std::to_string(cols) + " columns = " +
                              std::to_string(rows * cols));
    }
    for (size_t k = 0; k < h.values.size(); ++k) {
      const double v = h.values[k];
      if (std::isnan(v)) continue;
      if (!(v >= 0 && v <= 1)) {
        return invalid_argument(name + " value at row " + std::to_string(k / cols) + ", column " +
                                std::to_string(k % cols) + " is " + fmt_g(v) +
                                "; values must lie in [0, 1] (NaN for no data)");
      }
      any = true;
    }
  }
  if (!any) return invalid_argument("heatmaps have no data (all values NaN)");
  return Status::ok();
}

namespace {

// Line plot layout ------------------------------------------------------------------------------------------

Result<Canvas> layout(const LinePlot& plot) {
  CW_RETURN_IF_ERROR(validate(plot));
  double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
  for (const Series& s : plot.series) {
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (!plottable(s.x[k], s.y[k], plot.log_y)) continue;
      xmn = std::min(xmn, s.x[k]), xmx = std::max(xmx, s.x[k]);
      ymn = std::min(ymn, s.y[k]), ymx = std::max(ymx, s.y[k]);
    }
  }
  constexpr int kS = 2;  // text scale of ticks, axis labels and legend
  Canvas c;
  c.width = 960;
  c.height = 600;

  const Axis ya = plot.log_y ? log_axis(ymn, ymx) : linear_axis(ymn, ymx, 6);
  const std::string title = fit(plot.title, 120), x_label = fit(plot.x_label, 100), y_label = fit(plot.y_label, 60);
  std::vector<std::string> legend;
  for (const Series& s : plot.series) legend.push_back(fit(s.label, 48));

  const int ts = pi::text_width(title, 3) <= c.width - 32 ? 3 : 2;
  const std::string title_fit = fit_width(title, c.width - 32, ts);
  const double top = title.empty() ? 24 : 16 + cap_h(ts) + 20;
  const double left = 16 + (y_label.empty() ? 0 : line_h(kS) + 10) + max_label_w(ya.labels, kS) + 10;
  const double bottom = 10 + line_h(kS) + (x_label.empty() ? 0 : 10 + line_h(kS)) + 16;
  const double right = 20 + 24 + 8 + max_label_w(legend, kS) + 16;
  c.height = static_cast<int>(std::max<double>(c.height, top + bottom + 22.0 * legend.size() + 24));
  c.width = static_cast<int>(std::max<double>(c.width, left + 300 + right));
  CW_RETURN_IF_ERROR(check_size(c.width, c.height, "line plot"));
  const double x0 = std::round(left), x1 = c.width - std::round(right), y0 = top, y1 = c.height - std::round(bottom);

  // x ticks: as many as fit without labels touching.
  Axis xa;
  for (int target : {8, 6, 5, 4, 3, 2, 1}) {
    xa = linear_axis(xmn, xmx, target);
    if ((max_label_w(xa.labels, kS) + 16) * xa.ticks.size() <= (x1 - x0) * 1.1) break;
  }
  auto px = [&](double v) { return x0 + (v - xa.lo) / (xa.hi - xa.lo) * (x1 - x0); };
  auto py = [&](double v) { return y1 - (ya.pos(v) - ya.pos(ya.lo)) / (ya.pos(ya.hi) - ya.pos(ya.lo)) * (y1 - y0); };

  // Grid, frame, ticks and their labels.
  for (size_t i = 0; i < xa.ticks.size(); ++i) {
    const double x = snap(px(xa.ticks[i]));
    line(c, x, y0, x, y1, kGrid);
    line(c, x, y1, x, y1 + 5, kFrame);
    text(c, x, y1 + 8 + cap_h(kS), xa.labels[i], kS, Anchor::kMiddle);
  }
  for (size_t i = 0; i < ya.ticks.size(); ++i) {
    const double y = snap(py(ya.ticks[i]));
    line(c, x0, y, x1, y, kGrid);
    line(c, x0 - 5, y, x0, y, kFrame);
    text(c, x0 - 9, y + cap_h(kS) / 2, ya.labels[i], kS, Anchor::kEnd);
  }
  line(c, x0 + 0.5, y0 + 0.5, x1 - 0.5, y0 + 0.5, kFrame);
  line(c, x0 + 0.5, y1 - 0.5, x1 - 0.5, y1 - 0.5, kFrame);
  line(c, x0 + 0.5, y0 + 0.5, x0 + 0.5, y1 - 0.5, kFrame);
  line(c, x1 - 0.5, y0 + 0.5, x1 - 0.5, y1 - 0.5, kFrame);

  // Data.
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const Series& s = plot.series[i];
    PathItem p;
    p.color = kPalette[i % std::size(kPalette)];
    p.width = 2;
    p.clip = {x0, y0, x1, y1};
    // Points within half a pixel of the previous kept one are dropped (a run's last point is kept):
    // dense series (a PPL value per token) stay small in SVG and quick to rasterize.
    std::vector<Point> run;
    bool pending = false;  // run.back() is a dropped point's stand-in, to be replaced or kept at the end
    auto close_run = [&] {
      if (!run.empty()) p.runs.push_back(std::move(run));
      run.clear();
      pending = false;
    };
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (!plottable(s.x[k], s.y[k], plot.log_y)) {
        close_run();
        continue;
      }
      const Point q{px(s.x[k]), py(s.y[k])};
      if (pending) run.pop_back();
      const Point& last = run.empty() ? q : run.back();
      const double dx = q.x - last.x, dy = q.y - last.y;
      pending = !run.empty() && dx * dx + dy * dy < 0.25;
      run.push_back(q);
    }
    close_run();
    // A lone point (a series of one value, or one between gaps) has no segment to draw: mark it.
    std::vector<Point> lone;
    for (const auto& r : p.runs)
      if (r.size() == 1) lone.push_back(r[0]);
    const Rgb color = p.color;
    c.items.push_back(std::move(p));
    for (const Point& q : lone) rect(c, q.x - 3.5, q.y - 3.5, q.x + 3.5, q.y + 3.5, color);
  }

  // Legend (right of the plot area), title and axis labels.
  for (size_t i = 0; i < legend.size(); ++i) {
    const double y = y0 + 12 + 22.0 * i;
    line(c, x1 + 20, y, x1 + 44, y, kPalette[i % std::size(kPalette)], 3);
    text(c, x1 + 52, y + cap_h(kS) / 2, legend[i], kS, Anchor::kStart);
  }
  text(c, c.width / 2.0, 16 + cap_h(ts), title_fit, ts, Anchor::kMiddle, false, true, kBlack);
  text(c, (x0 + x1) / 2, c.height - 16 - pi::kGlyphDescent * kS, fit_width(x_label, x1 - x0, kS), kS,
       Anchor::kMiddle);
  text(c, 16 + cap_h(kS), (y0 + y1) / 2, fit_width(y_label, y1 - y0, kS), kS, Anchor::kMiddle, true);
  return c;
}

// Heatmap layout --------------------------------------------------------------------------------------------

Rgb heat_color(double v) {
  constexpr Rgb kStops[] = {{215, 48, 39}, {252, 141, 89}, {254, 224, 139}, {145, 207, 96}, {26, 152, 80}};
  const double t = std::clamp(v, 0.0, 1.0) * 4;
  const int k = std::min(3, static_cast<int>(t));
  const double f = t - k;
  auto mix = [&](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a + (b - a) * f)); };
  return {mix(kStops[k].r, kStops[k + 1].r), mix(kStops[k].g, kStops[k + 1].g), mix(kStops[k].b, kStops[k + 1].b)};
}

Rgb text_on(Rgb bg) { return 0.299 * bg.r + 0.587 * bg.g + 0.114 * bg.b < 140 ? kWhite : kBlack; }

Result<Canvas> layout(const std::vector<Heatmap>& maps) {
  CW_RETURN_IF_ERROR(validate(maps));
  constexpr int kS = 2;
  constexpr double kGridTop = 16 + 7 * kS + 16;

  struct Panel {
    std::string title, x_label, y_label;
    std::vector<std::string> xt, yt;
    double cw = 0, ch = 0, left_ext = 0, width = 0, grid_h = 0;
    size_t kx = 1, ky = 1;  // label every kx-th column, ky-th row
  };
  std::vector<Panel> panels;
  double width = 16, grid_h_max = 0;
  bool any_nan = false;
  for (const Heatmap& h : maps) {
    Panel p;
    p.title = fit(h.title, 60), p.x_label = fit(h.x_label, 60), p.y_label = fit(h.y_label, 40);
    for (const auto& t : h.x_ticks) p.xt.push_back(fit(t, 16));
    for (const auto& t : h.y_ticks) p.yt.push_back(fit(t, 16));
    const size_t cols = p.xt.size(), rows = p.yt.size();
    const double xtw = max_label_w(p.xt, kS);
    p.cw = std::clamp(std::round(560.0 / cols), 12.0, 64.0);
    if (xtw + 8 <= 64) p.cw = std::max(p.cw, xtw + 8);
    p.ch = std::clamp(std::round(360.0 / rows), 12.0, 36.0);
    while (p.kx * p.cw < xtw + 8) ++p.kx;
    while (p.ky * p.ch < line_h(kS)) ++p.ky;
    const double gw = cols * p.cw;
    p.grid_h = rows * p.ch;
    const double half_text = std::max(pi::text_width(p.title, kS), pi::text_width(p.x_label, kS)) / 2;
    p.left_ext = std::max((p.y_label.empty() ? 0 : line_h(kS) + 10) + max_label_w(p.yt, kS) + 10, half_text - gw / 2);
    p.width = p.left_ext + std::max(gw, gw / 2 + half_text);
    width += p.width + 24;
    grid_h_max = std::max(grid_h_max, p.grid_h);
    for (double v : h.values) any_nan |= std::isnan(v);
    panels.push_back(std::move(p));
  }
  const double bar_h = std::max(grid_h_max, 120.0);
  const double bar_x = width + 8;
  width = bar_x + 20 + 8 + pi::text_width("100", kS) + 16;
  if (any_nan) width = std::max(width, bar_x + 14 + 8 + pi::text_width("no data", kS) + 16);
  double height = kGridTop + std::max(grid_h_max + 8 + line_h(kS) + 10 + line_h(kS), bar_h + (any_nan ? 40 : 0)) + 16;
  CW_RETURN_IF_ERROR(check_size(width, height, "heatmap figure"));

  Canvas c;
  c.width = static_cast<int>(std::ceil(width));
  c.height = static_cast<int>(std::ceil(height));
  double x = 16;
  for (size_t m = 0; m < maps.size(); ++m) {
    const Heatmap& h = maps[m];
    const Panel& p = panels[m];
    const size_t cols = p.xt.size(), rows = p.yt.size();
    const double gx = std::round(x + p.left_ext), gy = kGridTop, gw = cols * p.cw;
    // Cell text scale: the largest whose "100" fits the cell.
    int cs = 0;
    for (int s : {2, 1}) {
      if (pi::text_width("100", s) + 4 <= p.cw && cap_h(s) + 4 <= p.ch) {
        cs = s;
        break;
      }
    }
    for (size_t r = 0; r < rows; ++r) {
      for (size_t col = 0; col < cols; ++col) {
        const double v = h.values[r * cols + col];
        const Rgb fill = std::isnan(v) ? kNoData : heat_color(v);
        const double cx0 = gx + col * p.cw, cy0 = gy + r * p.ch;
        rect(c, cx0, cy0, cx0 + p.cw - 1, cy0 + p.ch - 1, fill, "cell");
        if (cs > 0 && !std::isnan(v)) {
          text(c, cx0 + (p.cw - 1) / 2, cy0 + (p.ch - 1 + cap_h(cs)) / 2, std::to_string(std::lround(v * 100)), cs,
               Anchor::kMiddle, false, false, text_on(fill));
        }
      }
    }
    for (size_t col = 0; col < cols; col += p.kx) {
      text(c, gx + (col + 0.5) * p.cw, gy + p.grid_h + 8 + cap_h(kS), p.xt[col], kS, Anchor::kMiddle);
    }
    for (size_t r = 0; r < rows; r += p.ky) {
      text(c, gx - 10, gy + (r + 0.5) * p.ch + cap_h(kS) / 2, p.yt[r], kS, Anchor::kEnd);
    }
    text(c, gx + gw / 2, 16 + cap_h(kS), p.title, kS, Anchor::kMiddle, false, true, kBlack);
    text(c, gx + gw / 2, gy + p.grid_h + 8 + line_h(kS) + 10 + cap_h(kS), p.x_label, kS, Anchor::kMiddle);
    if (!p.y_label.empty()) {
      const double lx = gx - 10 - max_label_w(p.yt, kS) - 10 - pi::kGlyphDescent * kS;
      text(c, lx, gy + p.grid_h / 2, p.y_label, kS, Anchor::kMiddle, true);
    }
    x += p.width + 24;
  }

  // Colour scale: 1 at the top, 0 at the bottom; labels in percent like the cells.
  constexpr int kSteps = 64;
  for (int i = 0; i < kSteps; ++i) {
    const double ya = kGridTop + bar_h * i / kSteps, yb = kGridTop + bar_h * (i + 1) / kSteps;
    rect(c, bar_x, std::floor(ya), bar_x + 20, std::floor(yb), heat_color(1.0 - (i + 0.5) / kSteps));
  }
  for (int k = 0; k <= 4; ++k) {
    const double y = kGridTop + bar_h * (1.0 - k / 4.0);
    line(c, bar_x + 20, snap(y), bar_x + 24, snap(y), kFrame);
    text(c, bar_x + 28, y + cap_h(kS) / 2, std::to_string(25 * k), kS, Anchor::kStart);
  }
  if (any_nan) {
    const double y = kGridTop + bar_h + 20;
    rect(c, bar_x, y, bar_x + 14, y + 14, kNoData);
    text(c, bar_x + 22, y + 7 + cap_h(kS) / 2, "no data", kS, Anchor::kStart);
  }
  return c;
}

Result<bool> is_png_path(const std::string& path) {
  std::string ext = path.size() >= 4 ? path.substr(path.size() - 4) : "";
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (ext == ".png") return true;
  if (ext == ".svg") return false;
  return invalid_argument("plot file must end in .svg or .png");
}

template <typename Plot>
Status write_any(const std::string& path, const Plot& plot) {
  CW_ASSIGN_OR_RETURN(const bool png, is_png_path(path));
  if (png) {
    CW_ASSIGN_OR_RETURN(const std::vector<uint8_t> bytes, render_png(plot));
    return write_file(path, bytes.data(), bytes.size());
  }
  CW_ASSIGN_OR_RETURN(const std::string svg, render_svg(plot));
  return write_file(path, svg.data(), svg.size());
}

}  // namespace

Result<std::string> render_svg(const LinePlot& plot) {
  CW_ASSIGN_OR_RETURN(const Canvas c, layout(plot));
  return pi::canvas_to_svg(c);
}

Result<std::string> render_svg(const std::vector<Heatmap>& heatmaps) {
  CW_ASSIGN_OR_RETURN(const Canvas c, layout(heatmaps));
  return pi::canvas_to_svg(c);
}

Result<std::vector<uint8_t>> render_png(const LinePlot& plot) {
  CW_ASSIGN_OR_RETURN(const Canvas c, layout(plot));
  return pi::canvas_to_png(c);
}

Result<std::vector<uint8_t>> render_png(const std::vector<Heatmap>& heatmaps) {
  CW_ASSIGN_OR_RETURN(const Canvas c, layout(heatmaps));
  return pi::canvas_to_png(c);
}

Status write_plot(const std::string& path, const LinePlot& plot) { return write_any(path, plot); }
Status write_plot(const std::string& path, const std::vector<Heatmap>& heatmaps) {
  return write_any(path, heatmaps);
}

}  // namespace cw::eval
