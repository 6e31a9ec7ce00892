// The unit tests' main, and a listener that tells TempDir (support.h) whether
// the test case under way has failed, so that it keeps that test's files.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>

#include "support.h"

namespace fasten::test {
namespace {

std::atomic<bool> g_failed{false};

class FailureListener final : public doctest::IReporter {
public:
  explicit FailureListener(const doctest::ContextOptions&) {}

  void test_case_start(const doctest::TestCaseData&) override { g_failed = false; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void log_assert(const doctest::AssertData& data) override {
    if (data.m_failed) {
      g_failed = true;
    }
  }
  void test_case_exception(const doctest::TestCaseException&) override { g_failed = true; }

  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("failed-test-files", 1, FailureListener);

} // namespace

bool current_test_failed() noexcept {
  return g_failed;
}

} // namespace fasten::test
