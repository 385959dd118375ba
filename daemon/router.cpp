#include "daemon/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace sluice {

EventPattern::EventPattern(std::string_view pattern) : text_(pattern) {
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = pattern.find('.', start);
    const std::string_view segment = pattern.substr(start, dot - start);
    wildcard_.push_back(segment == "*");
    segments_.emplace_back(segment == "*" ? std::string_view{} : segment);
    if (dot == std::string_view::npos)
      break;
    start = dot + 1;
  }
}

bool EventPattern::matches(std::string_view event) const {
  std::size_t start = 0;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    if (start > event.size())
      return false;  // the event has fewer segments
    const std::size_t dot = event.find('.', start);
    const bool last = i + 1 == segments_.size();
    if (last != (dot == std::string_view::npos))
      return false;  // segment counts differ
    const std::string_view segment = event.substr(start, dot - start);
    if (!wildcard_[i] && segment != segments_[i])
      return false;
    start = last ? event.size() + 1 : dot + 1;
  }
  return true;
}

Router::Router(const config::Config& config) {
  routes_.reserve(config.routes.size());
  for (const config::RouteConfig& rc : config.routes) {
    Route route;
    route.name = RouteName::intern(rc.name);
    for (const std::string& channel : rc.channels) {
      if (std::find(route.channels.begin(), route.channels.end(), channel) ==
          route.channels.end()) {
        route.channels.push_back(channel);
      }
    }
    for (const std::string& pattern : rc.events)
      route.events.emplace_back(pattern);
    route.where = rc.where;
    for (const std::string& sink_name : rc.sinks) {
      std::size_t index = 0;
      while (index < config.sinks.size() && config.sinks[index].name != sink_name)
        ++index;
      if (index == config.sinks.size()) {
        throw std::invalid_argument("route \"" + rc.name + "\": unknown sink \"" + sink_name +
                                    "\"");
      }
      if (std::find(route.sinks.begin(), route.sinks.end(), index) == route.sinks.end()) {
        route.sinks.push_back(index);
      }
    }
    const auto route_index = static_cast<std::uint32_t>(routes_.size());
    routes_.push_back(std::move(route));
    for (const std::string& channel : routes_.back().channels) {
      add_to_channel(by_channel_[channel], route_index);
      channels_.push_back(channel);
      if (channel.size() >= has_length_.size())
        has_length_.resize(channel.size() + 1, false);
      has_length_[channel.size()] = true;
    }
  }
  std::sort(channels_.begin(), channels_.end());
  channels_.erase(std::unique(channels_.begin(), channels_.end()), channels_.end());
}

namespace {

// The condition a route is indexed by: its first top-level `equal` whose values all have
// identity keys. None when a top-level select is present (select("*") matches everything).
const Query* index_condition(const std::vector<Query>& where) {
  for (const Query& q : where) {
    if (q.method == Query::Method::select)
      return nullptr;
  }
  std::string key;
  for (const Query& q : where) {
    if (q.method != Query::Method::equal || q.attribute.empty() || q.values.empty())
      continue;
    if (std::all_of(q.values.begin(), q.values.end(),
                    [&key](const Query::Value& v) { return identity_key(v, key); })) {
      return &q;
    }
  }
  return nullptr;
}

}  // namespace

void Router::add_to_channel(ChannelRoutes& channel, std::uint32_t route) const {
  const Query* condition = index_condition(routes_[route].where);
  if (condition == nullptr) {
    channel.routes.push_back(route);
    return;
  }
  auto index = std::find_if(channel.by_value.begin(), channel.by_value.end(),
                            [&](const auto& b) { return b.attribute == condition->attribute; });
  if (index == channel.by_value.end()) {
    channel.by_value.push_back({condition->attribute, {}});
    index = channel.by_value.end() - 1;
  }
  std::string key;
  for (const Query::Value& value : condition->values) {
    identity_key(value, key);
    auto& listed = index->routes[key];
    if (listed.empty() || listed.back() != route)  // equal(a, [x, x]) files the route once
      listed.push_back(route);
  }
}

bool Router::events_match(const Route& route, const Event& event) const {
  if (route.events.empty())
    return true;
  for (const std::string_view name : event.events) {
    for (const EventPattern& pattern : route.events) {
      if (pattern.matches(name))
        return true;
    }
  }
  return false;
}

void Router::route(const Event& event, RouteResult& out) const {
  out.clear();
  auto& candidates = out.candidates_;
  const JsonBytes payload{event.payload.data(), event.payload.size(),
                          event.payload.empty() ? 0 : event.readable_after(event.payload)};
  for (std::size_t c = 0; c < event.channels.size(); ++c) {
    const std::size_t length = event.channels[c].size();
    if (length >= has_length_.size() || !has_length_[length])
      continue;
    const auto found = by_channel_.find(event.channels[c]);
    if (found == by_channel_.end())
      continue;
    const auto channel = static_cast<std::uint32_t>(c);
    for (const std::uint32_t r : found->second.routes)
      candidates.push_back({r, channel});
    for (const auto& index : found->second.by_value) {
      if (!identity_key(out.lookups_.get(payload, index.attribute), out.key_))
        continue;
      const auto listed = index.routes.find(std::string_view(out.key_));
      if (listed == index.routes.end())
        continue;
      for (const std::uint32_t r : listed->second)
        candidates.push_back({r, channel});
    }
  }
  if (candidates.empty())
    return;
  // File order of routes; for each route, the event's first channel it listens on.
  std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
    return a.route != b.route ? a.route < b.route : a.channel < b.channel;
  });
  const auto last = std::unique(candidates.begin(), candidates.end(),
                                [](const auto& a, const auto& b) { return a.route == b.route; });
  candidates.erase(last, candidates.end());

  for (const RouteResult::Candidate& candidate : candidates) {
    const Route& route = routes_[candidate.route];
    if (!events_match(route, event))
      continue;
    if (!route.where.empty() && !matches_all(route.where, payload, out.lookups_))
      continue;
    out.matched.push_back(candidate.route);
    for (const std::size_t sink : route.sinks) {
      const bool already = std::any_of(out.targets.begin(), out.targets.end(),
                                       [sink](const RouteTarget& t) { return t.sink == sink; });
      if (!already) {
        out.targets.push_back({sink, candidate.route, route.name, candidate.channel});
      }
    }
  }
}

}  // namespace sluice
