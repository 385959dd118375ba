#pragma once

#include <string>
#include <string_view>

namespace sluice {

// The name of a route as a queued record carries it: a handle to the one copy of that name in a
// process-wide table that only grows. A handle is pointer-sized, cheap to copy and never dangles,
// so records queued before a reload (whose route may be gone from the new config) or recovered from
// a disk buffer keep resolving for the life of the process. A default handle is the empty name.
//
// Interning takes a lock and hashes the name: it is done when a Router is built and when a
// record is recovered from a disk buffer, never per event. Resolving is a plain read, safe from
// any thread. The table grows by one entry per distinct route name the process ever saw.
class RouteName {
 public:
  RouteName() = default;

  // The handle for `name`, added to the table the first time the name is seen. Thread-safe.
  static RouteName intern(std::string_view name);

  std::string_view view() const { return name_ ? std::string_view{*name_} : std::string_view{}; }

  friend bool operator==(RouteName a, RouteName b) { return a.view() == b.view(); }
  friend bool operator==(RouteName a, std::string_view b) { return a.view() == b; }

 private:
  explicit RouteName(const std::string* name) : name_(name) {}
  const std::string* name_ = nullptr;
};

}  // namespace sluice
