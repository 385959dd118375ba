#include "daemon/upstream/decoder.hpp"

#include <simdjson.h>

#include <charconv>
#include <functional>
#include <string>
#include <utility>

namespace sluice::upstream {
namespace {

namespace od = simdjson::ondemand;
using std::chrono::milliseconds;

static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING, "padding must satisfy simdjson");

// Nesting deeper than this is rejected. It stays well below the parser's own max_depth (1024),
// which On-Demand only guards with a debug assertion, and bounds the validating recursion.
constexpr std::size_t kMaxDepth = 512;

// Why a part of the frame was rejected: malformed JSON, or well-formed but of the wrong shape.
enum class Status { ok, json, fields };

constexpr std::string_view kJson = "json";
constexpr std::string_view kFields = "fields";

std::string_view reason(Status s) {
  return s == Status::json ? kJson : kFields;
}

// `escapes`: the frame may contain a backslash (false lets strings skip their own scan).
Status validate(od::value v, std::size_t depth, bool escapes = true);

// raw_json() and raw_json_token() include the whitespace that follows the value.
std::string_view trim_trailing_space(std::string_view raw) {
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t')) {
    raw.remove_suffix(1);
  }
  return raw;
}

// When `v` is a string without a backslash, sets `text` to its content inside the frame and
// returns true: iterate() has already rejected invalid UTF-8 and unescaped control characters
// in the whole document, so such a token is valid as is and equal to its unescaped form. This
// skips simdjson's unescaping copy and Event::strings' copy of the 80 strings of a TablesDB
// event. `escapes` false (no backslash anywhere in the frame, checked once) skips the scan.
bool plain_string(od::value& v, std::string_view& text, bool escapes) {
  const std::string_view raw = trim_trailing_space(v.raw_json_token());
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"')
    return false;
  const std::string_view inner = raw.substr(1, raw.size() - 2);
  if (escapes && inner.find('\\') != std::string_view::npos)
    return false;
  text = inner;
  return true;
}

// Takes the next field of an object being iterated; its key must be read before its value.
bool open_field(simdjson::simdjson_result<od::field> result, od::field& f, std::string_view& key) {
  return std::move(result).get(f) == simdjson::SUCCESS &&
         f.unescaped_key().get(key) == simdjson::SUCCESS;
}

Status validate_object(od::object o, std::size_t depth, bool escapes = true) {
  if (depth > kMaxDepth)
    return Status::json;
  for (auto result : o) {
    od::field f;
    std::string_view key;
    if (!open_field(std::move(result), f, key)) {
      return Status::json;
    }
    if (validate(f.value(), depth + 1, escapes) != Status::ok)
      return Status::json;
  }
  return Status::ok;
}

// Reads every byte of `v`, so that syntax errors inside values On-Demand would merely skip
// (payloads, unknown keys) are caught before the raw bytes are forwarded.
Status validate(od::value v, std::size_t depth, bool escapes) {
  if (depth > kMaxDepth)
    return Status::json;
  if (std::string_view plain; plain_string(v, plain, escapes))
    return Status::ok;
  od::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS)
    return Status::json;
  switch (type) {
    case od::json_type::object: {
      od::object o;
      if (v.get_object().get(o) != simdjson::SUCCESS)
        return Status::json;
      return validate_object(o, depth, escapes);
    }
    case od::json_type::array: {
      od::array a;
      if (v.get_array().get(a) != simdjson::SUCCESS)
        return Status::json;
      for (auto result : a) {
        od::value element;
        if (result.get(element) != simdjson::SUCCESS)
          return Status::json;
        if (validate(element, depth + 1, escapes) != Status::ok)
          return Status::json;
      }
      return Status::ok;
    }
    case od::json_type::string: {
      std::string_view s;
      return v.get_string().get(s) == simdjson::SUCCESS ? Status::ok : Status::json;
    }
    case od::json_type::number: {
      // get_double, unlike get_number, accepts integers beyond 64 bits (PHP makes them floats).
      double d = 0;
      return v.get_double().get(d) == simdjson::SUCCESS ? Status::ok : Status::json;
    }
    case od::json_type::boolean: {
      bool b = false;
      return v.get_bool().get(b) == simdjson::SUCCESS ? Status::ok : Status::json;
    }
    case od::json_type::null: {
      bool is_null = false;
      return v.is_null().get(is_null) == simdjson::SUCCESS && is_null ? Status::ok : Status::json;
    }
  }
  return Status::json;
}

Status type_of(od::value& v, od::json_type& type) {
  return v.type().get(type) == simdjson::SUCCESS ? Status::ok : Status::json;
}

// Opens `v` as an object or an array: `fields` when it is another type, `json` when the bytes
// are broken.
Status open_object(od::value& v, od::object& o) {
  od::json_type type;
  if (type_of(v, type) != Status::ok)
    return Status::json;
  if (type != od::json_type::object)
    return Status::fields;
  return v.get_object().get(o) == simdjson::SUCCESS ? Status::ok : Status::json;
}

Status open_array(od::value& v, od::array& a) {
  od::json_type type;
  if (type_of(v, type) != Status::ok)
    return Status::json;
  if (type != od::json_type::array)
    return Status::fields;
  return v.get_array().get(a) == simdjson::SUCCESS ? Status::ok : Status::json;
}

// A number known to be one (type() said so): its written form, and its value when it is an
// integer that fits in 64 bits.
Status read_number(od::value v, std::string_view& raw, std::optional<std::int64_t>& integer) {
  raw = trim_trailing_space(v.raw_json_token());
  double d = 0;
  if (v.get_double().get(d) != simdjson::SUCCESS)
    return Status::json;
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), n);
  if (ec == std::errc{} && end == raw.data() + raw.size())
    integer = n;
  return Status::ok;
}

// An array of strings; the views point into the frame (strings without escapes) or into the
// parser's string buffer (valid until the next document).
Status read_string_array(od::value v, std::vector<std::string_view>& out, bool escapes) {
  out.clear();
  od::array a;
  if (const Status s = open_array(v, a); s != Status::ok)
    return s;
  for (auto result : a) {
    od::value element;
    if (result.get(element) != simdjson::SUCCESS)
      return Status::json;
    std::string_view s;
    if (plain_string(element, s, escapes)) {
      out.push_back(s);
      continue;
    }
    od::json_type type;
    if (type_of(element, type) != Status::ok)
      return Status::json;
    if (type != od::json_type::string)
      return Status::fields;
    if (element.get_string().get(s) != simdjson::SUCCESS)
      return Status::json;
    out.push_back(s);
  }
  return Status::ok;
}

Status read_string(od::value v, std::string& out) {
  od::json_type type;
  if (type_of(v, type) != Status::ok)
    return Status::json;
  if (type != od::json_type::string)
    return Status::fields;
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS)
    return Status::json;
  out.assign(s);
  return Status::ok;
}

// The top-level `$id` and `$updatedAt` of a payload, which identify the change (make_change_id).
struct ChangeFields {
  std::string_view resource_id;
  std::string_view updated_at;
};

// Reads the payload object: `raw` covers `{`…`}` in the frame. Its top-level string values
// `$id` and `$updatedAt` are taken during the same validating pass (views into the frame, or
// into the parser's string buffer when they had escapes), so the id costs no second parse.
Status read_payload(od::value v, std::string_view& raw, ChangeFields& change, bool escapes) {
  od::object o;
  if (const Status s = open_object(v, o); s != Status::ok)
    return s;
  if (o.raw_json().get(raw) != simdjson::SUCCESS)
    return Status::json;
  raw = trim_trailing_space(raw);
  bool unused = false;
  if (o.reset().get(unused) != simdjson::SUCCESS)
    return Status::json;
  for (auto result : o) {
    od::field f;
    std::string_view key;
    if (!open_field(std::move(result), f, key)) {
      return Status::json;
    }
    od::value value = f.value();
    std::string_view* wanted = key == "$id"          ? &change.resource_id
                               : key == "$updatedAt" ? &change.updated_at
                                                     : nullptr;
    if (wanted != nullptr && plain_string(value, *wanted, escapes))
      continue;
    od::json_type type;
    if (wanted != nullptr && type_of(value, type) == Status::ok && type == od::json_type::string) {
      if (value.get_string().get(*wanted) != simdjson::SUCCESS)
        return Status::json;
      continue;
    }
    if (validate(value, 4, escapes) != Status::ok)
      return Status::json;
  }
  return Status::ok;
}

enum class Type { unknown, event, connected, response, pong, error };

Type classify(std::string_view type) {
  if (type == "event")
    return Type::event;
  if (type == "connected")
    return Type::connected;
  if (type == "response")
    return Type::response;
  if (type == "pong")
    return Type::pong;
  if (type == "error")
    return Type::error;
  return Type::unknown;
}

}  // namespace

struct FrameDecoder::Impl {
  od::parser parser;
  // Scratch reused across frames so a steady stream of events allocates only the Event.
  std::vector<std::string_view> events;
  std::vector<std::string_view> channels;
  std::vector<std::string_view> subscriptions;
  bool escapes = true;  // the current frame has a backslash somewhere

  struct EventFields {
    std::string_view data;
    std::string_view payload;
    std::string_view timestamp_text;  // into the parser's string buffer or the frame
    ChangeFields change;              // likewise
    std::optional<std::chrono::sys_time<milliseconds>> timestamp;
    bool has_events = false;
    bool has_channels = false;
    bool recovered = false;
  };

  Status read_timestamp(od::value v, EventFields& out) {
    od::json_type type;
    if (type_of(v, type) != Status::ok)
      return Status::json;
    if (type == od::json_type::string) {
      if (!plain_string(v, out.timestamp_text, escapes) &&
          v.get_string().get(out.timestamp_text) != simdjson::SUCCESS) {
        return Status::json;
      }
      out.timestamp = parse_timestamp(out.timestamp_text);
      return Status::ok;
    }
    if (type == od::json_type::number) {  // Appwrite ≤ 0.15: Unix seconds
      std::optional<std::int64_t> seconds;
      if (read_number(v, out.timestamp_text, seconds) != Status::ok)
        return Status::json;
      // Beyond ±10^11 s (year 5138) the value is not a plausible Unix time; avoids overflow.
      if (seconds && *seconds > -100000000000 && *seconds < 100000000000) {
        out.timestamp = std::chrono::sys_time<milliseconds>{std::chrono::seconds{*seconds}};
      }
      return Status::ok;
    }
    return validate(v, 3, escapes);  // another type: forwarded as is, with the fallback time
  }

  Status read_event(od::value v, EventFields& out) {
    od::object o;
    if (const Status s = open_object(v, o); s != Status::ok)
      return s;
    if (o.raw_json().get(out.data) != simdjson::SUCCESS)
      return Status::json;
    out.data = trim_trailing_space(out.data);
    bool unused = false;
    if (o.reset().get(unused) != simdjson::SUCCESS)
      return Status::json;
    subscriptions.clear();
    for (auto result : o) {
      od::field f;
      std::string_view key;
      if (!open_field(std::move(result), f, key)) {
        return Status::json;
      }
      Status s = Status::ok;
      if (key == "events") {
        s = read_string_array(f.value(), events, escapes);
        out.has_events = true;
      } else if (key == "channels") {
        s = read_string_array(f.value(), channels, escapes);
        out.has_channels = true;
      } else if (key == "subscriptions") {
        s = read_string_array(f.value(), subscriptions, escapes);
      } else if (key == "payload") {
        s = read_payload(f.value(), out.payload, out.change, escapes);
      } else if (key == "timestamp") {
        s = read_timestamp(f.value(), out);
      } else if (key == "recovered") {
        // sluice's own mark on a backfilled event (Event::recovered); anything but `true` is
        // just another member.
        auto value = f.value();
        bool flag = false;
        if (value.get_bool().get(flag) == simdjson::SUCCESS)
          out.recovered = flag;
        else
          s = validate(value, 3, escapes);
      } else {
        s = validate(f.value(), 3, escapes);
      }
      if (s != Status::ok)
        return s;
    }
    if (!out.has_events || !out.has_channels || out.payload.data() == nullptr) {
      return Status::fields;
    }
    return Status::ok;
  }

  Status read_connected(od::value v, ConnectedFrame& out) {
    od::object o;
    if (const Status s = open_object(v, o); s != Status::ok)
      return s;
    for (auto result : o) {
      od::field f;
      std::string_view key;
      if (!open_field(std::move(result), f, key)) {
        return Status::json;
      }
      Status s = Status::ok;
      if (key == "channels") {
        s = read_string_array(f.value(), channels, true);
        out.channels.assign(channels.begin(), channels.end());
      } else if (key == "subscriptions") {
        s = read_slots(f.value(), out.subscriptions);
      } else if (key == "user") {
        od::value user = f.value();
        od::json_type type;
        if (type_of(user, type) != Status::ok)
          return Status::json;
        out.authenticated = type != od::json_type::null;
        s = validate(user, 3);
      } else {
        s = validate(f.value(), 3);
      }
      if (s != Status::ok)
        return s;
    }
    return Status::ok;
  }

  // PHP encodes slot → id as an array when the slots are 0..n-1, otherwise as an object.
  static Status read_slots(od::value v, std::vector<ConnectedFrame::Subscription>& out) {
    out.clear();
    od::json_type type;
    if (type_of(v, type) != Status::ok)
      return Status::json;
    auto read_id = [](od::value element, std::string& id) { return read_string(element, id); };
    if (type == od::json_type::array) {
      od::array a;
      if (v.get_array().get(a) != simdjson::SUCCESS)
        return Status::json;
      for (auto result : a) {
        od::value element;
        if (result.get(element) != simdjson::SUCCESS)
          return Status::json;
        ConnectedFrame::Subscription sub{std::to_string(out.size()), {}};
        if (const Status s = read_id(element, sub.id); s != Status::ok)
          return s;
        out.push_back(std::move(sub));
      }
      return Status::ok;
    }
    if (type != od::json_type::object)
      return Status::fields;
    od::object o;
    if (v.get_object().get(o) != simdjson::SUCCESS)
      return Status::json;
    for (auto result : o) {
      od::field f;
      std::string_view key;
      if (!open_field(std::move(result), f, key)) {
        return Status::json;
      }
      ConnectedFrame::Subscription sub{std::string(key), {}};
      if (const Status s = read_id(f.value(), sub.id); s != Status::ok)
        return s;
      out.push_back(std::move(sub));
    }
    return Status::ok;
  }

  static Status read_response(od::value v, ResponseFrame& out) {
    od::object o;
    if (const Status s = open_object(v, o); s != Status::ok)
      return s;
    bool has_to = false;
    for (auto result : o) {
      od::field f;
      std::string_view key;
      if (!open_field(std::move(result), f, key)) {
        return Status::json;
      }
      Status s = Status::ok;
      if (key == "to") {
        s = read_string(f.value(), out.to);
        has_to = true;
      } else if (key == "success") {
        od::value success = f.value();
        od::json_type type;
        if (type_of(success, type) != Status::ok)
          return Status::json;
        if (type != od::json_type::boolean)
          return Status::fields;
        if (success.get_bool().get(out.success) != simdjson::SUCCESS)
          return Status::json;
      } else if (key == "subscriptions") {
        s = read_subscription_entries(f.value(), out.subscription_ids);
      } else {
        s = validate(f.value(), 3);
      }
      if (s != Status::ok)
        return s;
    }
    return has_to ? Status::ok : Status::fields;
  }

  static Status read_subscription_entries(od::value v, std::vector<std::string>& ids) {
    ids.clear();
    od::array a;
    if (const Status s = open_array(v, a); s != Status::ok)
      return s;
    for (auto result : a) {
      od::value element;
      if (result.get(element) != simdjson::SUCCESS)
        return Status::json;
      od::object entry;
      if (const Status s = open_object(element, entry); s != Status::ok)
        return s;
      for (auto field_result : entry) {
        od::field f;
        std::string_view key;
        if (!open_field(std::move(field_result), f, key)) {
          return Status::json;
        }
        Status s = Status::ok;
        if (key == "subscriptionId") {
          s = read_string(f.value(), ids.emplace_back());
        } else {
          s = validate(f.value(), 5);
        }
        if (s != Status::ok)
          return s;
      }
    }
    return Status::ok;
  }

  static Status read_error(od::value v, ErrorFrame& out) {
    od::object o;
    if (const Status s = open_object(v, o); s != Status::ok)
      return s;
    bool has_code = false;
    for (auto result : o) {
      od::field f;
      std::string_view key;
      if (!open_field(std::move(result), f, key)) {
        return Status::json;
      }
      Status s = Status::ok;
      if (key == "code") {
        od::value code = f.value();
        od::json_type type;
        if (type_of(code, type) != Status::ok)
          return Status::json;
        if (type != od::json_type::number)
          return Status::fields;
        std::string_view raw;
        std::optional<std::int64_t> integer;
        if (read_number(code, raw, integer) != Status::ok)
          return Status::json;
        if (!integer)
          return Status::fields;
        out.code = *integer;
        has_code = true;
      } else if (key == "message") {
        s = read_string(f.value(), out.message);
      } else {
        s = validate(f.value(), 3);
      }
      if (s != Status::ok)
        return s;
    }
    return has_code ? Status::ok : Status::fields;
  }
};

FrameDecoder::FrameDecoder(std::string project)
    : project_(std::move(project)), impl_(std::make_unique<Impl>()) {}
FrameDecoder::~FrameDecoder() = default;

DecodedFrame FrameDecoder::decode(std::string frame, bool binary,
                                  std::chrono::steady_clock::time_point received,
                                  std::chrono::system_clock::time_point received_wall) {
  const bool oversized = frame.size() > kFrameRetainBytes;
  DecodedFrame out = decode_frame(std::move(frame), binary, received, received_wall);
  // The parser keeps the capacity of the largest document it has seen, and its structural
  // index alone takes 4 bytes per byte of it: a fresh one allocates again at the next frame's
  // size. Nothing in `out` points into the old one.
  if (oversized)
    impl_ = std::make_unique<Impl>();
  return out;
}

DecodedFrame FrameDecoder::decode_frame(std::string frame, bool binary,
                                        std::chrono::steady_clock::time_point received,
                                        std::chrono::system_clock::time_point received_wall) {
  DecodedFrame out;
  auto invalid = [&out](std::string_view why) {
    out = DecodedFrame{};
    out.kind = FrameKind::invalid;
    out.invalid_reason = why;
    return std::move(out);
  };
  if (binary)
    return invalid("binary");
  if (frame.capacity() < frame.size() + kJsonPadding)
    frame.reserve(frame.size() + kJsonPadding);

  od::parser& parser = impl_->parser;
  impl_->escapes = std::string_view(frame).find('\\') != std::string_view::npos;
  od::document doc;
  if (parser.iterate(frame.data(), frame.size(), frame.capacity()).get(doc) != simdjson::SUCCESS) {
    return invalid(kJson);
  }
  od::object top;
  if (doc.get_object().get(top) != simdjson::SUCCESS)
    return invalid(kJson);

  // `type` first (PHP writes it first, so this is normally the first key), then one pass over
  // every key, `data` included, in document order.
  Type type = Type::unknown;
  {
    od::value type_value;
    const auto err = top.find_field_unordered("type").get(type_value);
    if (err == simdjson::NO_SUCH_FIELD)
      return invalid("type");
    if (err != simdjson::SUCCESS)
      return invalid(kJson);
    od::json_type json_type;
    if (type_value.type().get(json_type) != simdjson::SUCCESS)
      return invalid(kJson);
    std::string_view text;
    if (json_type != od::json_type::string)
      return invalid("type");
    if (type_value.get_string().get(text) != simdjson::SUCCESS)
      return invalid(kJson);
    type = classify(text);
    if (type == Type::unknown)
      return invalid("type");
  }
  doc.rewind();
  if (doc.get_object().get(top) != simdjson::SUCCESS)
    return invalid(kJson);

  Impl::EventFields fields;
  bool has_data = false;
  for (auto result : top) {
    od::field f;
    std::string_view key;
    if (!open_field(std::move(result), f, key)) {
      return invalid(kJson);
    }
    Status s = Status::ok;
    if (key == "data" && !has_data) {
      has_data = true;
      switch (type) {
        case Type::event:
          s = impl_->read_event(f.value(), fields);
          break;
        case Type::connected:
          s = impl_->read_connected(f.value(), out.connected);
          break;
        case Type::response:
          s = Impl::read_response(f.value(), out.response);
          break;
        case Type::error:
          s = Impl::read_error(f.value(), out.error);
          break;
        case Type::pong:
        case Type::unknown:
          s = validate(f.value(), 2);
          break;
      }
    } else {
      s = validate(f.value(), 2);
    }
    if (s != Status::ok)
      return invalid(reason(s));
  }
  // Anything after the top-level object is garbage; current_location fails only at the end.
  if (const char* trailing = nullptr; doc.current_location().get(trailing) == simdjson::SUCCESS) {
    return invalid(kJson);
  }
  if (!has_data && type != Type::pong)
    return invalid(kFields);

  switch (type) {
    case Type::connected:
      out.kind = FrameKind::connected;
      return out;
    case Type::response:
      out.kind = FrameKind::response;
      return out;
    case Type::pong:
      out.kind = FrameKind::pong;
      return out;
    case Type::error:
      out.kind = FrameKind::error;
      return out;
    case Type::event:
    case Type::unknown:
      break;
  }

  // Views into the frame are rebased by offset once the frame is moved in; strings that were
  // unescaped into the parser's buffer are copied into Event::strings, reserved once so the
  // views stay put.
  auto event = std::make_shared<Event>();
  const char* const frame_begin = frame.data();
  const char* const frame_end = frame_begin + frame.size();
  auto in_frame = [frame_begin, frame_end](std::string_view s) {
    return std::less_equal<>{}(frame_begin, s.data()) && std::less_equal<>{}(s.data(), frame_end);
  };
  std::size_t total = 0;
  for (const auto* list : {&impl_->events, &impl_->channels, &impl_->subscriptions}) {
    for (const std::string_view s : *list) {
      if (!in_frame(s))
        total += s.size();
    }
  }
  for (const std::string_view s :
       {fields.timestamp_text, fields.change.resource_id, fields.change.updated_at}) {
    if (!in_frame(s))
      total += s.size();
  }
  event->strings.reserve(total);
  auto keep = [&event, &in_frame, frame_begin](std::string_view s) {
    if (in_frame(s)) {
      const auto at = static_cast<std::size_t>(s.data() - frame_begin);
      return std::string_view(event->frame).substr(at, s.size());
    }
    const std::size_t at = event->strings.size();
    event->strings.append(s);
    return std::string_view(event->strings.data() + at, s.size());
  };
  auto keep_all = [&keep](const std::vector<std::string_view>& from,
                          std::vector<std::string_view>& to) {
    to.reserve(from.size());
    for (const std::string_view s : from)
      to.push_back(keep(s));
  };
  const auto data_at = static_cast<std::size_t>(fields.data.data() - frame_begin);
  const auto payload_at = static_cast<std::size_t>(fields.payload.data() - frame_begin);
  const std::size_t needed = frame.size() + kJsonPadding;
  // The frame was reserved with its padding above, so the move keeps its buffer in place.
  event->frame = std::move(frame);
  if (event->frame.capacity() < needed)
    event->frame.reserve(needed);
  keep_all(impl_->events, event->events);
  keep_all(impl_->channels, event->channels);
  keep_all(impl_->subscriptions, event->subscriptions);
  event->timestamp_text = keep(fields.timestamp_text);
  event->data = std::string_view(event->frame).substr(data_at, fields.data.size());
  event->payload = std::string_view(event->frame).substr(payload_at, fields.payload.size());
  if (fields.timestamp) {
    event->timestamp = *fields.timestamp;
  } else {
    event->timestamp = std::chrono::time_point_cast<milliseconds>(received_wall);
    out.timestamp_fallback = true;
  }
  event->resource_id = keep(fields.change.resource_id);
  event->updated_at = keep(fields.change.updated_at);
  event->id = make_change_id(project_, event->first_event(), event->resource_id, event->updated_at);
  if (event->id.empty())
    event->id = make_event_id(event->data);
  event->received = received;
  event->recovered = fields.recovered;
  out.kind = FrameKind::event;
  out.event = std::move(event);
  return out;
}

}  // namespace sluice::upstream
