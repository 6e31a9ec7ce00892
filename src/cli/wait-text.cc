#include "cli/wait-text.h"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "cli/columns.h"
#include "cli/escape.h"
#include "cli/status-command.h"

namespace fasten::cli {

namespace {

/// One way to say the line: the text with the path and the command fitted to
/// the columns given, and the least each may be shortened to.
struct Form {
  std::function<std::string(const std::string& path, const std::string& command)> text;
  std::size_t least_path;
  std::size_t least_command;
  bool shows_path = true;
};

/// "; 2 waiting", or nothing.
std::string waiting_part(const WaitFacts& facts) {
  return facts.status && facts.status->waiting > 0 ? "; " + std::to_string(facts.status->waiting) + " waiting"
                                                   : std::string();
}

/// " and 2 more", for the holds after the first.
std::string more_part(const WaitFacts& facts) {
  return facts.holds.size() > 1 ? " and " + std::to_string(facts.holds.size() - 1) + " more" : std::string();
}

std::string pid_text(const HoldName& hold) {
  return hold.pid ? "pid " + std::to_string(*hold.pid) : std::string("a process that cannot be seen");
}

std::vector<Form> forms(const WaitFacts& facts) {
  const std::string timeout = facts.timeout ? fmt::format(" of {} s", *facts.timeout) : "";
  const std::string slash = facts.timeout ? fmt::format("/{}", *facts.timeout) : "";
  const std::string waited = std::to_string(facts.waited.count());
  const std::string mode = facts.mode;
  const std::string waiting = waiting_part(facts);
  const std::string more = more_part(facts);
  const bool known = !facts.holds.empty();
  const HoldName first = known ? facts.holds.front() : HoldName{};
  const std::string state = facts.status ? "; it is " + describe_state(*facts.status) : "";
  const std::string via = first.fasten_pid ? ", run by fasten pid " + std::to_string(*first.fasten_pid) : "";
  // By value: the forms returned below outlive this frame, and carry `held`.
  const auto held = [=](const std::string& command, const std::string& extra) {
    return known ? ", held by " + pid_text(first) + (first.command.empty() ? "" : " (" + command + ")") +
                       extra + more
                 : std::string();
  };
  const std::string head = "fasten: waiting " + waited + " s" + timeout + " for ";
  return {
      {[=](auto& path, auto& command) {
         return head + path + " (" + mode + ")" + state + held(command, via) + waiting;
       },
       24, 24},
      {[=](auto& path, auto& command) {
         return head + path + " (" + mode + ")" + state + held(command, "") + waiting;
       },
       12, 12},
      {[=](auto& path, auto& command) {
         return "fasten: " + waited + slash + " s, " + path + " (" + mode + ")" + held(command, "") + waiting;
       },
       8, 8},
      {[=](auto&, auto& command) {
         return waited + "s " + mode +
                (known ? ", by " + (first.command.empty() ? pid_text(first) : command) : std::string()) +
                more + waiting;
       },
       0, 5, false},
  };
}

/// `form` with the path and the command in `columns`, or std::nullopt
/// when they cannot be shortened that far.
std::optional<std::string> fitted(const Form& form, const std::string& path, const std::string& command,
                                  std::size_t columns) {
  const std::size_t fixed = display_columns(form.text("", ""));
  const std::size_t path_wants = form.shows_path ? display_columns(path) : 0;
  const std::size_t command_wants = display_columns(command);
  const std::size_t path_least = std::min(path_wants, form.least_path);
  const std::size_t command_least = std::min(command_wants, form.least_command);
  if (fixed + path_least + command_least > columns) {
    return std::nullopt;
  }
  const std::size_t room = columns - fixed;
  // The command gets up to two thirds of the room, and more of what the path leaves.
  const std::size_t command_share = std::min(command_wants, std::max(command_least, room * 2 / 3));
  const std::size_t path_columns = std::min(path_wants, std::max(path_least, room - command_share));
  const std::size_t command_columns = std::min(command_wants, room - path_columns);
  // A command's beginning names the program: it keeps two thirds.
  return form.text(shortened_in_middle(path, path_columns), shortened_in_middle(command, command_columns, 2));
}

} // namespace

std::string wait_text(const WaitFacts& facts, std::size_t columns) {
  const std::string path = escape_text(facts.lock);
  const std::string command = facts.holds.empty() ? std::string() : escape_text(facts.holds.front().command);
  const auto all = forms(facts);
  for (const auto& form : all) {
    if (auto text = fitted(form, path, command, columns)) {
      return *text;
    }
  }
  return cut_to(all.back().text("", shortened_in_middle(command, 5, 2)), columns);
}

} // namespace fasten::cli
