// Tests of the plot writer: SVG structure and escaping, PNG decoded back (chunks, CRCs, pixels), input
// validation and write_plot's choice of format.
#include "eval/plot.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <regex>
#include <set>

#include "support/testing.h"

namespace cw::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

LinePlot sample_line_plot() {
  LinePlot p;
  p.title = "PPL <by> position & \"policy\"";
  p.x_label = "token position";
  p.y_label = "perplexity";
  for (int s = 0; s < 3; ++s) {
    Series ser;
    ser.label = s == 0 ? "full" : s == 1 ? "sink_window(4,124)" : "a<b & 'c'";
    for (int i = 1; i <= 200; ++i) {
      ser.x.push_back(i * 10);
      ser.y.push_back(8.0 + 2.0 * s + 3.0 * std::sin(i / 15.0 + s));
    }
    p.series.push_back(ser);
  }
  return p;
}

std::vector<Heatmap> sample_heatmaps() {
  std::vector<Heatmap> maps;
  for (int m = 0; m < 2; ++m) {
    Heatmap h;
    h.title = m == 0 ? "full" : "sink_window";
    h.x_label = "context length";
    h.y_label = "depth";
    h.x_ticks = {"1k", "2k", "4k", "8k"};
    h.y_ticks = {"0%", "25%", "50%", "75%", "100%"};
    for (int r = 0; r < 5; ++r)
      for (int c = 0; c < 4; ++c) h.values.push_back(m == 0 ? 1.0 : (r + c) / 8.0);
    if (m == 1) h.values[3] = kNaN;
    maps.push_back(h);
  }
  maps[0].values[1] = 0.95;
  return maps;
}

// A decoded PNG (8-bit RGB only, which is all the writer produces).
struct Decoded {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [height][width][3]
  std::array<uint8_t, 3> at(uint32_t x, uint32_t y) const {
    const size_t i = (static_cast<size_t>(y) * width + x) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
  bool has(std::array<uint8_t, 3> c) const {
    for (size_t i = 0; i + 2 < rgb.size(); i += 3)
      if (rgb[i] == c[0] && rgb[i + 1] == c[1] && rgb[i + 2] == c[2]) return true;
    return false;
  }
};

uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

// Checks signature, chunk order and CRCs, inflates IDAT and removes the filter bytes.
void decode_png(const std::vector<uint8_t>& png, Decoded* out) {
  static const uint8_t kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  ASSERT_GE(png.size(), 8u);
  ASSERT_EQ(0, std::memcmp(png.data(), kSig, 8));
  std::vector<std::string> order;
  std::vector<uint8_t> idat;
  size_t at = 8;
  while (at < png.size()) {
    ASSERT_LE(at + 12, png.size());
    const uint32_t len = be32(&png[at]);
    ASSERT_LE(at + 12 + len, png.size());
    const std::string type(reinterpret_cast<const char*>(&png[at + 4]), 4);
    const uint32_t crc = be32(&png[at + 8 + len]);
    EXPECT_EQ(crc, static_cast<uint32_t>(crc32(0, &png[at + 4], 4 + len))) << "bad CRC in " << type;
    if (type == "IHDR") {
      ASSERT_EQ(len, 13u);
      out->width = be32(&png[at + 8]);
      out->height = be32(&png[at + 12]);
      EXPECT_EQ(png[at + 16], 8);  // bit depth
      EXPECT_EQ(png[at + 17], 2);  // RGB
      EXPECT_EQ(png[at + 20], 0);  // not interlaced
    }
    if (type == "IDAT") idat.insert(idat.end(), &png[at + 8], &png[at + 8] + len);
    order.push_back(type);
    at += 12 + len;
  }
  ASSERT_EQ(at, png.size());
  ASSERT_GE(order.size(), 3u);
  EXPECT_EQ(order.front(), "IHDR");
  EXPECT_EQ(order.back(), "IEND");
  ASSERT_GT(out->width, 0u);
  ASSERT_GT(out->height, 0u);
  const size_t stride = out->width * 3;
  std::vector<uint8_t> raw((stride + 1) * out->height);
  uLongf raw_size = raw.size();
  ASSERT_EQ(Z_OK, uncompress(raw.data(), &raw_size, idat.data(), idat.size()));
  ASSERT_EQ(raw_size, raw.size());
  out->rgb.resize(stride * out->height);
  for (uint32_t y = 0; y < out->height; ++y) {
    ASSERT_EQ(raw[y * (stride + 1)], 0) << "unexpected filter type on row " << y;
    std::memcpy(&out->rgb[y * stride], &raw[y * (stride + 1) + 1], stride);
  }
}

std::array<uint8_t, 3> parse_hex(const std::string& h) {
  return {static_cast<uint8_t>(std::stoi(h.substr(1, 2), nullptr, 16)),
          static_cast<uint8_t>(std::stoi(h.substr(3, 2), nullptr, 16)),
          static_cast<uint8_t>(std::stoi(h.substr(5, 2), nullptr, 16))};
}

// The colours of the elements that match `re` (its group 1 is "#rrggbb").
std::vector<std::array<uint8_t, 3>> colours(const std::string& svg, const std::string& re) {
  std::vector<std::array<uint8_t, 3>> out;
  const std::regex r(re);
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), r); it != std::sregex_iterator(); ++it) {
    out.push_back(parse_hex((*it)[1].str()));
  }
  return out;
}

std::string rstrip(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

TEST(PlotSvg, LinePlotIsWellFormedAndEscaped) {
  const LinePlot p = sample_line_plot();
  auto svg = render_svg(p);
  ASSERT_TRUE(svg.is_ok()) << svg.status().to_string();
  EXPECT_EQ(svg->rfind("<svg", 0), 0u);
  EXPECT_EQ(rstrip(*svg).size() - 6, rstrip(*svg).rfind("</svg>"));
  EXPECT_EQ(count(*svg, "<path"), 3u);  // one per series
  EXPECT_NE(svg->find("PPL &lt;by&gt; position &amp; &quot;policy&quot;"), std::string::npos);
  EXPECT_NE(svg->find(">token position<"), std::string::npos);
  EXPECT_NE(svg->find(">perplexity<"), std::string::npos);
  EXPECT_NE(svg->find(">full<"), std::string::npos);
  EXPECT_NE(svg->find(">sink_window(4,124)<"), std::string::npos);
  EXPECT_NE(svg->find(">a&lt;b &amp; &apos;c&apos;<"), std::string::npos);
  EXPECT_EQ(svg->find("<by>"), std::string::npos);
  EXPECT_EQ(svg->find("a<b"), std::string::npos);
  // Balanced elements: every opened text element is closed.
  EXPECT_EQ(count(*svg, "<text"), count(*svg, "</text>"));
  // Distinct colours per series.
  const auto c = colours(*svg, "<path class=\"series\"[^>]*stroke=\"(#[0-9a-f]{6})\"");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(std::set(c.begin(), c.end()).size(), 3u);
  // Nice x ticks: x runs 10..2000, so round labels appear.
  EXPECT_NE(svg->find(">1000<"), std::string::npos);
  EXPECT_NE(svg->find(">2000<"), std::string::npos);
}

TEST(PlotSvg, NiceTicksAndLogAxis) {
  LinePlot p;
  p.series = {{"s", {0, 1, 2, 3}, {0.0, 31.0, 64.0, 97.0}}};
  auto lin = render_svg(p);
  ASSERT_TRUE(lin.is_ok());
  for (const char* t : {">0<", ">20<", ">40<", ">60<", ">80<", ">100<"}) EXPECT_NE(lin->find(t), std::string::npos) << t;
  EXPECT_EQ(lin->find(">97<"), std::string::npos);

  p.series = {{"s", {0, 1, 2, 3, 4}, {1.5, 12.0, 250.0, 0.0, 4000.0}}};  // 0 is a gap on a log axis
  p.log_y = true;
  auto log = render_svg(p);
  ASSERT_TRUE(log.is_ok()) << log.status().to_string();
  for (const char* t : {">1<", ">10<", ">100<", ">1000<", ">10000<"}) EXPECT_NE(log->find(t), std::string::npos) << t;

  // A narrow range on a log axis still gets several ticks.
  p.series = {{"s", {0, 1, 2}, {5.2, 6.0, 8.9}}};
  auto narrow = render_svg(p);
  ASSERT_TRUE(narrow.is_ok());
  for (const char* t : {">6<", ">7<", ">8<"}) EXPECT_NE(narrow->find(t), std::string::npos) << t;

  // Small and large magnitudes.
  p.log_y = false;
  p.series = {{"s", {0, 1}, {0.0012, 0.0031}}};
  auto small = render_svg(p);
  ASSERT_TRUE(small.is_ok());
  EXPECT_NE(small->find(">0.0020<"), std::string::npos);
  p.series = {{"s", {0, 1}, {2e7, 9e7}}};
  auto big = render_svg(p);
  ASSERT_TRUE(big.is_ok());
  EXPECT_NE(big->find(">4e7<"), std::string::npos);
}

TEST(PlotSvg, GapsStayInOnePath) {
  LinePlot p;
  p.series = {{"gappy", {1, 2, 3, 4, 5, 6}, {1, 2, kNaN, 4, kInf, 6}}, {"single", {1}, {3}}};
  auto svg = render_svg(p);
  ASSERT_TRUE(svg.is_ok()) << svg.status().to_string();
  ASSERT_EQ(count(*svg, "<path"), 2u);
  const size_t second = svg->find("<path", svg->find("<path") + 1);
  const std::string first_path = svg->substr(svg->find("<path"), second - svg->find("<path"));
  EXPECT_EQ(count(first_path, "M"), 3u);  // runs {1,2}, {4}, {6}
  EXPECT_NE(svg->find("h0"), std::string::npos);  // a lone point is drawn as a dot
}

TEST(PlotSvg, OddTextIsSanitized) {
  LinePlot p;
  p.title = std::string("bad \xff byte\x01 and \xc3\xa9");
  p.series = {{"x", {0, 1}, {0, 1}}};
  auto svg = render_svg(p);
  ASSERT_TRUE(svg.is_ok());
  EXPECT_EQ(svg->find('\xff'), std::string::npos);
  EXPECT_EQ(svg->find('\x01'), std::string::npos);
  EXPECT_NE(svg->find("\xc3\xa9"), std::string::npos);  // valid UTF-8 is kept
  auto png = render_png(p);
  EXPECT_TRUE(png.is_ok());
}

TEST(PlotSvg, HeatmapHasCellsValuesAndTitles) {
  const auto maps = sample_heatmaps();
  auto svg = render_svg(maps);
  ASSERT_TRUE(svg.is_ok()) << svg.status().to_string();
  EXPECT_EQ(svg->rfind("<svg", 0), 0u);
  EXPECT_EQ(rstrip(*svg).size() - 6, rstrip(*svg).rfind("</svg>"));
  EXPECT_EQ(count(*svg, "class=\"cell\""), 40u);
  EXPECT_EQ(count(*svg, "<path"), 0u);
  for (const char* t : {">full<", ">sink_window<", ">context length<", ">depth<", ">1k<", ">8k<", ">100%<", ">100<",
                        ">95<", ">no data<"}) {
    EXPECT_NE(svg->find(t), std::string::npos) << t;
  }
  const auto cells = colours(*svg, "class=\"cell\"[^>]*fill=\"(#[0-9a-f]{6})\"");
  ASSERT_EQ(cells.size(), 40u);
  const std::array<uint8_t, 3> grey = cells[20 + 3];  // the NaN cell of the second map
  EXPECT_EQ(grey[0], grey[1]);
  EXPECT_EQ(grey[1], grey[2]);
  EXPECT_NE(cells[0], cells[20]);  // 1.0 and 0.0 differ
  EXPECT_GT(cells[0][1], cells[0][0]);   // 1.0 is green
  EXPECT_GT(cells[20][0], cells[20][1]);  // 0.0 is red
}

TEST(PlotPng, LinePlotDecodes) {
  const LinePlot p = sample_line_plot();
  auto png = render_png(p);
  ASSERT_TRUE(png.is_ok()) << png.status().to_string();
  Decoded d;
  ASSERT_NO_FATAL_FAILURE(decode_png(*png, &d));
  auto svg = render_svg(p);
  ASSERT_TRUE(svg.is_ok());
  const std::regex size_re("<svg[^>]* width=\"(\\d+)\" height=\"(\\d+)\"");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*svg, m, size_re));
  EXPECT_EQ(d.width, std::stoul(m[1].str()));
  EXPECT_EQ(d.height, std::stoul(m[2].str()));
  const std::array<uint8_t, 3> white{255, 255, 255};
  EXPECT_EQ(d.at(0, 0), white);
  EXPECT_EQ(d.at(d.width - 1, d.height - 1), white);
  for (const auto& c : colours(*svg, "<path class=\"series\"[^>]*stroke=\"(#[0-9a-f]{6})\"")) {
    EXPECT_TRUE(d.has(c)) << "series colour missing from the PNG";
  }
  EXPECT_TRUE(d.has({0, 0, 0}));  // title text
}

// A series of one value (e.g. `full` stopped after one segment) has no segment to stroke: it is marked.
TEST(PlotPng, LonePointIsMarked) {
  LinePlot p;
  p.series = {{"two", {0, 10}, {1, 2}}, {"one", {5}, {1.5}}};
  auto png = render_png(p);
  ASSERT_TRUE(png.is_ok()) << png.status().to_string();
  Decoded d;
  ASSERT_NO_FATAL_FAILURE(decode_png(*png, &d));
  int marked = 0;  // pixels of the second palette colour (orange) beyond the legend's swatch
  for (uint32_t y = 0; y < d.height; ++y)
    for (uint32_t x = 0; x < d.width; ++x) marked += d.at(x, y) == std::array<uint8_t, 3>{255, 127, 14};
  EXPECT_GE(marked, 24 * 3 + 30) << "the legend swatch alone, no marker";
}

TEST(PlotPng, HeatmapDecodes) {
  const auto maps = sample_heatmaps();
  auto png = render_png(maps);
  ASSERT_TRUE(png.is_ok()) << png.status().to_string();
  Decoded d;
  ASSERT_NO_FATAL_FAILURE(decode_png(*png, &d));
  auto svg = render_svg(maps);
  ASSERT_TRUE(svg.is_ok());
  for (const auto& c : colours(*svg, "class=\"cell\"[^>]*fill=\"(#[0-9a-f]{6})\"")) EXPECT_TRUE(d.has(c));
  EXPECT_EQ(d.at(0, 0), (std::array<uint8_t, 3>{255, 255, 255}));
}

TEST(PlotValidation, LinePlotErrors) {
  auto expect_invalid = [](const LinePlot& p, const std::string& part) {
    const Status st = validate(p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
    EXPECT_NE(st.message().find(part), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find('\n'), std::string::npos);
    auto svg = render_svg(p);
    EXPECT_EQ(svg.status().code(), StatusCode::kInvalidArgument);
    auto png = render_png(p);
    EXPECT_EQ(png.status().code(), StatusCode::kInvalidArgument);
  };
  LinePlot p;
  expect_invalid(p, "no series");
  p.series = {{"ok", {1, 2}, {1, 2}}, {"bad", {1, 2, 3}, {1, 2}}};
  expect_invalid(p, "'bad' has 3 x values but 2 y values");
  p.series = {{"nan", {1, 2}, {kNaN, kInf}}, {"empty", {}, {}}};
  expect_invalid(p, "no finite data");
  p.series = {{"neg", {1, 2}, {-1, 0}}};
  p.log_y = true;
  expect_invalid(p, "no positive y");
  p.log_y = false;
  p.series = {{"huge", {1, 2}, {1, 1e305}}};
  expect_invalid(p, "too large");
  p.series.clear();
  for (int i = 0; i < 2000; ++i) p.series.push_back({std::string("s").append(std::to_string(i)), {0, 1}, {0, 1}});
  EXPECT_TRUE(validate(p).is_ok());  // the figure size is known only after layout
  auto tall = render_png(p);         // a legend that tall
  EXPECT_EQ(tall.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tall.status().message().find("pixels"), std::string::npos) << tall.status().message();
}

TEST(PlotValidation, HeatmapErrors) {
  auto expect_invalid = [](const std::vector<Heatmap>& h, const std::string& part) {
    const Status st = validate(h);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
    EXPECT_NE(st.message().find(part), std::string::npos) << st.message();
    EXPECT_EQ(render_png(h).status().code(), StatusCode::kInvalidArgument);
  };
  expect_invalid({}, "no heatmaps");
  auto maps = sample_heatmaps();
  maps[1].values.pop_back();
  expect_invalid(maps, "has 19 values, expected 5 rows x 4 columns = 20");
  maps = sample_heatmaps();
  maps[0].x_ticks.clear();
  expect_invalid(maps, "no columns");
  maps = sample_heatmaps();
  maps[0].values[2] = 1.5;
  expect_invalid(maps, "row 0, column 2 is 1.5");
  maps[0].values[2] = -kInf;
  expect_invalid(maps, "must lie in [0, 1]");
  maps = sample_heatmaps();
  for (auto& h : maps)
    for (double& v : h.values) v = kNaN;
  expect_invalid(maps, "all values NaN");
  // One all-NaN panel next to one with data is fine.
  maps = sample_heatmaps();
  for (double& v : maps[1].values) v = kNaN;
  EXPECT_TRUE(validate(maps).is_ok());
  EXPECT_TRUE(render_png(maps).is_ok());
}

TEST(PlotWrite, PicksFormatByExtension) {
  const std::string dir = testing::temp_dir();
  const LinePlot p = sample_line_plot();
  const auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  ASSERT_TRUE(write_plot(dir + "/a.svg", p).is_ok());
  EXPECT_EQ(read(dir + "/a.svg").rfind("<svg", 0), 0u);
  ASSERT_TRUE(write_plot(dir + "/b.PNG", p).is_ok());
  EXPECT_EQ(read(dir + "/b.PNG").substr(1, 3), "PNG");
  ASSERT_TRUE(write_plot(dir + "/c.Svg", sample_heatmaps()).is_ok());
  ASSERT_TRUE(write_plot(dir + "/d.png", sample_heatmaps()).is_ok());
  EXPECT_EQ(read(dir + "/d.png").substr(1, 3), "PNG");

  for (const std::string name : {"e.pdf", "svg", "f.svg.txt", "png", ""}) {
    const Status st = write_plot(dir + "/" + name, p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(st.message(), "plot file must end in .svg or .png");
  }
  // Bad data: an error, and no file.
  EXPECT_EQ(write_plot(dir + "/bad.svg", LinePlot{}).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.svg"));
  // A missing directory: an error naming the path, not a crash.
  const Status missing = write_plot(dir + "/no/such/dir/x.png", p);
  EXPECT_FALSE(missing.is_ok());
  EXPECT_NE(missing.message().find("no/such/dir"), std::string::npos) << missing.to_string();
  EXPECT_FALSE(write_plot(dir, p).is_ok());  // "dir" has no extension
  std::filesystem::create_directory(dir + "/isdir.svg");
  EXPECT_FALSE(write_plot(dir + "/isdir.svg", p).is_ok());
}

// Writes the four samples to $CW_PLOT_SAMPLES when set (for looking at them; not a check).
TEST(PlotWrite, Samples) {
  const char* out = std::getenv("CW_PLOT_SAMPLES");
  if (!out) GTEST_SKIP() << "CW_PLOT_SAMPLES not set";
  LinePlot p = sample_line_plot();
  p.title = "Perplexity by token position (stories260K)";
  p.series[2].label = "recompute_window(4,124)";
  for (size_t i = 60; i < 70; ++i) p.series[1].y[i] = kNaN;
  EXPECT_TRUE(write_plot(std::string(out) + "/line.svg", p).is_ok());
  EXPECT_TRUE(write_plot(std::string(out) + "/line.png", p).is_ok());
  p.log_y = true;
  p.title = "log y";
  EXPECT_TRUE(write_plot(std::string(out) + "/line_log.png", p).is_ok());
  auto maps = sample_heatmaps();
  maps[0].title = "full (accuracy)";
  EXPECT_TRUE(write_plot(std::string(out) + "/heatmap.svg", maps).is_ok());
  EXPECT_TRUE(write_plot(std::string(out) + "/heatmap.png", maps).is_ok());
}

}  // namespace
}  // namespace cw::eval
