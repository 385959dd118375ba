#include "core/template.hpp"

#include <chrono>
#include <cstdio>
#include <utility>

#include "core/json.hpp"

namespace sluice {
namespace {

constexpr std::string_view kVariables =
    "{event}, {channel}, {route}, {project}, {timestamp}, {event_id}, {payload.FIELD}";

bool is_directive(char c) {
  return c == 'Y' || c == 'm' || c == 'd' || c == 'H' || c == 'M';
}

bool valid_field_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || c == '-';
}

// Checks a payload path (`a.b.$id`): non-empty segments of field characters.
bool valid_payload_path(std::string_view path, std::string& message) {
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const auto segment = path.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (segment.empty()) {
      message = "empty field name in {payload." + std::string(path) + "}";
      return false;
    }
    for (char c : segment) {
      if (!valid_field_char(c)) {
        message = "invalid character '" + std::string(1, c) + "' in {payload." + std::string(path) +
                  "} (field names use letters, digits, _, - and $)";
        return false;
      }
    }
    if (dot == std::string_view::npos)
      return true;
    start = dot + 1;
  }
}

void append_two(std::string& out, unsigned value) {
  out += static_cast<char>('0' + (value / 10) % 10);
  out += static_cast<char>('0' + value % 10);
}

void append_strftime(std::string& out, char directive,
                     std::chrono::sys_time<std::chrono::milliseconds> time) {
  using namespace std::chrono;
  const auto day = floor<days>(time);
  const year_month_day ymd{day};
  const hh_mm_ss hms{floor<minutes>(time - day)};
  switch (directive) {
    case 'Y': {
      char buffer[16];
      std::snprintf(buffer, sizeof buffer, "%04d", static_cast<int>(ymd.year()));
      out += buffer;
      break;
    }
    case 'm':
      append_two(out, static_cast<unsigned>(ymd.month()));
      break;
    case 'd':
      append_two(out, static_cast<unsigned>(ymd.day()));
      break;
    case 'H':
      append_two(out, static_cast<unsigned>(hms.hours().count()));
      break;
    case 'M':
      append_two(out, static_cast<unsigned>(hms.minutes().count()));
      break;
    default:
      out += directive;
      break;  // '%': from "%%"
  }
}

// Appends text that came from the event. For a file path, '/' and NUL become '_' so a value
// stays inside its path segment; the byte range is remembered for the ".." check below.
void append_derived(std::string& out, std::string_view text, bool path,
                    std::vector<std::pair<std::size_t, std::size_t>>& derived) {
  const auto start = out.size();
  for (char c : text)
    out += (path && (c == '/' || c == '\0')) ? '_' : c;
  if (path && out.size() > start)
    derived.emplace_back(start, out.size());
}

// A segment that is "." or ".." only because of event-derived dots would let a payload value
// escape the directory the operator wrote: those dots become '_'. Dots the operator wrote
// themselves are left alone.
void neutralise_dot_segments(std::string& out,
                             const std::vector<std::pair<std::size_t, std::size_t>>& derived) {
  auto is_derived = [&](std::size_t i) {
    for (const auto& [a, b] : derived) {
      if (i >= a && i < b)
        return true;
    }
    return false;
  };
  std::size_t start = 0;
  while (start <= out.size()) {
    auto end = out.find('/', start);
    if (end == std::string::npos)
      end = out.size();
    const auto segment = std::string_view(out).substr(start, end - start);
    if (segment == "." || segment == "..") {
      for (auto i = start; i < end; ++i) {
        if (is_derived(i))
          out[i] = '_';
      }
    }
    start = end + 1;
  }
}

}  // namespace

bool Template::parse(std::string_view source, bool allow_strftime, Template& out, Error& error) {
  Template t;
  t.source_ = std::string(source);
  t.path_ = allow_strftime;
  std::string literal;
  auto flush = [&] {
    if (!literal.empty())
      t.parts_.push_back({Part::Kind::literal, std::move(literal)});
    literal.clear();
  };
  auto fail = [&](std::size_t offset, std::string message) {
    error.offset = offset;
    error.message = std::move(message);
    return false;
  };

  for (std::size_t i = 0; i < source.size(); ++i) {
    const char c = source[i];
    if (c == '{') {
      if (i + 1 < source.size() && source[i + 1] == '{') {
        literal += '{';
        ++i;
        continue;
      }
      const auto close = source.find('}', i + 1);
      const auto next_open = source.find('{', i + 1);
      if (close == std::string_view::npos || next_open < close) {
        return fail(i, "unclosed \"{\" (write {{ for a literal brace)");
      }
      const auto name = source.substr(i + 1, close - i - 1);
      Part part;
      if (name == "event") {
        part.kind = Part::Kind::event;
      } else if (name == "channel") {
        part.kind = Part::Kind::channel;
      } else if (name == "route") {
        part.kind = Part::Kind::route;
      } else if (name == "project") {
        part.kind = Part::Kind::project;
      } else if (name == "timestamp") {
        part.kind = Part::Kind::timestamp;
      } else if (name == "event_id") {
        part.kind = Part::Kind::event_id;
      } else if (name == "payload") {
        return fail(i, "{payload} needs a field: {payload.FIELD}, e.g. {payload.$id}");
      } else if (name.starts_with("payload.")) {
        // {payload.A|payload.B}: the first field present, for payloads whose shape changed
        // between Appwrite versions (an execution's functionId became resourceId). `text`
        // keeps the paths separated by '|', which no field name contains.
        part.kind = Part::Kind::payload;
        for (auto rest = name; !rest.empty();) {
          const auto bar = rest.find('|');
          const auto alternative = rest.substr(0, bar);
          rest = bar == std::string_view::npos ? std::string_view{} : rest.substr(bar + 1);
          if (!alternative.starts_with("payload.") ||
              (bar != std::string_view::npos && rest.empty()))
            return fail(i, "{" + std::string(name) +
                               "}: every alternative after '|' must be payload.FIELD");
          std::string message;
          if (!valid_payload_path(alternative.substr(8), message))
            return fail(i, std::move(message));
          if (!part.text.empty())
            part.text += '|';
          part.text += alternative.substr(8);
        }
      } else {
        return fail(i, "unknown variable {" + std::string(name) +
                           "} (expected one of: " + std::string(kVariables) + ")");
      }
      flush();
      t.parts_.push_back(std::move(part));
      i = close;
      continue;
    }
    if (c == '}') {
      if (i + 1 < source.size() && source[i + 1] == '}') {
        literal += '}';
        ++i;
        continue;
      }
      return fail(i, "unmatched \"}\" (write }} for a literal brace)");
    }
    if (c == '%') {
      const char d = i + 1 < source.size() ? source[i + 1] : '\0';
      if (!allow_strftime) {
        // Outside file paths '%' is an ordinary character, but a directive there is surely a
        // mistake: it would be sent literally.
        if (is_directive(d)) {
          return fail(
              i, "%" + std::string(1, d) + " is a strftime directive, allowed only in file paths");
        }
        literal += c;
        continue;
      }
      if (!is_directive(d) && d != '%') {
        return fail(i, d == '\0' ? "lone \"%\" at the end (write %% for a literal %)"
                                 : "unsupported strftime directive %" + std::string(1, d) +
                                       " (expected %Y, %m, %d, %H, %M or %%)");
      }
      if (d == '%') {
        literal += '%';
      } else {
        flush();
        t.parts_.push_back({Part::Kind::strftime, std::string(1, d)});
      }
      ++i;
      continue;
    }
    literal += c;
  }
  flush();
  out = std::move(t);
  return true;
}

std::string Template::render(const Event& event, const TemplateContext& context) const {
  std::string out;
  std::vector<std::pair<std::size_t, std::size_t>> derived;
  for (const auto& part : parts_) {
    switch (part.kind) {
      case Part::Kind::literal:
        out += part.text;
        break;
      case Part::Kind::route:
        out += context.route;
        break;
      case Part::Kind::project:
        out += context.project;
        break;
      case Part::Kind::event:
        append_derived(out, event.first_event(), path_, derived);
        break;
      case Part::Kind::channel:
        append_derived(out, context.channel, path_, derived);
        break;
      case Part::Kind::timestamp:
        append_derived(out, event.timestamp_text, path_, derived);
        break;
      case Part::Kind::event_id:
        append_derived(out, event.id, path_, derived);
        break;
      case Part::Kind::strftime:
        append_strftime(out, part.text[0], event.timestamp);
        break;
      case Part::Kind::payload: {
        if (event.payload.empty())
          break;
        for (std::string_view paths = part.text; !paths.empty();) {
          const auto bar = paths.find('|');
          const auto value = json_lookup(
              {event.payload.data(), event.payload.size(), event.readable_after(event.payload)},
              paths.substr(0, bar));
          if (value.present() && value.type != JsonValue::Type::null) {
            append_derived(out, value.text, path_, derived);
            break;
          }
          paths = bar == std::string_view::npos ? std::string_view{} : paths.substr(bar + 1);
        }
        break;
      }
    }
  }
  if (path_ && !derived.empty())
    neutralise_dot_segments(out, derived);
  return out;
}

bool Template::constant() const {
  for (const auto& part : parts_) {
    if (part.kind != Part::Kind::literal)
      return false;
  }
  return true;
}

}  // namespace sluice
