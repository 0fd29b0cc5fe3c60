# protoc 3.21 does not escape C++ keywords in package names, so the package
# clinical.case.v1 generates `namespace case`, which no compiler accepts. This renames the
# C++ namespace to clinical::case_ (protoc's own convention for keyword identifiers) in the
# generated files. Only C++ identifiers change: descriptors, type URLs and gRPC method
# paths keep the wire name "clinical.case.v1".
# Usage: cmake -DGENERATED=<gen dir>/clinical/case/v1/<stem> -P cpp_namespace.cmake
foreach(suffix IN ITEMS .pb.h .pb.cc .grpc.pb.h .grpc.pb.cc)
  set(file "${GENERATED}${suffix}")
  file(READ "${file}" text)
  string(REGEX REPLACE "([^A-Za-z0-9_])case::" "\\1case_::" text "${text}")
  string(REPLACE "namespace case {" "namespace case_ {" text "${text}")
  string(REPLACE "}  // namespace case\n" "}  // namespace case_\n" text "${text}")
  file(WRITE "${file}" "${text}")
endforeach()
