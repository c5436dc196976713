// SVG back end of the plot writer: writes a plot_internal::Canvas as one SVG document (no XML
// declaration; starts with "<svg", ends with "</svg>\n"). Text is escaped; data lines are <path>s with a
// clip path, so one series is one <path> element whatever its gaps.
#include <cstdio>
#include <map>
#include <tuple>

#include "eval/plot_canvas.h"

namespace cw::eval::plot_internal {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

std::string hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += ch;
    }
  }
  return out;
}

}  // namespace

std::string canvas_to_svg(const Canvas& canvas) {
  std::string out;
  const std::string w = std::to_string(canvas.width), h = std::to_string(canvas.height);
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w + "\" height=\"" + h + "\" viewBox=\"0 0 " + w +
         " " + h + "\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\">\n";
  out += "<rect x=\"0\" y=\"0\" width=\"" + w + "\" height=\"" + h + "\" fill=\"" + hex(canvas.background) + "\"/>\n";

  // One clipPath per distinct clip box.
  std::map<std::tuple<double, double, double, double>, std::string> clips;
  for (const auto& item : canvas.items) {
    const auto* p = std::get_if<PathItem>(&item);
    if (!p) continue;
    const auto key = std::make_tuple(p->clip.x0, p->clip.y0, p->clip.x1, p->clip.y1);
    if (clips.count(key)) continue;
    const std::string id = "clip" + std::to_string(clips.size());
    clips[key] = id;
    out += "<defs><clipPath id=\"" + id + "\"><rect x=\"" + num(p->clip.x0) + "\" y=\"" + num(p->clip.y0) +
           "\" width=\"" + num(p->clip.x1 - p->clip.x0) + "\" height=\"" + num(p->clip.y1 - p->clip.y0) +
           "\"/></clipPath></defs>\n";
  }

  for (const auto& item : canvas.items) {
    if (const auto* r = std::get_if<RectItem>(&item)) {
      out += "<rect";
      if (!r->css_class.empty()) out += " class=\"" + escape(r->css_class) + "\"";
      out += " x=\"" + num(r->box.x0) + "\" y=\"" + num(r->box.y0) + "\" width=\"" + num(r->box.x1 - r->box.x0) +
             "\" height=\"" + num(r->box.y1 - r->box.y0) + "\" fill=\"" + hex(r->fill) + "\"/>\n";
    } else if (const auto* l = std::get_if<LineItem>(&item)) {
      out += "<line x1=\"" + num(l->a.x) + "\" y1=\"" + num(l->a.y) + "\" x2=\"" + num(l->b.x) + "\" y2=\"" +
             num(l->b.y) + "\" stroke=\"" + hex(l->color) + "\" stroke-width=\"" + num(l->width) +
             "\" stroke-linecap=\"square\"/>\n";
    } else if (const auto* p = std::get_if<PathItem>(&item)) {
      std::string d;
      for (const auto& run : p->runs) {
        for (size_t k = 0; k < run.size(); ++k) {
          d += (k == 0 ? (d.empty() ? "M" : " M") : " L") + num(run[k].x) + " " + num(run[k].y);
        }
        if (run.size() == 1) d += " h0";  // a lone point: a dot (round cap)
      }
      const auto key = std::make_tuple(p->clip.x0, p->clip.y0, p->clip.x1, p->clip.y1);
      out += "<path class=\"series\" d=\"" + d + "\" fill=\"none\" stroke=\"" + hex(p->color) + "\" stroke-width=\"" +
             num(p->width) + "\" stroke-linejoin=\"round\" stroke-linecap=\"round\" clip-path=\"url(#" +
             clips[key] + ")\"/>\n";
    } else if (const auto* t = std::get_if<TextItem>(&item)) {
      const char* anchor = t->anchor == Anchor::kStart ? "start" : t->anchor == Anchor::kMiddle ? "middle" : "end";
      out += "<text";
      if (t->vertical) {
        out += " transform=\"translate(" + num(t->x) + " " + num(t->y) + ") rotate(-90)\" x=\"0\" y=\"0\"";
      } else {
        out += " x=\"" + num(t->x) + "\" y=\"" + num(t->y) + "\"";
      }
      out += " font-size=\"" + std::to_string(10 * t->scale) + "\" text-anchor=\"" + anchor + "\" fill=\"" +
             hex(t->color) + "\"";
      if (t->bold) out += " font-weight=\"bold\"";
      out += ">" + escape(t->text) + "</text>\n";
    }
  }
  out += "</svg>\n";
  return out;
}

}  // namespace cw::eval::plot_internal
