#pragma once

// Random VALID case event sequences: random commands run through the case service's own
// Decide/Evolve (invalid ones are refused by Decide and simply not recorded), so every
// sequence is one the case service could have written: lifecycle, notes, escalations,
// care plans, goals, tasks, service referrals and deliveries (closure cost and goals).
// Plus 0-3 appointments per case on the scheduling topic (booked series of 1-3 weekly
// occurrences, then valid FHIR moves: reschedule, cancel, arrived, fulfilled, no-show,
// entered in error), interleaved with the case events in any order.

#include <cstdint>
#include <string>
#include <vector>

#include "clinical/common/v1/envelope.pb.h"

namespace clinical::views::testing {

struct GeneratorOptions {
  uint64_t seed = 1;
  int cases = 1000;
  int managers = 20;
  std::vector<std::string> tenants = {"tenant-a", "tenant-b"};
  int commands_per_case = 14;
  int64_t start_unix = 1'767'225'600;  // 2026-01-01
  int spread_days = 300;               // cases open over this many days
};

// Envelopes in a log order: each case's events in version order, cases interleaved.
std::vector<common::v1::EventEnvelope> GenerateEvents(const GeneratorOptions& options);

}  // namespace clinical::views::testing
