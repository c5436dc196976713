# cw_library(NAME SOURCES ... DEPS ...): one static library per layer, include root = src/ and include/.
function(cw_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${name} PUBLIC ${A_DEPS})
endfunction()

# cw_test(NAME SOURCES ... DEPS ... LABELS ...): a GoogleTest binary registered with ctest.
# Tests run from the source tree's tests/ folder so that ../shared is found at a fixed relative path
# (CW_SHARED_DIR overrides it).
function(cw_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT CW_BUILD_TESTS)
    return()
  endif()
  if(NOT A_LABELS)
    set(A_LABELS unit)
  endif()
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} cw_testing GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()

if(CW_BUILD_TESTS)
  add_library(cw_testing STATIC ${PROJECT_SOURCE_DIR}/tests/support/testing.cc)
  target_include_directories(cw_testing PUBLIC ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(cw_testing PUBLIC GTest::gtest)
  # The fp64 reference forward pass (test oracle for the model layer).
  add_library(cw_testing_ref STATIC ${PROJECT_SOURCE_DIR}/tests/support/ref_forward.cc)
  target_include_directories(cw_testing_ref PUBLIC ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(cw_testing_ref PUBLIC cw_model GTest::gtest)
  # A small SPM vocabulary GGUF for tests that generate models in memory.
  add_library(cw_testing_vocab STATIC ${PROJECT_SOURCE_DIR}/tests/support/spm_vocab.cc)
  target_include_directories(cw_testing_vocab PUBLIC ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(cw_testing_vocab PUBLIC cw_gguf cw_model cw_testing)
  target_compile_definitions(cw_testing PRIVATE CW_BINARY="${PROJECT_BINARY_DIR}/apps/chunkwise/chunkwise")
endif()
