#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clinical/identity/jwks.h"

namespace clinical::identity {

struct KeySetOptions {
  // At most one fetch per interval, whatever asks for it (an unknown kid, keys past
  // max_age, a failed fetch being retried): a flood of tokens with forged kids, or of
  // requests while the issuer is down, cannot turn into a flood of requests to the issuer.
  absl::Duration min_refresh_interval = absl::Seconds(10);
  // Keys fetched longer ago than this are re-fetched on the next lookup, so a key the
  // issuer withdrew stops being accepted within about max_age.
  absl::Duration max_age = absl::Minutes(10);
  // A larger JWKS document is treated as a failed fetch.
  size_t max_document_bytes = 512 * 1024;
};

// The signing keys of one issuer, fetched from its JWKS URL and cached.
//
// Guarantees:
// - Thread-safe. The fetcher runs without the lock held and never concurrently with
//   itself; lookups of known keys do not wait for a fetch another thread is making.
// - A failed fetch (fetcher error, not a JWKS, no usable key, too large) keeps the keys
//   already held. Nothing is logged here: failures are counted in Stats() and the last
//   one is kept for the caller to report.
// - Key rotation needs no restart: a token with a kid not yet known triggers a fetch
//   (within min_refresh_interval), and the new key is used from then on.
// - Time is what the caller passes as `now`; there are no sleeps or timers.
class KeySet {
 public:
  // GET `url` and return the body. It should bound its own time (a deadline) and refuse
  // redirects to other schemes; the library never does I/O itself.
  using Fetcher = std::function<absl::StatusOr<std::string>(const std::string& url)>;

  KeySet(Fetcher fetcher, std::string jwks_url, KeySetOptions options = {});
  KeySet(const KeySet&) = delete;
  KeySet& operator=(const KeySet&) = delete;

  // The key for a token header's `kid` and `algorithm`.
  // - A non-empty kid selects the key with that kid (the one of that algorithm if the set
  //   holds several); its algorithm may differ, and the caller must check it.
  // - An empty kid selects the only key of `algorithm`, if exactly one exists.
  // Returns NOT_FOUND ("unknown key") when no key matches after at most one fetch
  // (subject to min_refresh_interval), and UNAVAILABLE when no keys were ever fetched
  // and fetching fails now or may not be retried yet.
  absl::StatusOr<PublicKey> Find(const std::string& kid, const std::string& algorithm,
                                 absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // Fetches now, regardless of min_refresh_interval (e.g. to warm the cache before a
  // service reports ready). Waits for a fetch already in progress first. Returns the
  // fetch's outcome; on failure the keys held are kept.
  absl::Status Refresh(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  struct Stats {
    uint64_t fetches = 0;         // fetch attempts
    uint64_t fetch_failures = 0;  // attempts that did not replace the keys
    size_t key_count = 0;         // keys held now
    absl::Time last_success = absl::InfinitePast();
    absl::Status last_failure;    // OK until a fetch fails; never contains token data
  };
  Stats GetStats() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Key matching kid/algorithm among the keys held, or nullptr.
  const PublicKey* Lookup(const std::string& kid, const std::string& algorithm) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool FetchAllowed(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the fetcher with mu_ released (marking the fetch in flight) and installs the
  // result. Requires that no fetch is in flight.
  absl::Status FetchLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AwaitNoFetchInFlight() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The fetcher's body turned into keys; never holds mu_.
  absl::StatusOr<std::vector<PublicKey>> FetchKeys() const;

  const Fetcher fetcher_;
  const std::string jwks_url_;
  const KeySetOptions options_;

  mutable absl::Mutex mu_;
  std::vector<PublicKey> keys_ ABSL_GUARDED_BY(mu_);
  absl::Time fetched_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool fetch_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clinical::identity
