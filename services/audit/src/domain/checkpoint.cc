#include "checkpoint.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/str_cat.h"
#include "chain.h"

namespace clinical::audit {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;


BioPtr MemoryBio(std::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string RawPublicKeyId(EVP_PKEY* key) {
  unsigned char raw[32];
  size_t size = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &size) != 1) return "";
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(raw), size));
}

std::string PublicPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key) != 1) return "";
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

std::string CheckpointMessage(const audit::v1::Checkpoint& checkpoint) {
  std::string out;
  AppendLengthPrefixed(out, "clinical.audit.v1.Checkpoint/1");
  AppendLengthPrefixed(out, checkpoint.chain_id());
  AppendLengthPrefixed(out, absl::StrCat(checkpoint.sequence()));
  AppendLengthPrefixed(out, checkpoint.hash());
  const int64_t millis = checkpoint.signed_at().seconds() * 1000 +
                         checkpoint.signed_at().nanos() / 1000000;
  AppendLengthPrefixed(out, absl::StrCat(millis));
  return out;
}

struct CheckpointSigner::Key {
  PkeyPtr pkey;
};

CheckpointSigner::CheckpointSigner(std::unique_ptr<Key> key) : key_(std::move(key)) {
  key_id_ = RawPublicKeyId(key_->pkey.get());
  public_pem_ = PublicPem(key_->pkey.get());
}
CheckpointSigner::~CheckpointSigner() = default;

absl::StatusOr<std::unique_ptr<CheckpointSigner>> CheckpointSigner::FromPem(std::string_view pem) {
  BioPtr bio = MemoryBio(pem);
  if (bio == nullptr) return absl::InternalError("cannot allocate a memory BIO");
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (pkey == nullptr || EVP_PKEY_base_id(pkey.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("signing key is not an Ed25519 private key in PEM");
  }
  auto key = std::make_unique<Key>();
  key->pkey = std::move(pkey);
  return std::unique_ptr<CheckpointSigner>(new CheckpointSigner(std::move(key)));
}

audit::v1::Checkpoint CheckpointSigner::Sign(std::string_view chain_id, int64_t sequence,
                                             std::string_view hash, absl::Time signed_at) const {
  audit::v1::Checkpoint checkpoint;
  checkpoint.set_chain_id(std::string(chain_id));
  checkpoint.set_sequence(sequence);
  checkpoint.set_hash(std::string(hash));
  // Millisecond precision: the signed message carries milliseconds.
  const int64_t millis = absl::ToUnixMillis(signed_at);
  checkpoint.mutable_signed_at()->set_seconds(millis / 1000);
  checkpoint.mutable_signed_at()->set_nanos(static_cast<int32_t>((millis % 1000) * 1000000));
  checkpoint.set_key_id(key_id_);
  const std::string message = CheckpointMessage(checkpoint);
  MdCtxPtr context(EVP_MD_CTX_new());
  unsigned char signature[64];
  size_t size = sizeof(signature);
  if (context == nullptr ||
      EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(context.get(), signature, &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    // Ed25519 signing with a loaded key fails only on allocation failure; an empty
    // signature never verifies, so it cannot pass for a valid checkpoint.
    return checkpoint;
  }
  checkpoint.set_signature(std::string(reinterpret_cast<const char*>(signature), size));
  return checkpoint;
}

struct CheckpointVerifier::Key {
  PkeyPtr pkey;
};

CheckpointVerifier::CheckpointVerifier(std::unique_ptr<Key> key) : key_(std::move(key)) {
  key_id_ = RawPublicKeyId(key_->pkey.get());
}
CheckpointVerifier::~CheckpointVerifier() = default;

absl::StatusOr<std::unique_ptr<CheckpointVerifier>> CheckpointVerifier::FromPem(
    std::string_view pem) {
  BioPtr bio = MemoryBio(pem);
  if (bio == nullptr) return absl::InternalError("cannot allocate a memory BIO");
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (pkey == nullptr || EVP_PKEY_base_id(pkey.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("verification key is not an Ed25519 public key in PEM");
  }
  auto key = std::make_unique<Key>();
  key->pkey = std::move(pkey);
  return std::unique_ptr<CheckpointVerifier>(new CheckpointVerifier(std::move(key)));
}

bool CheckpointVerifier::Verify(const audit::v1::Checkpoint& checkpoint) const {
  const std::string message = CheckpointMessage(checkpoint);
  const std::string& signature = checkpoint.signature();
  MdCtxPtr context(EVP_MD_CTX_new());
  return context != nullptr &&
         EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, key_->pkey.get()) == 1 &&
         EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

}  // namespace clinical::audit
