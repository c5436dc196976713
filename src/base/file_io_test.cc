#include "base/file_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "base/mapped_file.h"

namespace cw {
namespace {

class FileIo : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cw_file_io_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  static void put(const std::string& p, const std::string& content) { std::ofstream(p, std::ios::binary) << content; }
  static std::string get(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  int entries() const {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) n += e.exists() ? 1 : 0;
    return n;
  }
  std::string dir_;
};

TEST_F(FileIo, ReadsRegularFiles) {
  put(path("a.txt"), "hello");
  auto r = read_input(path("a.txt"));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(*r, "hello");
  put(path("empty"), "");
  EXPECT_EQ(*read_input(path("empty")), "");
}

TEST_F(FileIo, MissingFileIsNotFound) {
  auto r = read_input(path("nope"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(path("nope")), std::string::npos);
}

TEST_F(FileIo, RefusesDirectoriesDevicesAndFifosWithoutBlocking) {
  auto d = read_input(dir_);
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("directory"), std::string::npos) << d.status().message();

  auto z = read_input("/dev/zero");  // would read forever
  ASSERT_FALSE(z.is_ok());
  EXPECT_NE(z.status().message().find("character device"), std::string::npos) << z.status().message();

  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  auto f = read_input(path("fifo"));  // no writer: a blocking open would hang here
  ASSERT_FALSE(f.is_ok());
  EXPECT_NE(f.status().message().find("FIFO"), std::string::npos) << f.status().message();
  auto m = MappedFile::open(path("fifo"));
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FileIo, UnreadableFileIsInvalidArgumentNotIoError) {
  put(path("secret"), "x");
  ASSERT_EQ(::chmod(path("secret").c_str(), 0), 0);
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: permissions do not apply";
  auto r = read_input(path("secret"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FileIo, StandardInputIsCapped) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const int saved = ::dup(0);
  ASSERT_EQ(::dup2(fds[0], 0), 0);
  ::close(fds[0]);
  std::thread writer([w = fds[1]] {
    const std::string block(4096, 'x');
    for (int i = 0; i < 64; ++i)
      if (::write(w, block.data(), block.size()) < 0) break;
    ::close(w);
  });
  ReadOptions o;
  o.dash_is_stdin = true;
  o.max_stdin_bytes = 100000;
  auto r = read_input("-", o);
  // Drain so that the writer finishes.
  char buf[4096];
  while (::read(0, buf, sizeof buf) > 0) {
  }
  writer.join();
  ::dup2(saved, 0);
  ::close(saved);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("standard input"), std::string::npos) << r.status().message();
}

TEST(Utf8Encoding, RefusesUtf16AndUtf32) {
  EXPECT_TRUE(check_utf8_encoding("plain text", "x").is_ok());
  EXPECT_TRUE(check_utf8_encoding("", "x").is_ok());
  EXPECT_TRUE(check_utf8_encoding("\xEF\xBB\xBFwith a UTF-8 BOM", "x").is_ok());
  EXPECT_TRUE(check_utf8_encoding(std::string("a\0b\0c", 5), "x").is_ok());  // a few NULs are text
  const std::string le16("\xFF\xFEh\0i\0", 6), be16("\xFE\xFF\0h\0i", 6);
  EXPECT_FALSE(check_utf8_encoding(le16, "x").is_ok());
  EXPECT_FALSE(check_utf8_encoding(be16, "x").is_ok());
  EXPECT_FALSE(check_utf8_encoding(std::string("\xFF\xFE\0\0h\0\0\0", 8), "x").is_ok());
  std::string no_bom;
  for (char c : std::string("Once upon a time there was a file in UTF-16.")) no_bom += std::string{c, '\0'};
  Status s = check_utf8_encoding(no_bom, "'f.txt'");
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("'f.txt' looks like UTF-16"), std::string::npos) << s.message();
  EXPECT_EQ(strip_utf8_bom("\xEF\xBB\xBF{}"), "{}");
  EXPECT_EQ(strip_utf8_bom("{}"), "{}");
}

TEST_F(FileIo, OutputReplacesOnlyOnCommit) {
  const std::string p = path("out.txt");
  put(p, "previous");
  {
    auto o = OutputFile::create(p);
    ASSERT_TRUE(o.is_ok()) << o.status().message();
    ASSERT_TRUE(o->write("half-writ").is_ok());
    std::fflush(o->file());
    EXPECT_EQ(get(p), "previous");
    EXPECT_EQ(entries(), 2);  // the target and the temporary
  }  // abandoned: discarded
  EXPECT_EQ(get(p), "previous");
  EXPECT_EQ(entries(), 1);
  auto o = OutputFile::create(p);
  ASSERT_TRUE(o.is_ok());
  ASSERT_TRUE(o->write("new").is_ok());
  ASSERT_TRUE(o->commit().is_ok());
  EXPECT_EQ(get(p), "new");
  EXPECT_EQ(entries(), 1);
}

TEST_F(FileIo, OutputKeepsModeAndFollowsSymlinks) {
  const std::string target = path("target.txt"), link = path("link.txt");
  put(target, "old");
  ASSERT_EQ(::chmod(target.c_str(), 0640), 0);
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  ASSERT_TRUE(write_file(link, "fresh", 5).is_ok());
  struct stat st {};
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(get(target), "fresh");
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(FileIo, OutputErrors) {
  auto d = OutputFile::create(dir_);
  ASSERT_FALSE(d.is_ok());
  EXPECT_NE(d.status().message().find("directory"), std::string::npos);
  auto m = OutputFile::create(path("no/such/dir/out"));
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  // A device is written in place, never replaced.
  auto n = OutputFile::create("/dev/null");
  ASSERT_TRUE(n.is_ok()) << n.status().message();
  ASSERT_TRUE(n->write("x").is_ok());
  ASSERT_TRUE(n->commit().is_ok());
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  // A full disk fails at commit and leaves the target alone.
  if (::access("/dev/full", W_OK) == 0) {
    auto f = OutputFile::create("/dev/full");
    ASSERT_TRUE(f.is_ok());
    (void)f->write(std::string(1 << 17, 'x'));  // unbuffered past the buffer size: fails here...
    EXPECT_FALSE(f->commit().is_ok());          // ...and the error sticks
    auto g = OutputFile::create("/dev/full");
    ASSERT_TRUE(g.is_ok());
    EXPECT_TRUE(g->write("small").is_ok());  // buffered: the error comes at the flush
    EXPECT_FALSE(g->commit().is_ok());
  }
}

TEST_F(FileIo, OutputMayNotBeAnInput) {
  const std::string a = path("a.md"), b = path("b.md"), hard = path("hard.md");
  put(a, "A");
  put(b, "B");
  ASSERT_EQ(::link(a.c_str(), hard.c_str()), 0);
  EXPECT_TRUE(check_output_not_input(path("new.jsonl"), {a, b}).is_ok());
  EXPECT_TRUE(check_output_not_input(b, {a, "-"}).is_ok());
  Status s = check_output_not_input(a, {b, a});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(check_output_not_input(hard, {a}).is_ok());
  EXPECT_FALSE(check_output_not_input(dir_ + "/./a.md", {a}).is_ok());
  EXPECT_TRUE(check_output_not_input("/dev/null", {"/dev/null"}).is_ok());
}

}  // namespace
}  // namespace cw
