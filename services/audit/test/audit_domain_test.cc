// The audit log's pure parts: record building and hashing, checkpoint signatures, range
// verification against every kind of tampering, and the FHIR AuditEvent mapping.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>
#include <vector>

#include "chain.h"
#include "checkpoint.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/common/v1/envelope.pb.h"
#include "fhir.h"
#include "log_keys.h"
#include "gtest/gtest.h"
#include "verify.h"

namespace clinical::audit {
namespace {

using audit::v1::ChainedRecord;

// A fresh Ed25519 key pair as PEM texts (private, public).
std::pair<std::string, std::string> NewKeyPair() {
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* context = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  EXPECT_NE(context, nullptr);
  EXPECT_EQ(EVP_PKEY_keygen_init(context), 1);
  EXPECT_EQ(EVP_PKEY_keygen(context, &key), 1);
  EVP_PKEY_CTX_free(context);
  auto to_string = [](BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<size_t>(size));
    BIO_free(bio);
    return text;
  };
  BIO* private_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(private_bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  BIO* public_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(public_bio, key);
  EVP_PKEY_free(key);
  return {to_string(private_bio), to_string(public_bio)};
}

std::string EventValue(const std::string& case_id, int version, const std::string& type_name) {
  common::v1::EventEnvelope event;
  event.set_event_id("evt-" + case_id + "-" + std::to_string(version));
  event.set_aggregate_type("case");
  event.set_aggregate_id(case_id);
  event.set_aggregate_version(version);
  event.set_event_type(type_name);
  event.mutable_occurred_at()->set_seconds(1700000000 + version);
  event.mutable_recorded_at()->set_seconds(1700000100 + version);
  event.mutable_actor()->set_user_id("cm-7");
  event.mutable_actor()->set_role(common::v1::ROLE_CASE_MANAGER);
  event.set_tenant_id("tenant-a");
  case_::v1::CaseOpened opened;
  opened.mutable_patient()->set_mrn("MRN-1");
  event.mutable_payload()->PackFrom(opened);
  return event.SerializeAsString();
}

// A chain of `n` records built from event values at offsets 10, 12, 14, ... (gaps like
// transaction markers leave).
struct Fixture {
  std::vector<SourceRecord> sources;
  std::vector<ChainedRecord> records;
  std::vector<std::optional<std::string>> stored;
  std::map<int64_t, std::string> source_values;
};

Fixture MakeChain(int n) {
  Fixture f;
  std::string previous(kGenesisHash);
  for (int i = 0; i < n; ++i) {
    SourceRecord source{"clinical.case.events.v1", 3, 10 + 2 * i,
                        EventValue("case-" + std::to_string(i % 2), i + 1,
                                   "clinical.case.v1.CaseOpened")};
    ChainedRecord record = BuildRecord(source, SourceFormat::kEvents, i + 1, previous);
    previous = record.hash();
    f.source_values[source.offset] = source.value;
    f.sources.push_back(source);
    f.stored.push_back(record.SerializeAsString());
    f.records.push_back(std::move(record));
  }
  return f;
}

VerifyInput Input(const Fixture& f) {
  VerifyInput input;
  input.chain_id = "clinical.case.events.v1/3";
  input.stored = f.stored;
  input.stored_last_sequence = static_cast<int64_t>(f.stored.size());
  input.source_values = f.source_values;
  return input;
}

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto [private_pem, public_pem] = NewKeyPair();
    auto signer = CheckpointSigner::FromPem(private_pem);
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = std::move(*signer);
    auto verifier = CheckpointVerifier::FromPem(public_pem);
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = std::move(*verifier);
    chain_ = MakeChain(8);
  }
  audit::v1::Checkpoint SignAt(int64_t sequence) {
    return signer_->Sign("clinical.case.events.v1/3", sequence, chain_.records[sequence - 1].hash(),
                         absl::FromUnixSeconds(1700001000));
  }
  std::unique_ptr<CheckpointSigner> signer_;
  std::unique_ptr<CheckpointVerifier> verifier_;
  Fixture chain_;
};

TEST(ChainTest, BuildRecordIsDeterministicAndIndexesTheEnvelope) {
  SourceRecord source{"clinical.case.events.v1", 3, 42, EventValue("case-9", 1, "clinical.case.v1.CaseOpened")};
  const ChainedRecord a = BuildRecord(source, SourceFormat::kEvents, 1, kGenesisHash);
  const ChainedRecord b = BuildRecord(source, SourceFormat::kEvents, 1, kGenesisHash);
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  EXPECT_EQ(a.chain_id(), "clinical.case.events.v1/3");
  EXPECT_EQ(a.kind(), audit::v1::RECORD_KIND_EVENT);
  EXPECT_EQ(a.action(), "clinical.case.v1.CaseOpened");
  EXPECT_EQ(a.actor_id(), "cm-7");
  EXPECT_EQ(a.actor_role(), "case_manager");
  EXPECT_EQ(a.tenant_id(), "tenant-a");
  ASSERT_EQ(a.case_ids_size(), 1);
  EXPECT_EQ(a.case_ids(0), "case-9");
  EXPECT_EQ(a.source_offset(), 42);
  EXPECT_EQ(a.value_sha256(), Sha256Hex(source.value));
  EXPECT_EQ(a.previous_hash(), kGenesisHash);
  EXPECT_EQ(a.hash(), ComputeHash(a));
  EXPECT_EQ(a.hash().size(), 64u);
  // The record never holds the payload: the MRN inside CaseOpened is not in it.
  EXPECT_EQ(a.SerializeAsString().find("MRN-1"), std::string::npos);
}

TEST(ChainTest, Sha256MatchesTheKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ChainTest, EveryFieldAndThePreviousHashChangeTheHash) {
  SourceRecord source{"t", 0, 1, EventValue("case-1", 1, "clinical.case.v1.CaseOpened")};
  const ChainedRecord base = BuildRecord(source, SourceFormat::kEvents, 1, kGenesisHash);
  std::vector<ChainedRecord> variants(6, base);
  variants[0].set_actor_id("someone-else");
  variants[1].set_sequence(2);
  variants[2].set_previous_hash(std::string(64, '1'));
  variants[3].mutable_occurred_at()->set_nanos(1);
  variants[4].add_case_ids("case-2");
  variants[5].set_source_offset(2);
  for (const ChainedRecord& variant : variants) EXPECT_NE(ComputeHash(variant), base.hash());
}

TEST(ChainTest, EncodingSeparatesAdjacentFields) {
  ChainedRecord one, two;
  one.add_case_ids("ab");
  two.add_case_ids("a");
  two.add_case_ids("b");
  EXPECT_NE(CanonicalEncoding(one), CanonicalEncoding(two));
  ChainedRecord three, four;
  three.set_actor_id("ab");
  four.set_actor_id("a");
  four.set_actor_role("b");
  EXPECT_NE(CanonicalEncoding(three), CanonicalEncoding(four));
}

TEST(ChainTest, AccessRecordsAndUndecodableValuesAreChained) {
  audit::v1::AccessRecord access;
  access.set_record_id("rec-1");
  access.set_actor_id("cm-1");
  access.set_actor_role("case_manager");
  access.set_tenant_id("tenant-a");
  access.set_method("/clinical.case.v1.CaseService/GetCase");
  access.set_resource_type("case");
  access.add_resource_ids("case-5");
  access.add_case_ids("case-5");
  access.set_purpose_of_use("TREAT");
  access.set_source_address("ipv4:127.0.0.1:5000");
  access.set_outcome(audit::v1::ACCESS_OUTCOME_ALLOWED);
  access.mutable_occurred_at()->set_seconds(1700000000);
  const ChainedRecord record = BuildRecord({"clinical.access.v1", 0, 7, access.SerializeAsString()},
                                           SourceFormat::kAccess, 1, kGenesisHash);
  EXPECT_EQ(record.kind(), audit::v1::RECORD_KIND_ACCESS);
  EXPECT_EQ(record.action(), "/clinical.case.v1.CaseService/GetCase");
  EXPECT_EQ(record.outcome(), "ACCESS_OUTCOME_ALLOWED");
  EXPECT_EQ(record.purpose_of_use(), "TREAT");
  ASSERT_EQ(record.case_ids_size(), 1);
  EXPECT_EQ(record.case_ids(0), "case-5");

  const ChainedRecord junk = BuildRecord({"clinical.access.v1", 0, 8, "\xff\xff not proto"},
                                         SourceFormat::kAccess, 2, record.hash());
  EXPECT_EQ(junk.kind(), audit::v1::RECORD_KIND_UNDECODABLE);
  EXPECT_EQ(junk.previous_hash(), record.hash());
  EXPECT_EQ(junk.hash(), ComputeHash(junk));
}

TEST(ChainTest, AccessRecordsKeepHowTheReadWasAuthorizedUnderTheHash) {
  audit::v1::AccessRecord access;
  access.set_record_id("rec-2");
  access.set_method("/clinical.case.v1.CaseService/GetCase");
  access.set_outcome(audit::v1::ACCESS_OUTCOME_ALLOWED);
  const ChainedRecord before = BuildRecord({"clinical.access.v1", 0, 9, access.SerializeAsString()},
                                           SourceFormat::kAccess, 1, kGenesisHash);
  // Records made before the fields existed keep the first layout (and verify as chained).
  EXPECT_TRUE(CanonicalEncoding(before).find("ChainedRecord/1") != std::string::npos);

  access.set_policy_version("0123456789abcdef");
  access.set_relationship("emergency");
  access.set_emergency_grant_id("emergency-1");
  access.set_masked(true);
  const ChainedRecord record = BuildRecord({"clinical.access.v1", 0, 9, access.SerializeAsString()},
                                           SourceFormat::kAccess, 1, kGenesisHash);
  EXPECT_EQ(record.policy_version(), "0123456789abcdef");
  EXPECT_EQ(record.relationship(), "emergency");
  EXPECT_EQ(record.emergency_grant_id(), "emergency-1");
  EXPECT_TRUE(record.masked());
  EXPECT_TRUE(CanonicalEncoding(record).find("ChainedRecord/2") != std::string::npos);
  EXPECT_EQ(record.hash(), ComputeHash(record));
  std::vector<ChainedRecord> variants(4, record);
  variants[0].set_policy_version("fedcba9876543210");
  variants[1].set_relationship("assigned");
  variants[2].set_emergency_grant_id("emergency-2");
  variants[3].set_masked(false);
  for (const ChainedRecord& variant : variants) EXPECT_NE(ComputeHash(variant), record.hash());
}

TEST(ChainTest, ThePolicyTopicIsNeverChained) {
  const std::string policies = "clinical.access.policies.v1";
  EXPECT_TRUE(CheckSourceTopics({"clinical.case.events.v1", "clinical.case.organisation.v1"}, "clinical.access.v1",
                                policies)
                  .ok());
  EXPECT_EQ(CheckSourceTopics({"clinical.case.events.v1", policies}, "clinical.access.v1", policies).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckSourceTopics({"clinical.case.events.v1"}, policies, policies).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckSourceTopics({"clinical.access.v1"}, "clinical.access.v1", policies).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ChainTest, ChainIdsRoundTrip) {
  std::string topic;
  int32_t partition = -1;
  ASSERT_TRUE(ParseChainId("clinical.case.events.v1/11", &topic, &partition).ok());
  EXPECT_EQ(topic, "clinical.case.events.v1");
  EXPECT_EQ(partition, 11);
  EXPECT_FALSE(ParseChainId("no-partition", &topic, &partition).ok());
  EXPECT_FALSE(ParseChainId("t/-1", &topic, &partition).ok());
  EXPECT_FALSE(ParseChainId("/3", &topic, &partition).ok());
}

TEST(CheckpointTest, SignatureVerifiesOnlyWithTheSignersKeyAndUnchangedFields) {
  auto [private_pem, public_pem] = NewKeyPair();
  auto [other_private, other_public] = NewKeyPair();
  auto signer = CheckpointSigner::FromPem(private_pem);
  ASSERT_TRUE(signer.ok());
  auto verifier = CheckpointVerifier::FromPem(public_pem);
  auto other = CheckpointVerifier::FromPem(other_public);
  ASSERT_TRUE(verifier.ok() && other.ok());
  EXPECT_EQ((*signer)->key_id(), (*verifier)->key_id());
  auto from_signer = CheckpointVerifier::FromPem((*signer)->public_pem());
  ASSERT_TRUE(from_signer.ok());
  EXPECT_EQ((*from_signer)->key_id(), (*verifier)->key_id());

  const audit::v1::Checkpoint checkpoint =
      (*signer)->Sign("t/0", 5, std::string(64, 'a'), absl::FromUnixMillis(1700000000123));
  EXPECT_EQ(checkpoint.signature().size(), 64u);
  EXPECT_TRUE((*verifier)->Verify(checkpoint));
  EXPECT_FALSE((*other)->Verify(checkpoint));
  audit::v1::Checkpoint moved = checkpoint;
  moved.set_sequence(6);
  EXPECT_FALSE((*verifier)->Verify(moved));
  audit::v1::Checkpoint rehashed = checkpoint;
  rehashed.set_hash(std::string(64, 'b'));
  EXPECT_FALSE((*verifier)->Verify(rehashed));
  audit::v1::Checkpoint retimed = checkpoint;
  retimed.mutable_signed_at()->set_seconds(1);
  EXPECT_FALSE((*verifier)->Verify(retimed));
}

TEST(CheckpointTest, RejectsKeysThatAreNotEd25519) {
  EXPECT_EQ(CheckpointSigner::FromPem("not a key").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckpointVerifier::FromPem("").status().code(), absl::StatusCode::kInvalidArgument);
  auto [private_pem, public_pem] = NewKeyPair();
  // A private key is not accepted where a public key is expected, and vice versa.
  EXPECT_FALSE(CheckpointVerifier::FromPem(private_pem).ok());
  EXPECT_FALSE(CheckpointSigner::FromPem(public_pem).ok());
}

TEST_F(VerifyTest, UntouchedChainVerifiesCleanWithItsCheckpoints) {
  VerifyInput input = Input(chain_);
  input.checkpoints = {SignAt(4), SignAt(8)};
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_TRUE(result.ok()) << result.detail();
  EXPECT_EQ(result.records_checked(), 8);
  EXPECT_EQ(result.checkpoints_checked(), 2);
  EXPECT_EQ(result.last_signed_sequence(), 8);
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_UNSPECIFIED);
}

TEST_F(VerifyTest, ChangedRecordIsNamed) {
  VerifyInput input = Input(chain_);
  ChainedRecord changed = chain_.records[4];
  changed.set_actor_id("intruder");
  input.stored[4] = changed.SerializeAsString();
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_HASH_MISMATCH);
  EXPECT_EQ(result.failed_sequence(), 5);
  EXPECT_EQ(result.records_checked(), 4);
}

TEST_F(VerifyTest, ChangedRecordWithRecomputedHashesIsCaughtAgainstTheSource) {
  // The forger rewrites record 3 and re-hashes the rest of the chain consistently.
  VerifyInput input = Input(chain_);
  std::string previous = chain_.records[1].hash();
  for (size_t i = 2; i < chain_.records.size(); ++i) {
    ChainedRecord record = chain_.records[i];
    if (i == 2) record.set_action("clinical.case.v1.CaseClosed");
    record.set_previous_hash(previous);
    record.set_hash(ComputeHash(record));
    previous = record.hash();
    input.stored[i] = record.SerializeAsString();
  }
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_NOT_IN_SOURCE);
  EXPECT_EQ(result.failed_sequence(), 3);
}

TEST_F(VerifyTest, RemovedRecordIsNamedAsAGap) {
  VerifyInput input = Input(chain_);
  input.stored.erase(input.stored.begin() + 5);  // sequence 6
  input.stored_last_sequence = 7;
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_SEQUENCE_GAP);
  EXPECT_EQ(result.failed_sequence(), 6);
}

TEST_F(VerifyTest, DeletedSequenceIsNamedAsAGap) {
  VerifyInput input = Input(chain_);
  input.stored[2] = std::nullopt;
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_SEQUENCE_GAP);
  EXPECT_EQ(result.failed_sequence(), 3);
}

TEST_F(VerifyTest, ReorderedRecordsAreNamed) {
  VerifyInput input = Input(chain_);
  std::swap(input.stored[2], input.stored[3]);  // sequences 3 and 4
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_OUT_OF_ORDER);
  EXPECT_EQ(result.failed_sequence(), 3);
}

TEST_F(VerifyTest, ForgedAppendedRecordIsNotInTheSource) {
  VerifyInput input = Input(chain_);
  // Consistent with the chain (the forger can compute SHA-256), but no such source record.
  SourceRecord fake{"clinical.case.events.v1", 3, 100,
                    EventValue("case-1", 99, "clinical.case.v1.CaseClosed")};
  const ChainedRecord forged = BuildRecord(fake, SourceFormat::kEvents, 9, chain_.records[7].hash());
  input.stored.push_back(forged.SerializeAsString());
  input.stored_last_sequence = 9;
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_NOT_IN_SOURCE);
  EXPECT_EQ(result.failed_sequence(), 9);
  EXPECT_EQ(result.records_checked(), 8);
}

TEST_F(VerifyTest, ForgedRecordReusingAnOffsetIsNotInTheSource) {
  VerifyInput input = Input(chain_);
  SourceRecord reused = chain_.sources[7];
  const ChainedRecord forged = BuildRecord(reused, SourceFormat::kEvents, 9, chain_.records[7].hash());
  input.stored.push_back(forged.SerializeAsString());
  input.stored_last_sequence = 9;
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_NOT_IN_SOURCE);
  EXPECT_EQ(result.failed_sequence(), 9);
}

TEST_F(VerifyTest, GarbageIsMalformed) {
  VerifyInput input = Input(chain_);
  input.stored[1] = "\xff\xff\xff";
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_MALFORMED);
  EXPECT_EQ(result.failed_sequence(), 2);
}

TEST_F(VerifyTest, RecordFromAnotherChainIsOutOfOrder) {
  VerifyInput input = Input(chain_);
  ChainedRecord moved = chain_.records[3];
  moved.set_chain_id("clinical.case.events.v1/4");
  input.stored[3] = moved.SerializeAsString();
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_OUT_OF_ORDER);
  EXPECT_EQ(result.failed_sequence(), 4);
}

TEST_F(VerifyTest, BadSignatureAndMismatchedCheckpointAreNamed) {
  VerifyInput input = Input(chain_);
  audit::v1::Checkpoint bad = SignAt(4);
  bad.set_signature(std::string(64, '\0'));
  input.checkpoints = {bad};
  auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_BAD_SIGNATURE);
  EXPECT_EQ(result.failed_sequence(), 4);

  // A validly signed checkpoint for hash X at 4 while the chain has Y at 4.
  input.checkpoints = {signer_->Sign("clinical.case.events.v1/3", 4, chain_.records[5].hash(),
                                     absl::FromUnixSeconds(1700001000))};
  result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_CHECKPOINT_MISMATCH);
  EXPECT_EQ(result.failed_sequence(), 4);
}

TEST_F(VerifyTest, CutOffTailIsTruncatedWhenACheckpointCoversIt) {
  VerifyInput input = Input(chain_);
  input.checkpoints = {SignAt(8)};
  input.stored.resize(6);
  input.stored_last_sequence = 6;
  const auto result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_TRUNCATED);
  EXPECT_EQ(result.failed_sequence(), 7);
}

TEST_F(VerifyTest, RangeStartingMidChainUsesTheAnchor) {
  VerifyInput input = Input(chain_);
  input.from_sequence = 5;
  input.anchor_hash = chain_.records[3].hash();
  input.anchor_offset = chain_.records[3].source_offset();
  input.stored.assign(chain_.stored.begin() + 4, chain_.stored.end());
  auto result = VerifyRange(input, verifier_.get());
  EXPECT_TRUE(result.ok()) << result.detail();
  EXPECT_EQ(result.records_checked(), 4);
  input.anchor_hash = chain_.records[2].hash();
  result = VerifyRange(input, verifier_.get());
  EXPECT_EQ(result.failure(), audit::v1::VERIFY_FAILURE_PREVIOUS_HASH_MISMATCH);
  EXPECT_EQ(result.failed_sequence(), 5);
}

TEST(LogKeysTest, IndexMembersSortByTimeAndRoundTrip) {
  const std::string early = IndexMember(999, "t/1", 5);
  const std::string late = IndexMember(1000, "t/0", 1);
  EXPECT_LT(early, late);
  EXPECT_LT(IndexTimePrefix(1000), late);
  EXPECT_GT(IndexTimePrefix(1001), late);
  auto ref = ParseIndexMember(late);
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->occurred_ms, 1000);
  EXPECT_EQ(ref->chain, "t/0");
  EXPECT_EQ(ref->sequence, 1);
  EXPECT_FALSE(ParseIndexMember("garbage").has_value());
}

TEST(LogKeysTest, RecordsAreIndexedByTenantCaseActorActionAndAccess) {
  LogKeys keys("audit");
  ChainedRecord record;
  record.set_tenant_id("t1");
  record.set_kind(audit::v1::RECORD_KIND_ACCESS);
  record.add_case_ids("c1");
  record.set_actor_id("u1");
  record.set_action("/x.Y/Get");
  EXPECT_EQ(IndexKeysFor(keys, record),
            (std::vector<std::string>{"audit:ix:t1:access:c1", "audit:ix:t1:action:/x.Y/Get",
                                      "audit:ix:t1:actor:u1", "audit:ix:t1:all",
                                      "audit:ix:t1:case:c1"}));
  ChainedRecord appointment;
  appointment.set_tenant_id("t1");
  appointment.set_kind(audit::v1::RECORD_KIND_EVENT);
  EXPECT_EQ(IndexKeysFor(keys, appointment, {"c9"}),
            (std::vector<std::string>{"audit:ix:t1:all", "audit:ix:t1:case:c9"}));
  record.clear_tenant_id();
  EXPECT_TRUE(IndexKeysFor(keys, record).empty());
}

TEST(LogKeysTest, PatientKeyIsKeyedAndTenantScoped) {
  const std::string a = PatientKey("k1", "t1", "MRN-1");
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a, PatientKey("k1", "t1", "MRN-1"));
  EXPECT_NE(a, PatientKey("k2", "t1", "MRN-1"));
  EXPECT_NE(a, PatientKey("k1", "t2", "MRN-1"));
  EXPECT_EQ(a.find("MRN"), std::string::npos);
}

TEST(FhirTest, ActionCodesFollowTheEventKind) {
  ChainedRecord record;
  record.set_kind(audit::v1::RECORD_KIND_EVENT);
  record.set_action("clinical.case.v1.CaseOpened");
  EXPECT_EQ(FhirAction(record), "C");
  record.set_action("clinical.case.v1.NoteEnteredInError");
  EXPECT_EQ(FhirAction(record), "D");
  record.set_action("clinical.scheduling.v1.ReminderDue");
  EXPECT_EQ(FhirAction(record), "E");
  record.set_action("clinical.case.v1.CaseAssigned");
  EXPECT_EQ(FhirAction(record), "U");
  record.set_kind(audit::v1::RECORD_KIND_ACCESS);
  EXPECT_EQ(FhirAction(record), "R");
}

TEST(FhirTest, AuditEventCarriesAgentSourceEntityAndOutcome) {
  ChainedRecord record;
  record.set_chain_id("clinical.access.v1/0");
  record.set_sequence(3);
  record.set_kind(audit::v1::RECORD_KIND_ACCESS);
  record.set_action("/clinical.case.v1.CaseService/GetCase");
  record.set_actor_id("cm-1");
  record.set_actor_role("case_manager");
  record.set_tenant_id("tenant-a");
  record.add_case_ids("case-5");
  record.set_outcome("ACCESS_OUTCOME_DENIED");
  record.set_purpose_of_use("TREAT");
  record.set_source_address("ipv4:10.1.2.3:5555");
  record.mutable_occurred_at()->set_seconds(1700000000);
  record.mutable_occurred_at()->set_nanos(123456789);
  record.set_hash(std::string(64, 'c'));
  const nlohmann::json event = ToAuditEvent(record);
  EXPECT_EQ(event["resourceType"], "AuditEvent");
  EXPECT_EQ(event["id"], std::string(64, 'c'));
  EXPECT_EQ(event["action"], "R");
  EXPECT_EQ(event["outcome"], "4");
  EXPECT_EQ(event["recorded"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(event["purposeOfEvent"][0]["coding"][0]["code"], "TREAT");
  EXPECT_EQ(event["agent"][0]["who"]["identifier"]["value"], "cm-1");
  EXPECT_EQ(event["agent"][0]["requestor"], true);
  EXPECT_EQ(event["agent"][0]["network"]["address"], "10.1.2.3");
  EXPECT_EQ(event["agent"][0]["role"][0]["coding"][0]["code"], "case_manager");
  EXPECT_EQ(event["source"]["site"], "tenant-a");
  EXPECT_EQ(event["entity"][0]["what"]["reference"], "EpisodeOfCare/case-5");
  EXPECT_EQ(event["entity"].back()["detail"][0]["valueString"], std::string(64, 'c'));
  const nlohmann::json bundle = ToBundle({event}, "export-1", record.occurred_at());
  EXPECT_EQ(bundle["type"], "collection");
  EXPECT_EQ(bundle["entry"][0]["resource"]["id"], event["id"]);
}

}  // namespace
}  // namespace clinical::audit
