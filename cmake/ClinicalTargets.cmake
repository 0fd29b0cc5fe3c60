# Helpers that give every project target the same flags, names and test labels.

# Warnings for code we own. Generated protobuf code is compiled without them (see
# proto/CMakeLists.txt) because we cannot fix what protoc emits.
function(clinical_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual
    -Wimplicit-fallthrough)
  if(CLINICAL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# clinical_library(NAME SOURCES ... DEPS ...) -> target clinical_NAME, alias clinical::NAME,
# public headers under include/.
function(clinical_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(clinical_${name} ${ARG_SOURCES})
  add_library(clinical::${name} ALIAS clinical_${name})
  target_include_directories(clinical_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
  target_link_libraries(clinical_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  clinical_warnings(clinical_${name})
endfunction()

# clinical_test(NAME LABEL unit|integration|e2e SOURCES ... DEPS ...)
# Integration and e2e tests require the "platform" fixture: ctest starts a fresh Kafka and
# Redis (tests/CMakeLists.txt) before the first of them and stops it after the last.
function(clinical_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  clinical_warnings(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABEL}" TIMEOUT ${ARG_TIMEOUT})
  if(ARG_LABEL STREQUAL "integration" OR ARG_LABEL STREQUAL "e2e")
    set_tests_properties(${name} PROPERTIES
      FIXTURES_REQUIRED platform
      ENVIRONMENT "CLINICAL_PLATFORM_ENV=${CLINICAL_TEST_PLATFORM_DIR}/platform.env;CLINICAL_BINARY_DIR=${CMAKE_BINARY_DIR};CLINICAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  endif()
endfunction()
