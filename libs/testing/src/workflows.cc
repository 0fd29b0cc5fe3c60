#include "clinical/testing/workflows.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::testing {

google::protobuf::Timestamp ProtoTime(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}
namespace {

std::string RandomHex(int bytes) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    const auto b = static_cast<uint8_t>(random());
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

}  // namespace

std::string NewTraceId() { return RandomHex(16); }

std::string Traceparent(const std::string& trace_id) { return absl::StrCat("00-", trace_id, "-", RandomHex(8), "-01"); }

case_::v1::OpenCaseRequest ExampleIntake(const std::string& command_id, const std::string& team_id) {
  case_::v1::OpenCaseRequest open;
  open.set_command_id(command_id);
  open.mutable_patient()->set_mrn("MRN-EXAMPLE");
  open.mutable_patient()->set_given_name("Ada");
  open.mutable_patient()->set_family_name("Example");
  open.mutable_patient()->set_birth_date("1950-01-01");
  open.mutable_patient()->set_gender(case_::v1::ADMINISTRATIVE_GENDER_FEMALE);
  open.set_program("elder_care");
  open.set_priority(2);
  open.set_acuity(2);
  open.mutable_referral()->set_source(case_::v1::REFERRAL_SOURCE_HOSPITAL);
  open.mutable_referral()->set_reason("follow-up");
  open.set_initial_status(case_::v1::CASE_STATUS_ACTIVE);
  open.set_team_id(team_id);
  return open;
}

scheduling::v1::CreateCalendarRequest AroundTheClockCalendar(const std::string& command_id,
                                                             const std::string& case_manager_id) {
  scheduling::v1::CreateCalendarRequest calendar;
  calendar.set_command_id(command_id);
  calendar.set_owner_kind(scheduling::v1::CALENDAR_OWNER_KIND_CASE_MANAGER);
  calendar.set_owner_id(case_manager_id);
  calendar.set_time_zone("America/New_York");
  for (int day = scheduling::v1::WEEKDAY_MONDAY; day <= scheduling::v1::WEEKDAY_SUNDAY; ++day) {
    auto* hours = calendar.add_working_hours();
    hours->set_weekday(static_cast<scheduling::v1::Weekday>(day));
    hours->set_start_minute(0);
    hours->set_end_minute(1440);
  }
  return calendar;
}

}  // namespace clinical::testing
