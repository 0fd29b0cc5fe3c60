#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/workflows.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace clinical::testing {

// The platform's five services for an end-to-end test: case, scheduling, views,
// notification and audit as real processes (ServiceProcess: mutual TLS, their own Kafka and
// Redis principals), wired to each other through topics that no other test uses, so tests
// running at the same time on one broker never see each other's events or records.
//
// Start it once per test suite (SetUpTestSuite) — starting five services takes seconds.

// The suite's topics and key spaces (all unique to one suite).
struct SuiteTopics {
  std::string case_events;      // clinical.case.v1 (the case service's events)
  std::string organisation;     // clinical.case.organisation.v1 (teams, privacy officers)
  std::string scheduling;       // clinical.scheduling.v1
  std::string notification;     // clinical.notification.v1
  std::string access;           // clinical.access.v1 (access records of every service)
  std::string access_policies;  // clinical.access.policies.v1 (policy snapshots)
  std::string audit_checkpoints;
  std::string audit_key_root;   // Redis key root of the audit service
  std::string view_root;        // Redis key root of the views service
};

// Who makes a call, and the W3C trace id by which its access record is found.
struct CallAs {
  Person person;
  std::string trace_id = NewTraceId();
  std::string purpose = "TREAT";
};

// A client context for `as`: its bearer token, purpose of use and traceparent.
std::unique_ptr<grpc::ClientContext> ContextFor(const CallAs& as, absl::Duration deadline = absl::Seconds(30));

class ServiceSuite {
 public:
  // The gRPC services the suite serves (every one a test walks), and their full names.
  static const std::vector<const google::protobuf::ServiceDescriptor*>& Services();
  static const std::vector<std::string>& GrpcServices();

  // Starts the five services, `label` naming the topics ("clinical.case.<label>-<hex>").
  // `extra_args` adds flags to one service by folder name ("case" -> {"--flag=..."}).
  static absl::StatusOr<std::unique_ptr<ServiceSuite>> Start(
      const std::string& label, const std::map<std::string, std::vector<std::string>>& extra_args = {});
  // Stops every service (SIGTERM, in reverse order of start).
  ~ServiceSuite();

  const SuiteTopics& topics() const { return topics_; }

  // The process by folder name ("case", ...) or by gRPC service full name.
  ServiceProcess& Process(const std::string& service);
  // A new mutual-TLS channel to the process serving `service` (a folder or gRPC service name).
  std::shared_ptr<grpc::Channel> Channel(const std::string& service);

  // Calls any method of the suite by its descriptor, as `as`. Unary: `response` is the
  // answer. Server streaming: `response` is the first message, after which the stream is
  // cancelled; a stream that ends before a first message returns its final status, and one
  // still open without a message at `deadline` returns DEADLINE_EXCEEDED.
  grpc::Status Call(const google::protobuf::MethodDescriptor& method, const google::protobuf::Message& request,
                    google::protobuf::Message* response, const CallAs& as,
                    absl::Duration deadline = absl::Seconds(30));

  // Every access record on the suite's access topic that was acknowledged before the call.
  std::vector<audit::v1::AccessRecord> AccessRecords() const;
  // The records of one call (by its trace id).
  std::vector<audit::v1::AccessRecord> AccessRecordsOf(const std::string& trace_id) const;

 private:
  ServiceSuite() = default;
  SuiteTopics topics_;
  std::vector<std::pair<std::string, std::unique_ptr<ServiceProcess>>> processes_;
};

}  // namespace clinical::testing
