#pragma once

// Signed checkpoints: an Ed25519 signature (OpenSSL) over a chain's head. Pure
// computation: keys arrive as PEM text (reading the files is the caller's job), the time
// is passed in.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/audit/v1/audit_service.pb.h"

namespace clinical::audit {

// The bytes a checkpoint's signature covers: a domain tag, chain id, sequence, hash and
// signing time (Unix milliseconds), length-prefixed like CanonicalEncoding.
std::string CheckpointMessage(const audit::v1::Checkpoint& checkpoint);

// Signs checkpoints with an Ed25519 private key. Thread-safe (signing uses a fresh
// context per call).
class CheckpointSigner {
 public:
  // INVALID_ARGUMENT unless `pem` holds an Ed25519 private key (PKCS#8, as
  // `openssl genpkey -algorithm ed25519` writes it). The message names no key material.
  static absl::StatusOr<std::unique_ptr<CheckpointSigner>> FromPem(std::string_view pem);
  ~CheckpointSigner();

  audit::v1::Checkpoint Sign(std::string_view chain_id, int64_t sequence, std::string_view hash,
                             absl::Time signed_at) const;
  // SHA-256 (hex) of the raw 32-byte public key.
  const std::string& key_id() const { return key_id_; }
  // The public key as PEM (SubjectPublicKeyInfo), for verifiers.
  const std::string& public_pem() const { return public_pem_; }

 private:
  struct Key;
  explicit CheckpointSigner(std::unique_ptr<Key> key);
  std::unique_ptr<Key> key_;
  std::string key_id_;
  std::string public_pem_;
};

// Verifies checkpoints with an Ed25519 public key. Thread-safe.
class CheckpointVerifier {
 public:
  // INVALID_ARGUMENT unless `pem` holds an Ed25519 public key (SubjectPublicKeyInfo, as
  // `openssl pkey -pubout` writes it).
  static absl::StatusOr<std::unique_ptr<CheckpointVerifier>> FromPem(std::string_view pem);
  ~CheckpointVerifier();

  // Whether the signature is valid for this key and the checkpoint's fields.
  bool Verify(const audit::v1::Checkpoint& checkpoint) const;
  const std::string& key_id() const { return key_id_; }

 private:
  struct Key;
  explicit CheckpointVerifier(std::unique_ptr<Key> key);
  std::unique_ptr<Key> key_;
  std::string key_id_;
};

}  // namespace clinical::audit
