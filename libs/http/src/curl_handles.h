// RAII holders for libcurl's C handles, and the process-wide libcurl initialisation. Private
// to libs/http: no libcurl type appears in a public header.
#pragma once

#include <curl/curl.h>

#include <memory>

#include "absl/status/status.h"

namespace clinical::http::internal {

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
struct CurlFree {
  void operator()(char* text) const { curl_free(text); }
};

using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;
using CurlString = std::unique_ptr<char, CurlFree>;

// curl_global_init, run once per process whichever thread asks first; every later call
// returns the first outcome.
absl::Status EnsureCurlInitialized();

}  // namespace clinical::http::internal
