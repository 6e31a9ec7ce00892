#pragma once

#include <optional>
#include <utility>
#include <variant>

#include "lock/error.h"

namespace fasten {

/// A value or the error that stopped it. Failures the caller must handle come
/// back as a Result rather than as exceptions: a conflict is an ordinary value
/// of T, an Error is something that went wrong.
template <typename T, typename E = Error> class [[nodiscard]] Result {
public:
  Result(T value) : m_value(std::in_place_index<0>, std::move(value)) {}
  Result(E error) : m_value(std::in_place_index<1>, std::move(error)) {}

  bool ok() const noexcept { return m_value.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(m_value); }
  const T& value() const& { return std::get<0>(m_value); }
  T&& value() && { return std::get<0>(std::move(m_value)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const { return std::get<1>(m_value); }

private:
  std::variant<T, E> m_value;
};

template <typename E> class [[nodiscard]] Result<void, E> {
public:
  Result() = default;
  Result(E error) : m_error(std::move(error)) {}

  bool ok() const noexcept { return !m_error.has_value(); }
  explicit operator bool() const noexcept { return ok(); }

  const E& error() const { return *m_error; }

private:
  std::optional<E> m_error;
};

namespace detail {

/// What FASTEN_TRY yields: the value, moved out, or nothing for Result<void>.
template <typename T, typename E> T take_value(Result<T, E>&& result) {
  return std::move(result).value();
}
template <typename E> void take_value(Result<void, E>&&) {
}

} // namespace detail

} // namespace fasten

/// FASTEN_TRY(expr): the value of `expr`, a Result, or else a return of its
/// error from the calling function, which must return a Result with the same
/// kind of error. It keeps the `if (!x) { return x.error(); }` lines out of
/// the logic:
///
///   auto file = FASTEN_TRY(platform::open_lock_file(path, options));
///   FASTEN_TRY(platform::check_descriptor(descriptor, name));
///
/// It is a GCC statement expression (`({ ... })`, which Clang has too, and
/// MinGW's GCC): not standard C++, and not in MSVC, but fasten is built only
/// with GCC. __extension__ keeps -Wpedantic quiet about it. Use it as the
/// whole right-hand side of an initialization or assignment, or as a whole
/// statement, as above, not inside a larger expression. Variadic so that braced arguments with commas pass
/// through.
#if defined(__GNUC__)
#define FASTEN_TRY(...)                                                                                      \
  __extension__({                                                                                            \
    auto fasten_try_result = (__VA_ARGS__);                                                                  \
    if (!fasten_try_result) {                                                                                \
      return fasten_try_result.error();                                                                      \
    }                                                                                                        \
    ::fasten::detail::take_value(std::move(fasten_try_result));                                              \
  })
#else
// Standard C++ has no expression that can return from the function around
// it (C++23's std::expected has none either), so there is no portable
// FASTEN_TRY: say so here rather than at every use.
#error "FASTEN_TRY needs GCC's statement expressions (GCC, Clang, MinGW)"
#endif
