#include "daemon/upstream/subscription_plan.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "core/event.hpp"
#include "core/json.hpp"
#include "core/text.hpp"
#include "daemon/upstream/realtime_url.hpp"

namespace sluice::upstream {

namespace {

constexpr std::string_view kSubscribeOpen = R"({"type":"subscribe","data":[)";
constexpr std::string_view kUnsubscribeOpen = R"({"type":"unsubscribe","data":[)";
constexpr std::string_view kClose = "]}";

std::string entry_json(const Subscription::Entry& e) {
  std::string m = R"({"subscriptionId":)";
  append_json_string(m, e.id);
  m += R"(,"channels":[)";
  for (std::size_t i = 0; i < e.channels.size(); ++i) {
    if (i > 0)
      m += ',';
    append_json_string(m, e.channels[i]);
  }
  m += R"(],"queries":[)";
  for (std::size_t i = 0; i < e.queries.size(); ++i) {
    if (i > 0)
      m += ',';
    append_json_string(m, e.queries[i]);
  }
  m += "]}";
  return m;
}

// Packs JSON items into messages `open item,item... close`, each at most kMaxMessageBytes.
// An item too big for a message on its own goes into one anyway: the caller checks the sizes.
std::vector<std::string> pack(std::string_view open, const std::vector<std::string>& items) {
  std::vector<std::string> frames;
  std::string frame;
  for (const auto& item : items) {
    if (!frame.empty() && frame.size() + 1 + item.size() + kClose.size() > kMaxMessageBytes) {
      frames.push_back(frame + std::string(kClose));
      frame.clear();
    }
    frame += frame.empty() ? std::string(open) : std::string(",");
    frame += item;
  }
  if (!frame.empty())
    frames.push_back(frame + std::string(kClose));
  return frames;
}

// One select-all subscription per frame, filled up to the frame limit, its id derived from its
// channels: a changed set is a new subscription (subscribing again under an old id would only
// add channels, never remove any).
std::vector<Subscription::Entry> chunk(const std::vector<std::string>& channels) {
  // {"type":"subscribe","data":[{"subscriptionId":"<20>","channels":[ ... ],"queries":[]}]}
  constexpr std::size_t kOverhead = 100;
  std::vector<Subscription::Entry> entries;
  std::size_t bytes = kOverhead;
  for (const auto& c : channels) {
    std::string quoted;
    append_json_string(quoted, c);
    if (!entries.empty() && bytes + quoted.size() + 1 <= kMaxMessageBytes) {
      entries.back().channels.push_back(c);
      bytes += quoted.size() + 1;
    } else {
      entries.push_back({"", {c}, {}});
      bytes = kOverhead + quoted.size();
    }
  }
  for (auto& e : entries) {
    std::string all;
    for (const auto& c : e.channels) {
      all += c;
      all += '\n';
    }
    e.id = make_event_id(all).substr(0, 20);
  }
  return entries;
}

void frame_entries(SubscriptionPlan& plan) {
  std::vector<std::string> items;
  items.reserve(plan.entries.size());
  for (const auto& e : plan.entries)
    items.push_back(entry_json(e));
  plan.frames = pack(kSubscribeOpen, items);
  // No routes: one empty subscribe all the same, so that its answer marks the connection
  // subscribed (and a reload to no routes unsubscribes the rest once it is answered).
  if (plan.frames.empty())
    plan.frames.push_back(std::string(kSubscribeOpen) + std::string(kClose));
}

std::size_t largest(const std::vector<std::string>& frames) {
  std::size_t n = 0;
  for (const auto& f : frames)
    n = std::max(n, f.size());
  return n;
}

// Whether the plan's channels fit; fills what is sent when they do. `exact` keeps the routes'
// own subscriptions (message mode, nothing widened yet).
bool fill(SubscriptionPlan& plan, const Subscription& wanted, bool exact, const RequestHead& head) {
  if (plan.mode == SubscribeMode::url) {
    plan.url_bytes =
        head.header_bytes + realtime_target(*head.realtime, head.project, plan.channels).size();
    return plan.url_bytes < kMaxRequestHead;
  }
  plan.entries = exact && !wanted.entries.empty() ? wanted.entries : chunk(plan.channels);
  frame_entries(plan);
  return plan.frames.size() <= kMaxSubscribeFrames && largest(plan.frames) <= kMaxMessageBytes;
}

std::string limit_error(const SubscriptionPlan& plan) {
  if (plan.mode == SubscribeMode::url) {
    return fmt::format(
        "the subscription URL does not fit even with channels widened: a request head of {} "
        "bytes exceeds Appwrite's limit of {}",
        plan.url_bytes, kMaxRequestHead);
  }
  const auto big = largest(plan.frames);
  if (big > kMaxMessageBytes) {
    return fmt::format(
        "a subscribe frame of {} bytes (and its header) exceeds Appwrite's limit of 64,000 even "
        "with channels "
        "widened (one channel name alone is too long)",
        big);
  }
  return fmt::format(
      "the subscription needs {} subscribe frames even with channels widened; at most {} fit "
      "Appwrite's budget of {} messages a minute",
      plan.frames.size(), kMaxSubscribeFrames, kMessagesPerWindow);
}

bool append_value(std::string& out, const Query::Value& v) {
  if (std::holds_alternative<std::nullptr_t>(v)) {
    out += "null";
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out += *b ? "true" : "false";
  } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
    out += std::to_string(*i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    if (!std::isfinite(*d))
      return false;
    // PHP's json_decode reads a number without '.', 'e' or 'E' as an int, which `===` never
    // equals a float: keep the float a float.
    auto text = fmt::format("{}", *d);
    if (text.find_first_of(".eE") == std::string::npos)
      text += ".0";
    out += text;
  } else {
    append_json_string(out, std::get<std::string>(v));
  }
  return true;
}

// Appends `q` as the JSON object Appwrite's SDKs send; false when Appwrite would not evaluate
// it the way sluice does.
bool append_query(std::string& out, const Query& q) {
  // sluice reads a dotted attribute as a path into nested objects; Appwrite reads top-level
  // keys only.
  if (q.attribute.find('.') != std::string::npos)
    return false;
  out += R"({"method":)";
  append_json_string(out, method_name(q.method));
  const bool logical = q.method == Query::Method::and_ || q.method == Query::Method::or_;
  if (!logical && q.method != Query::Method::select) {
    out += R"(,"attribute":)";
    append_json_string(out, q.attribute);
  }
  out += R"(,"values":[)";
  if (logical) {
    for (std::size_t i = 0; i < q.queries.size(); ++i) {
      if (i > 0)
        out += ',';
      if (!append_query(out, q.queries[i]))
        return false;
    }
  } else {
    for (std::size_t i = 0; i < q.values.size(); ++i) {
      if (i > 0)
        out += ',';
      if (!append_value(out, q.values[i]))
        return false;
    }
  }
  out += "]}";
  return true;
}

}  // namespace

std::string subscription_id(std::string_view route_name) {
  return make_event_id(route_name).substr(0, 20);
}

std::optional<std::vector<std::string>> server_queries(const std::vector<Query>& where) {
  std::vector<std::string> out;
  for (const auto& q : where) {
    std::string text;
    if (!append_query(text, q))
      return std::nullopt;
    out.push_back(std::move(text));
  }
  return out;
}

std::optional<std::string> broader_channel(std::string_view channel) {
  const auto s = split(channel, '.');
  if (s.size() < 2)
    return std::nullopt;
  const auto kind = s[0];
  if (kind == "databases" || kind == "tablesdb" || kind == "documentsdb" || kind == "vectorsdb") {
    // <type>.D.<collections|tables>.C.<documents|rows>[.X][.action]
    if (s.size() >= 5 && (s[4] == "documents" || s[4] == "rows"))
      return std::string(s[4]);
    return std::nullopt;
  }
  if (kind == "buckets")
    return s.size() >= 3 && s[2] == "files" ? std::optional<std::string>("files") : std::nullopt;
  // Every execution event is published on `executions` as well as on its function's channel.
  if (kind == "functions" || kind == "executions")
    return "executions";
  if (kind == "teams" || kind == "memberships" || kind == "presences" || kind == "account")
    return std::string(kind);
  return std::nullopt;
}

SubscriptionPlan plan_subscription(const Subscription& wanted, SubscribeMode mode,
                                   const RequestHead& head) {
  SubscriptionPlan plan;
  plan.mode = mode;
  plan.channels = wanted.channels;
  std::sort(plan.channels.begin(), plan.channels.end());
  plan.channels.erase(std::unique(plan.channels.begin(), plan.channels.end()), plan.channels.end());
  if (fill(plan, wanted, true, head))
    return plan;
  const auto exact_frames = plan.frames.size();
  const auto exact_bytes = mode == SubscribeMode::url ? plan.url_bytes : largest(plan.frames);
  // Message mode: one subscription per route does not fit; all channels in as few
  // subscriptions as possible may.
  if (mode == SubscribeMode::message && fill(plan, wanted, false, head))
    return plan;

  // Widen the groups with the most bytes first: the fewest broad channels that make it fit.
  std::map<std::string, std::vector<std::string>> groups;
  for (const auto& c : plan.channels) {
    if (auto broad = broader_channel(c); broad && *broad != c)
      groups[*broad].push_back(c);
  }
  std::vector<std::pair<std::size_t, std::string>> order;
  for (const auto& [broad, members] : groups) {
    std::size_t bytes = 0;
    for (const auto& m : members)
      bytes += m.size();
    order.emplace_back(bytes, broad);
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  plan.why = mode == SubscribeMode::url
                 ? fmt::format(
                       "the URL with every channel makes a request head of {} bytes; Appwrite "
                       "reads at most {}",
                       exact_bytes, kMaxRequestHead)
                 : fmt::format(
                       "every channel takes {} subscribe frames (largest {} bytes); Appwrite takes "
                       "frames below 64,000 bytes and {} messages a minute, so at most {} frames",
                       exact_frames, exact_bytes, kMessagesPerWindow, kMaxSubscribeFrames);
  for (const auto& [bytes, broad] : order) {
    auto& members = groups[broad];
    std::vector<std::string> next;
    std::set_difference(plan.channels.begin(), plan.channels.end(), members.begin(), members.end(),
                        std::back_inserter(next));
    if (!std::binary_search(next.begin(), next.end(), broad))
      next.insert(std::upper_bound(next.begin(), next.end(), broad), broad);
    plan.channels = std::move(next);
    plan.widened.push_back({broad, std::move(members)});
    if (fill(plan, wanted, false, head))
      return plan;
  }
  plan.error = limit_error(plan);
  return plan;
}

std::vector<std::string> unsubscribe_frames(const std::vector<std::string>& ids) {
  std::vector<std::string> items;
  items.reserve(ids.size());
  for (const auto& id : ids) {
    std::string item = R"({"subscriptionId":)";
    append_json_string(item, id);
    item += '}';
    items.push_back(std::move(item));
  }
  return pack(kUnsubscribeOpen, items);
}

std::string describe_widening(const SubscriptionPlan& plan) {
  std::string text;
  for (const auto& w : plan.widened) {
    if (!text.empty())
      text += "; ";
    text += fmt::format("{} ({} channels, e.g. {})", w.to, w.from.size(), w.from.front());
  }
  return text;
}

}  // namespace sluice::upstream
