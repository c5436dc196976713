// PNG back end of the plot writer: rasterizes a plot_internal::Canvas into an 8-bit RGB buffer and encodes
// it as PNG (signature, IHDR, one IDAT compressed with zlib, IEND; CRCs from zlib's crc32).
//
// Why rasterize here: the project takes no graphics dependency (DESIGN.md §5). Drawing is simple: filled
// rectangles on the pixel grid, data lines anti-aliased by distance to each segment (one coverage buffer
// per line, so joints are not blended twice), and text from the bitmap font below.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "base/utf8.h"
#include "eval/plot_canvas.h"

namespace cw::eval::plot_internal {
namespace {

// The bitmap font: printable ASCII (0x20..0x7E), 5 columns by 7 rows above the baseline and 2 rows of
// descender (omitted when empty). '#' is ink.
constexpr const char* kGlyphArt[95] = {
    "..... ..... ..... ..... ..... ..... .....",  // space
    "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",  // !
    ".#.#. .#.#. .#.#. ..... ..... ..... .....",  // "
    ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",  // #
    "..#.. .#### #.#.. .###. ..#.# ####. ..#..",  // $
    "##... ##..# ...#. ..#.. .#... #..## ...##",  // %
    ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",  // &
    "..#.. ..#.. .#... ..... ..... ..... .....",  // '
    "...#. ..#.. .#... .#... .#... ..#.. ...#.",  // (
    ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",  // )
    "..... ..#.. #.#.# .###. #.#.# ..#.. .....",  // *
    "..... ..#.. ..#.. ##### ..#.. ..#.. .....",  // +
    "..... ..... ..... ..... ..... .##.. .##.. ..#.. .#...",  // ,
    "..... ..... ..... .###. ..... ..... .....",  // -
    "..... ..... ..... ..... ..... .##.. .##..",  // .
    "..... ....# ...#. ..#.. .#... #.... .....",  // /
    ".###. #...# #..## #.#.# ##..# #...# .###.",  // 0
    "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",  // 1
    ".###. #...# ....# ...#. ..#.. .#... #####",  // 2
    "##### ...#. ..#.. ...#. ....# #...# .###.",  // 3
    "...#. ..##. .#.#. #..#. ##### ...#. ...#.",  // 4
    "##### #.... ####. ....# ....# #...# .###.",  // 5
    "..##. .#... #.... ####. #...# #...# .###.",  // 6
    "##### ....# ...#. ..#.. .#... .#... .#...",  // 7
    ".###. #...# #...# .###. #...# #...# .###.",  // 8
    ".###. #...# #...# .#### ....# ...#. .##..",  // 9
    "..... .##.. .##.. ..... .##.. .##.. .....",  // :
    "..... .##.. .##.. ..... ..... .##.. .##.. ..#.. .#...",  // ;
    "...#. ..#.. .#... #.... .#... ..#.. ...#.",  // <
    "..... ..... ##### ..... ##### ..... .....",  // =
    ".#... ..#.. ...#. ....# ...#. ..#.. .#...",  // >
    ".###. #...# ....# ...#. ..#.. ..... ..#..",  // ?
    ".###. #...# ....# .##.# #.#.# #.#.# .###.",  // @
    ".###. #...# #...# #...# ##### #...# #...#",  // A
    "####. #...# #...# ####. #...# #...# ####.",  // B
    ".###. #...# #.... #.... #.... #...# .###.",  // C
    "###.. #..#. #...# #...# #...# #..#. ###..",  // D
    "##### #.... #.... ####. #.... #.... #####",  // E
    "##### #.... #.... ####. #.... #.... #....",  // F
    ".###. #...# #.... #.### #...# #...# .####",  // G
    "#...# #...# #...# ##### #...# #...# #...#",  // H
    ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",  // I
    "..### ...#. ...#. ...#. ...#. #..#. .##..",  // J
    "#...# #..#. #.#.. ##... #.#.. #..#. #...#",  // K
    "#.... #.... #.... #.... #.... #.... #####",  // L
    "#...# ##.## #.#.# #.#.# #...# #...# #...#",  // M
    "#...# #...# ##..# #.#.# #..## #...# #...#",  // N
    ".###. #...# #...# #...# #...# #...# .###.",  // O
    "####. #...# #...# ####. #.... #.... #....",  // P
    ".###. #...# #...# #...# #.#.# #..#. .##.#",  // Q
    "####. #...# #...# ####. #.#.. #..#. #...#",  // R
    ".#### #.... #.... .###. ....# ....# ####.",  // S
    "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",  // T
    "#...# #...# #...# #...# #...# #...# .###.",  // U
    "#...# #...# #...# #...# #...# .#.#. ..#..",  // V
    "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",  // W
    "#...# #...# .#.#. ..#.. .#.#. #...# #...#",  // X
    "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",  // Y
    "##### ....# ...#. ..#.. .#... #.... #####",  // Z
    ".###. .#... .#... .#... .#... .#... .###.",  // [
    "..... #.... .#... ..#.. ...#. ....# .....",  // backslash
    ".###. ...#. ...#. ...#. ...#. ...#. .###.",  // ]
    "..#.. .#.#. #...# ..... ..... ..... .....",  // ^
    "..... ..... ..... ..... ..... ..... ..... ##### .....",  // _
    ".#... ..#.. ...#. ..... ..... ..... .....",  // `
    "..... ..... .###. ....# .#### #...# .####",  // a
    "#.... #.... #.##. ##..# #...# #...# ####.",  // b
    "..... ..... .###. #.... #.... #...# .###.",  // c
    "....# ....# .##.# #..## #...# #...# .####",  // d
    "..... ..... .###. #...# ##### #.... .###.",  // e
    "..##. .#..# .#... ###.. .#... .#... .#...",  // f
    "..... ..... .#### #...# #...# #...# .#### ....# .###.",  // g
    "#.... #.... #.##. ##..# #...# #...# #...#",  // h
    "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",  // i
    "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..",  // j
    "#.... #.... #..#. #.#.. ##... #.#.. #..#.",  // k
    ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",  // l
    "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#",  // m
    "..... ..... #.##. ##..# #...# #...# #...#",  // n
    "..... ..... .###. #...# #...# #...# .###.",  // o
    "..... ..... ####. #...# #...# #...# ####. #.... #....",  // p
    "..... ..... .#### #...# #...# #...# .#### ....# ....#",  // q
    "..... ..... #.##. ##..# #.... #.... #....",  // r
    "..... ..... .#### #.... .###. ....# ####.",  // s
    ".#... .#... ###.. .#... .#... .#..# ..##.",  // t
    "..... ..... #...# #...# #...# #..## .##.#",  // u
    "..... ..... #...# #...# #...# .#.#. ..#..",  // v
    "..... ..... #...# #...# #.#.# #.#.# .#.#.",  // w
    "..... ..... #...# .#.#. ..#.. .#.#. #...#",  // x
    "..... ..... #...# #...# #...# #...# .#### ....# .###.",  // y
    "..... ..... ##### ...#. ..#.. .#... #####",  // z
    "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",  // {
    "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",  // |
    ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",  // }
    "..... ..... .#... #.#.# ...#. ..... .....",  // ~
};

constexpr int kGlyphRows = kGlyphH + kGlyphDescent;

struct Font {
  std::array<std::array<uint8_t, kGlyphRows>, 95> rows{};
  Font() {
    for (int g = 0; g < 95; ++g) {
      const char* p = kGlyphArt[g];
      for (int r = 0; r < kGlyphRows && *p; ++r) {
        uint8_t bits = 0;
        for (int c = 0; c < kGlyphW; ++c, ++p) bits = static_cast<uint8_t>(bits << 1 | (*p == '#'));
        rows[g][r] = bits;
        if (*p == ' ') ++p;
      }
    }
  }
};

const Font& font() {
  static const Font f;
  return f;
}

}  // namespace

const uint8_t* glyph_rows(uint32_t cp) {
  if (cp < 0x20 || cp > 0x7E) cp = '?';
  return font().rows[cp - 0x20].data();
}

namespace {

class Raster {
 public:
  Raster(int w, int h, Rgb bg) : w_(w), h_(h), px_(static_cast<size_t>(w) * h * 3) {
    for (size_t i = 0; i < px_.size(); i += 3) {
      px_[i] = bg.r;
      px_[i + 1] = bg.g;
      px_[i + 2] = bg.b;
    }
  }
  int width() const { return w_; }
  int height() const { return h_; }
  const std::vector<uint8_t>& pixels() const { return px_; }

  void blend(int x, int y, Rgb c, double a) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_ || a <= 0) return;
    uint8_t* p = &px_[(static_cast<size_t>(y) * w_ + x) * 3];
    if (a >= 1) {
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
      return;
    }
    p[0] = static_cast<uint8_t>(std::lround(p[0] + (c.r - p[0]) * a));
    p[1] = static_cast<uint8_t>(std::lround(p[1] + (c.g - p[1]) * a));
    p[2] = static_cast<uint8_t>(std::lround(p[2] + (c.b - p[2]) * a));
  }

  // Fills every pixel whose centre lies in [x0, x1) x [y0, y1).
  // Coordinates are clamped to the image first (NaN draws nothing), so no cast overflows.
  void fill(double x0, double y0, double x1, double y1, Rgb c) {
    if (!(x0 < x1 && y0 < y1)) return;
    auto px = [](double v, int hi) { return static_cast<int>(std::ceil(std::clamp(v - 0.5, -1.0, hi + 1.0))); };
    const int i0 = std::max(0, px(x0, w_)), i1 = std::min(w_, px(x1, w_));
    const int j0 = std::max(0, px(y0, h_)), j1 = std::min(h_, px(y1, h_));
    for (int j = j0; j < j1; ++j)
      for (int i = i0; i < i1; ++i) blend(i, j, c, 1);
  }

  void line(const LineItem& l) {
    const double h = l.width / 2;
    if (l.a.x == l.b.x || l.a.y == l.b.y) {  // axis-aligned: square caps on the pixel grid
      fill(std::min(l.a.x, l.b.x) - h, std::min(l.a.y, l.b.y) - h, std::max(l.a.x, l.b.x) + h,
           std::max(l.a.y, l.b.y) + h, l.color);
      return;
    }
    PathItem p;
    p.runs = {{l.a, l.b}};
    p.color = l.color;
    p.width = l.width;
    p.clip = {0, 0, static_cast<double>(w_), static_cast<double>(h_)};
    path(p);
  }

  void path(const PathItem& p) {
    if (!(p.clip.x0 < p.clip.x1 && p.clip.y0 < p.clip.y1)) return;
    const int cx0 = std::max(0, static_cast<int>(std::floor(p.clip.x0)));
    const int cy0 = std::max(0, static_cast<int>(std::floor(p.clip.y0)));
    const int cx1 = std::min(w_, static_cast<int>(std::ceil(p.clip.x1)));
    const int cy1 = std::min(h_, static_cast<int>(std::ceil(p.clip.y1)));
    if (cx0 >= cx1 || cy0 >= cy1) return;
    const int bw = cx1 - cx0, bh = cy1 - cy0;
    std::vector<float> cov(static_cast<size_t>(bw) * bh, 0.0f);
    const double r = p.width / 2;
    auto to_int = [](double v) { return static_cast<int>(std::clamp(v, -1e6, 1e6)); };
    auto segment = [&](Point a, Point b) {
      if (!(std::isfinite(a.x) && std::isfinite(a.y) && std::isfinite(b.x) && std::isfinite(b.y))) return;
      const int i0 = std::max(cx0, to_int(std::floor(std::min(a.x, b.x) - r - 1)));
      const int i1 = std::min(cx1, to_int(std::ceil(std::max(a.x, b.x) + r + 1)));
      const int j0 = std::max(cy0, to_int(std::floor(std::min(a.y, b.y) - r - 1)));
      const int j1 = std::min(cy1, to_int(std::ceil(std::max(a.y, b.y) + r + 1)));
      const double dx = b.x - a.x, dy = b.y - a.y, len2 = dx * dx + dy * dy;
      for (int j = j0; j < j1; ++j) {
        for (int i = i0; i < i1; ++i) {
          const double px = i + 0.5 - a.x, py = j + 0.5 - a.y;
          const double t = len2 > 0 ? std::clamp((px * dx + py * dy) / len2, 0.0, 1.0) : 0.0;
          const double ex = px - t * dx, ey = py - t * dy;
          const double c = std::clamp(r + 0.5 - std::sqrt(ex * ex + ey * ey), 0.0, 1.0);
          float& slot = cov[static_cast<size_t>(j - cy0) * bw + (i - cx0)];
          slot = std::max(slot, static_cast<float>(c));
        }
      }
    };
    for (const auto& run : p.runs) {
      if (run.size() == 1) segment(run[0], run[0]);
      for (size_t k = 1; k < run.size(); ++k) segment(run[k - 1], run[k]);
    }
    for (int j = 0; j < bh; ++j)
      for (int i = 0; i < bw; ++i) blend(cx0 + i, cy0 + j, p.color, cov[static_cast<size_t>(j) * bw + i]);
  }

  void text(const TextItem& t) {
    const int s = std::max(1, t.scale);
    const double width = text_width(t.text, s);
    double start = 0;  // offset of the first glyph along the text direction
    if (t.anchor == Anchor::kMiddle) start = -width / 2;
    if (t.anchor == Anchor::kEnd) start = -width;
    if (!(std::fabs(t.x) < 1e6 && std::fabs(t.y) < 1e6)) return;  // off the image (or NaN)
    const long ox = std::lround(t.x), oy = std::lround(t.y);
    long pen = std::lround(start);
    for (int pass = 0; pass < (t.bold ? 2 : 1); ++pass) {
      pen = std::lround(start) + pass;
      size_t i = 0;
      while (i < t.text.size()) {
        const uint8_t* rows = glyph_rows(utf8_decode(t.text, i));
        for (int r = 0; r < kGlyphRows; ++r) {
          for (int c = 0; c < kGlyphW; ++c) {
            if (!(rows[r] >> (kGlyphW - 1 - c) & 1)) continue;
            const long u = pen + c * s;             // along the text
            const long v = (r - kGlyphH) * s;       // across it (baseline = 0, down positive)
            if (!t.vertical) {
              fill(ox + u, oy + v, ox + u + s, oy + v + s, t.color);
            } else {  // turned counter-clockwise: text x -> screen -y, text y -> screen x
              fill(ox + v, oy - u - s, ox + v + s, oy - u, t.color);
            }
          }
        }
        pen += kGlyphAdvance * s;
      }
    }
  }

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void put_chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data, size_t size) {
  put_u32(out, static_cast<uint32_t>(size));
  const size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  if (size > 0) out.insert(out.end(), data, data + size);
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, out.data() + type_at, static_cast<uInt>(4 + size));
  put_u32(out, static_cast<uint32_t>(crc));
}

}  // namespace

Result<std::vector<uint8_t>> canvas_to_png(const Canvas& canvas) {
  if (canvas.width <= 0 || canvas.height <= 0) return invalid_argument("the figure has no pixels");
  Raster raster(canvas.width, canvas.height, canvas.background);
  for (const auto& item : canvas.items) {
    if (const auto* r = std::get_if<RectItem>(&item)) raster.fill(r->box.x0, r->box.y0, r->box.x1, r->box.y1, r->fill);
    if (const auto* l = std::get_if<LineItem>(&item)) raster.line(*l);
    if (const auto* p = std::get_if<PathItem>(&item)) raster.path(*p);
    if (const auto* t = std::get_if<TextItem>(&item)) raster.text(*t);
  }

  // Scanlines, each led by filter type 0 (None).
  const size_t stride = static_cast<size_t>(canvas.width) * 3;
  std::vector<uint8_t> raw((stride + 1) * canvas.height);
  for (int y = 0; y < canvas.height; ++y) {
    raw[y * (stride + 1)] = 0;
    std::memcpy(&raw[y * (stride + 1) + 1], &raster.pixels()[y * stride], stride);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> packed(packed_size);
  const int rc = compress2(packed.data(), &packed_size, raw.data(), static_cast<uLong>(raw.size()), 6);
  if (rc != Z_OK) return internal_error("zlib compress2 failed (" + std::to_string(rc) + ") writing a PNG");
  packed.resize(packed_size);

  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32(ihdr, static_cast<uint32_t>(canvas.width));
  put_u32(ihdr, static_cast<uint32_t>(canvas.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit depth, RGB, deflate, adaptive filtering, no interlace
  put_chunk(png, "IHDR", ihdr.data(), ihdr.size());
  put_chunk(png, "IDAT", packed.data(), packed.size());
  put_chunk(png, "IEND", nullptr, 0);
  return png;
}

}  // namespace cw::eval::plot_internal
