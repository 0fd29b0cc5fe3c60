#include "clinical/grpcx/status.h"

#include "clinical/grpcx/caller.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace clinical::grpcx {
namespace {

TEST(StatusMappingTest, CodesCarryOverUnchanged) {
  EXPECT_EQ(ToGrpcStatus(absl::AbortedError("x")).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("x")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("x")).error_message(), "x");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(ToGrpcStatus(absl::NotFoundError("x")).error_details().empty());
}

TEST(StatusMappingTest, FieldViolationsBecomeBadRequestDetails) {
  Violations violations;
  violations.Add("patient.mrn", "is required");
  violations.Add("acuity", "must be between 1 and 5");
  const absl::Status status = violations.ToStatus("invalid OpenCase");
  ASSERT_EQ(FieldViolationsOf(status).size(), 2u);

  const grpc::Status mapped = ToGrpcStatus(status);
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(mapped.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(details.details(0).UnpackTo(&bad_request));
  ASSERT_EQ(bad_request.field_violations_size(), 2);
  EXPECT_EQ(bad_request.field_violations(1).field(), "acuity");
  EXPECT_EQ(bad_request.field_violations(1).description(), "must be between 1 and 5");
}

TEST(StatusMappingTest, NoViolationsIsOk) {
  EXPECT_TRUE(Violations().ToStatus().ok());
}

TEST(CallerTest, ParsesRoleNames) {
  EXPECT_EQ(ParseRole("case_manager"), common::v1::ROLE_CASE_MANAGER);
  EXPECT_EQ(ParseRole("SUPERVISOR"), common::v1::ROLE_SUPERVISOR);
  EXPECT_EQ(ParseRole("wizard"), common::v1::ROLE_UNSPECIFIED);
}

}  // namespace
}  // namespace clinical::grpcx
