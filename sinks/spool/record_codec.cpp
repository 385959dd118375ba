#include "sinks/spool/record_codec.hpp"

#include <bit>
#include <cstring>
#include <memory>
#include <vector>

#include <xxhash.h>

#include "core/event.hpp"

namespace sluice::sinks::spool {

static_assert(std::endian::native == std::endian::little,
              "the spool format is little-endian; add byte swaps for this platform");

namespace {

// Version 2 appends the event id: since ids identify the change, not the bytes of `data`, they
// cannot be recomputed here. A version 1 body's id was the hash of its `data`.
constexpr std::uint8_t kVersion = 2;
constexpr std::uint8_t kVersionDataHashId = 1;

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void put_str(std::string& out, std::string_view s) {
  put<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

void put_list(std::string& out, const std::vector<std::string_view>& list) {
  put<std::uint32_t>(out, static_cast<std::uint32_t>(list.size()));
  for (const auto s : list)
    put_str(out, s);
}

std::uint64_t body_hash(const char* body, std::uint32_t size) {
  return XXH3_64bits_withSeed(body, size, size);
}

// Bounds-checked reading of a body; any overrun sets `ok` to false and returns empty values.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  template <class T>
  T get() {
    T v{};
    if (!ok || in_.size() - at_ < sizeof(T)) {
      ok = false;
      return v;
    }
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }

  std::string_view str() {
    const auto n = get<std::uint32_t>();
    if (!ok || in_.size() - at_ < n) {
      ok = false;
      return {};
    }
    const auto s = in_.substr(at_, n);
    at_ += n;
    return s;
  }

  bool list(std::vector<std::string_view>& out) {
    const auto n = get<std::uint32_t>();
    if (!ok || n > in_.size())
      return ok = false;
    out.reserve(n);
    for (std::uint32_t i = 0; i < n && ok; ++i)
      out.push_back(str());
    return ok;
  }

  bool at_end() const { return at_ == in_.size(); }
  bool ok = true;

 private:
  std::string_view in_;
  std::size_t at_ = 0;
};

}  // namespace

std::size_t append_frame(std::string& out, std::uint64_t seq, const Record& record,
                         std::chrono::system_clock::time_point received_wall) {
  const std::size_t start = out.size();
  out.append(kHeaderBytes, '\0');
  const Event empty;
  const Event& ev = record.event ? *record.event : empty;
  put<std::uint8_t>(out, kVersion);
  put<std::uint64_t>(out, seq);
  put<std::int64_t>(out, ev.timestamp.time_since_epoch().count());
  put<std::int64_t>(
      out, std::chrono::duration_cast<std::chrono::microseconds>(received_wall.time_since_epoch())
               .count());
  const bool payload_inside =
      !ev.payload.empty() && ev.payload.data() >= ev.data.data() &&
      ev.payload.data() + ev.payload.size() <= ev.data.data() + ev.data.size();
  put<std::uint32_t>(
      out, payload_inside ? static_cast<std::uint32_t>(ev.payload.data() - ev.data.data()) : 0);
  put<std::uint32_t>(out, payload_inside ? static_cast<std::uint32_t>(ev.payload.size()) : 0);
  // Names, not the process-local route handle or channel index: a spool outlives the process.
  put_str(out, record.route.view());
  put_str(out, record.channel_name());
  put_str(out, ev.timestamp_text);
  put_list(out, ev.events);
  put_list(out, ev.channels);
  put_list(out, ev.subscriptions);
  put_str(out, ev.data);
  put_str(out, ev.id);

  const auto body_size = static_cast<std::uint32_t>(out.size() - start - kHeaderBytes);
  char* header = out.data() + start;
  const std::uint64_t hash = body_hash(header + kHeaderBytes, body_size);
  std::memcpy(header, &kMagic, 4);
  std::memcpy(header + 4, &body_size, 4);
  std::memcpy(header + 8, &hash, 8);
  return out.size() - start;
}

FrameCheck check_frame(std::string_view buffer, std::size_t at, std::size_t& frame_bytes) {
  if (at > buffer.size() || buffer.size() - at < kHeaderBytes)
    return FrameCheck::incomplete;
  const char* h = buffer.data() + at;
  std::uint32_t magic = 0;
  std::uint32_t size = 0;
  std::uint64_t hash = 0;
  std::memcpy(&magic, h, 4);
  std::memcpy(&size, h + 4, 4);
  std::memcpy(&hash, h + 8, 8);
  if (magic != kMagic || size == 0 || size > kMaxBodyBytes)
    return FrameCheck::bad;
  if (buffer.size() - at - kHeaderBytes < size)
    return FrameCheck::incomplete;
  if (body_hash(h + kHeaderBytes, size) != hash)
    return FrameCheck::bad;
  frame_bytes = kHeaderBytes + size;
  return FrameCheck::ok;
}

std::string_view frame_body(std::string_view buffer, std::size_t at) {
  std::uint32_t size = 0;
  std::memcpy(&size, buffer.data() + at + 4, 4);
  return buffer.substr(at + kHeaderBytes, size);
}

std::optional<std::uint64_t> body_seq(std::string_view body) {
  Reader r(body);
  if (const auto version = r.get<std::uint8_t>();
      version != kVersion && version != kVersionDataHashId)
    return std::nullopt;
  const auto seq = r.get<std::uint64_t>();
  if (!r.ok)
    return std::nullopt;
  return seq;
}

std::optional<DecodedRecord> decode_body(std::string_view body,
                                         std::chrono::steady_clock::time_point steady_now,
                                         std::chrono::system_clock::time_point wall_now) {
  Reader r(body);
  const auto version = r.get<std::uint8_t>();
  if (version != kVersion && version != kVersionDataHashId)
    return std::nullopt;
  DecodedRecord out;
  out.seq = r.get<std::uint64_t>();
  const auto timestamp_ms = r.get<std::int64_t>();
  const auto received_us = r.get<std::int64_t>();
  const auto payload_at = r.get<std::uint32_t>();
  const auto payload_size = r.get<std::uint32_t>();
  const auto route = r.str();
  const auto channel = r.str();
  const auto timestamp_text = r.str();
  std::vector<std::string_view> events;
  std::vector<std::string_view> channels;
  std::vector<std::string_view> subscriptions;
  r.list(events);
  r.list(channels);
  r.list(subscriptions);
  const auto data = r.str();
  const auto id = version == kVersion ? r.str() : std::string_view{};
  if (!r.ok || !r.at_end() || std::size_t{payload_at} + payload_size > data.size())
    return std::nullopt;

  auto ev = std::make_shared<Event>();
  // The strings are copied into one buffer reserved up front, so the views never move.
  std::size_t total = timestamp_text.size();
  for (const auto* list : {&events, &channels, &subscriptions}) {
    for (const auto s : *list)
      total += s.size();
  }
  ev->strings.reserve(total);
  auto keep = [&ev](std::string_view s) {
    const std::size_t at = ev->strings.size();
    ev->strings.append(s);
    return std::string_view(ev->strings.data() + at, s.size());
  };
  for (const auto s : events)
    ev->events.push_back(keep(s));
  for (const auto s : channels)
    ev->channels.push_back(keep(s));
  for (const auto s : subscriptions)
    ev->subscriptions.push_back(keep(s));
  ev->timestamp_text = keep(timestamp_text);
  ev->frame.reserve(data.size() + kJsonPadding);
  ev->frame.assign(data);
  ev->data = ev->frame;
  ev->payload = ev->data.substr(payload_at, payload_size);
  ev->timestamp =
      std::chrono::sys_time<std::chrono::milliseconds>{std::chrono::milliseconds{timestamp_ms}};
  ev->id = version == kVersion ? std::string(id) : make_event_id(ev->data);
  // The time already spent queued before the restart still counts in delivery_seconds.
  const auto received_wall =
      std::chrono::system_clock::time_point{std::chrono::microseconds{received_us}};
  const auto age = wall_now > received_wall
                       ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             wall_now - received_wall)
                       : std::chrono::steady_clock::duration::zero();
  ev->received = steady_now - age;
  // The channel was written as one of the event's own channels, so it is found in the list;
  // a name that is not (no version of sluice writes one) resolves as empty.
  std::uint32_t channel_index = Record::kNoChannel;
  for (std::size_t i = 0; i < ev->channels.size(); ++i) {
    if (ev->channels[i] == channel) {
      channel_index = static_cast<std::uint32_t>(i);
      break;
    }
  }
  out.record = Record{std::move(ev), RouteName::intern(route), channel_index};
  return out;
}

}  // namespace sluice::sinks::spool
