#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/event.hpp"

namespace sluice {

// What a template may refer to besides the event itself.
struct TemplateContext {
  std::string_view route;    // {route}
  std::string_view channel;  // {channel}: the first channel of the event the route matched
  std::string_view project;  // {project}
};

// A string with `{variable}` placeholders: {event} {channel} {route} {project} {timestamp}
// {event_id} {payload.FIELD}, and in file paths also strftime `%Y %m %d %H %M` (UTC, event
// time). Parsed and validated once by the config loader, rendered per event by the sinks.
// Immutable after parse; safe to share between threads.
class Template {
 public:
  struct Error {
    std::size_t offset = 0;  // byte offset of the problem in the source string
    std::string message;
  };

  Template() = default;

  // Parses `source`. Unknown variables, unbalanced braces and (unless `allow_strftime`)
  // `%` directives are errors. On error returns false and fills `error`.
  static bool parse(std::string_view source, bool allow_strftime, Template& out, Error& error);

  // Renders for one event. A payload field that is missing or null renders as an empty string.
  std::string render(const Event& event, const TemplateContext& context) const;

  const std::string& source() const { return source_; }
  // Templates are equal when written the same: everything else is derived from the source.
  bool operator==(const Template& other) const { return source_ == other.source_; }
  bool constant() const;  // no placeholders at all

 private:
  struct Part {
    enum class Kind {
      literal,
      event,
      channel,
      route,
      project,
      timestamp,
      event_id,
      payload,
      strftime
    };
    Kind kind = Kind::literal;
    std::string text;  // literal text, payload path or strftime directive
  };
  std::string source_;
  std::vector<Part> parts_;
  // Parsed with allow_strftime, i.e. a file path: render() then sanitises event-derived text
  // so that a payload value cannot add directories or climb out with "..".
  bool path_ = false;
};

}  // namespace sluice
