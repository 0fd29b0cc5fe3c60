// clinical_test_token USER ROLE TENANT
//
// Prints an access token of the test platform's identity provider for that person,
// creating the person in the realm if needed (testing::TokenFor). For harnesses outside
// GoogleTest that call the services as a real client would: benchmarks with ghz. Needs
// CLINICAL_PLATFORM_ENV (the platform.env of deploy/local/platform.sh). Exit 2 on usage.
#include <cstdio>

#include "clinical/testing/identity.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: clinical_test_token USER ROLE TENANT\n");
    return 2;
  }
  std::printf("%s\n", clinical::testing::TokenFor({argv[1], argv[2], argv[3]}).c_str());
  return 0;
}
