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

} // namespace fasten
