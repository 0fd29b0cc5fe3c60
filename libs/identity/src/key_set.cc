#include "clinical/identity/key_set.h"

#include <utility>

namespace clinical::identity {

KeySet::KeySet(Fetcher fetcher, std::string jwks_url, KeySetOptions options)
    : fetcher_(std::move(fetcher)), jwks_url_(std::move(jwks_url)), options_(options) {}

absl::StatusOr<PublicKey> KeySet::Find(const std::string& kid, const std::string& algorithm,
                                       absl::Time now) {
  absl::MutexLock lock(&mu_);
  const bool stale = keys_.empty() || now - fetched_at_ >= options_.max_age;
  if (stale && !fetch_in_flight_ && FetchAllowed(now)) {
    // The outcome is in stats_; stale keys stay usable when the refresh fails.
    FetchLocked(now).IgnoreError();
  }
  if (const PublicKey* key = Lookup(kid, algorithm)) return *key;

  // Unknown key: possibly rotated in since the last fetch. Share a fetch in progress, or
  // make one if the interval allows.
  if (fetch_in_flight_) {
    AwaitNoFetchInFlight();
  } else if (FetchAllowed(now)) {
    FetchLocked(now).IgnoreError();
  }
  if (const PublicKey* key = Lookup(kid, algorithm)) return *key;
  if (keys_.empty()) return absl::UnavailableError("issuer signing keys unavailable");
  return absl::NotFoundError("unknown signing key");
}

absl::Status KeySet::Refresh(absl::Time now) {
  absl::MutexLock lock(&mu_);
  AwaitNoFetchInFlight();
  return FetchLocked(now);
}

KeySet::Stats KeySet::GetStats() const {
  absl::MutexLock lock(&mu_);
  Stats stats = stats_;
  stats.key_count = keys_.size();
  return stats;
}

const PublicKey* KeySet::Lookup(const std::string& kid, const std::string& algorithm) const {
  const PublicKey* found = nullptr;
  if (!kid.empty()) {
    for (const PublicKey& key : keys_) {
      if (key.kid != kid) continue;
      if (key.algorithm == algorithm) return &key;
      if (found == nullptr) found = &key;
    }
    return found;
  }
  // No kid: usable only when the choice is unambiguous.
  for (const PublicKey& key : keys_) {
    if (key.algorithm != algorithm) continue;
    if (found != nullptr) return nullptr;
    found = &key;
  }
  return found;
}

bool KeySet::FetchAllowed(absl::Time now) const {
  return now - last_attempt_ >= options_.min_refresh_interval;
}

void KeySet::AwaitNoFetchInFlight() {
  mu_.Await(absl::Condition(
      +[](bool* in_flight) { return !*in_flight; }, &fetch_in_flight_));
}

absl::Status KeySet::FetchLocked(absl::Time now) {
  fetch_in_flight_ = true;
  last_attempt_ = now;
  ++stats_.fetches;
  mu_.Unlock();
  absl::StatusOr<std::vector<PublicKey>> keys;
  // An exception escaping here would unwind through a lock that is not held and leave the
  // fetch marked in flight forever, so none may (the fetcher is the caller's code).
  try {
    keys = FetchKeys();
  } catch (...) {
    keys = absl::InternalError("JWKS fetch threw an exception");
  }
  mu_.Lock();
  fetch_in_flight_ = false;
  if (!keys.ok()) {
    ++stats_.fetch_failures;
    stats_.last_failure = keys.status();
    return keys.status();
  }
  keys_ = std::move(*keys);
  fetched_at_ = now;
  stats_.last_success = now;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PublicKey>> KeySet::FetchKeys() const {
  if (!fetcher_) return absl::FailedPreconditionError("JWKS fetcher not set");
  absl::StatusOr<std::string> body = fetcher_(jwks_url_);
  if (!body.ok()) return body.status();
  if (body->size() > options_.max_document_bytes) {
    return absl::ResourceExhaustedError("JWKS document too large");
  }
  absl::StatusOr<std::vector<PublicKey>> keys = ParseJwks(*body);
  if (!keys.ok()) return keys.status();
  // An issuer always has a signing key; an empty set is a broken response (a proxy's error
  // page, a misconfiguration), and installing it would refuse every token.
  if (keys->empty()) return absl::FailedPreconditionError("JWKS has no usable signing key");
  return keys;
}

}  // namespace clinical::identity
