# Every third-party dependency is a Debian package; the list of package names lives in
# tools/debian-packages.txt (installed by tools/setup.sh and .ci/run). Nothing is downloaded at build time.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc)
if(CW_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(CW_BUILD_BENCH)
  find_package(benchmark QUIET)
endif()
