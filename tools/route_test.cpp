#include "tools/route_test.hpp"

#include <yaml-cpp/yaml.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <variant>

#include "config/reader.hpp"
#include "config/route_reader.hpp"
#include "core/json.hpp"
#include "daemon/upstream/decoder.hpp"
#include "emulator/fanout/fanout.hpp"
#include "sinks/file/file_config.hpp"
#include "sinks/kafka/kafka_config.hpp"
#include "sinks/webhook/webhook_config.hpp"
#include "tools/replay.hpp"

namespace sluice::tools {

namespace {

using config::Field;
using config::MapView;
using config::Reader;

// A short-form case without `timestamp` gets this one, so that a file path with %Y-%m-%d
// renders the same on every run.
constexpr std::string_view kDefaultTimestamp = "2026-01-01T00:00:00.000+00:00";

config::Location location_of(const Reader& r, const YAML::Mark& mark) {
  return {r.file(), mark.line >= 0 ? mark.line + 1 : 1, mark.column >= 0 ? mark.column + 1 : 1};
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool json_number(std::string_view s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
      ++i;
    return i - start;
  };
  if (i < s.size() && s[i] == '-')
    ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0)
      return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-'))
      ++i;
    if (digits() == 0)
      return false;
  }
  return i == s.size();
}

// A YAML value as JSON text. Plain scalars are typed as `where` values are (100 is a number,
// true a boolean, null null); quoted ones stay strings. No interpolation: a payload is data.
bool append_json(Reader& r, const YAML::Node& node, const std::string& path, std::string& out) {
  if (node.IsMap()) {
    out += '{';
    bool first = true;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) {
        r.error(it->first.Mark(), path, "expected a plain key, got " + config::kind_of(it->first));
        return false;
      }
      if (!first)
        out += ',';
      first = false;
      append_json_string(out, it->first.Scalar());
      out += ':';
      if (!append_json(r, it->second, config::child_path(path, it->first.Scalar()), out))
        return false;
    }
    out += '}';
    return true;
  }
  if (node.IsSequence()) {
    out += '[';
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (i > 0)
        out += ',';
      if (!append_json(r, node[i], config::index_path(path, i), out))
        return false;
    }
    out += ']';
    return true;
  }
  if (!node.IsScalar()) {
    out += "null";
    return true;
  }
  const std::string& text = node.Scalar();
  if (node.Tag() != "?") {
    append_json_string(out, text);
    return true;
  }
  const auto value = config::plain_value(text);
  if (std::holds_alternative<std::nullptr_t>(value)) {
    out += "null";
  } else if (const bool* b = std::get_if<bool>(&value)) {
    out += *b ? "true" : "false";
  } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
    out += std::to_string(*i);
  } else if (std::holds_alternative<double>(value)) {
    if (!json_number(text)) {
      r.error(node.Mark(), path,
              "the number " + config::quote(text) + " has no JSON form (quote it for a string)");
      return false;
    }
    out += text;  // as written: `where` is strict about 100 versus 100.0
  } else {
    append_json_string(out, text);
  }
  return true;
}

std::string list_text(const std::vector<std::string>& items) {
  return "[" + config::join(items) + "]";
}

std::vector<std::string> sorted(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  return items;
}

// One expected value of one sink (`topic`, `key`, `path` or `url`).
struct FieldExpect {
  std::string field;
  std::optional<std::string> value;  // unset: `key: null`, no key
  config::Location location;
  std::string path;
};

struct SinkExpect {
  std::string name;
  std::vector<FieldExpect> fields;
  config::Location location;
  std::string path;
};

struct Expect {
  std::optional<std::vector<std::string>> routes;
  config::Location routes_at;
  std::string routes_path;
  std::optional<std::vector<SinkExpect>> sinks;
  config::Location sinks_at;
  std::string sinks_path;
};

// The keys a sink's expectation may give, by the sink's type.
std::vector<std::string> target_fields(std::string_view type) {
  if (type == sinks::KafkaSinkConfig::kType)
    return {"key", "topic"};
  if (type == sinks::FileSinkConfig::kType)
    return {"path"};
  return {"url"};
}

std::optional<std::string> actual_field(const Delivery& d, const std::string& field) {
  if (field == "topic")
    return d.topic;
  if (field == "key")
    return d.key;
  if (field == "path")
    return d.path;
  return d.url;
}

std::string shown(const std::optional<std::string>& value) {
  return value ? config::quote(*value) : "no key";
}

// Reads one case's `expect`; false when it has errors (reported).
bool read_expect(Reader& r, const config::Config& config, const Field& f, Expect& out) {
  const MapView map(r, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return false;
  const auto before = r.error_count();
  map.check_keys({"routes", "sinks"});
  if (const auto* routes = map.get("routes")) {
    out.routes = r.string_list(*routes, "route names");
    out.routes_at = location_of(r, routes->key.Mark());
    out.routes_path = routes->path;
  }
  std::vector<std::string> sink_names;
  for (const auto& sink : config.sinks)
    sink_names.push_back(sink.name);
  const auto known_sink = [&](const YAML::Node& node, const std::string& path) {
    const auto& name = node.Scalar();
    if (config.find_sink(name) != nullptr)
      return true;
    r.error(node.Mark(), path,
            "unknown sink " + config::quote(name) + " (" + config::did_you_mean(name, sink_names) +
                "known: " + config::join(sink_names) + ")");
    return false;
  };
  if (const auto* sinks = map.get("sinks")) {
    out.sinks_at = location_of(r, sinks->key.Mark());
    out.sinks_path = sinks->path;
    std::vector<SinkExpect> list;
    if (sinks->value.IsSequence()) {
      if (auto names = r.string_list(*sinks, "sink names")) {
        for (std::size_t i = 0; i < names->size(); ++i) {
          if (known_sink(sinks->value[i], config::index_path(sinks->path, i)))
            list.push_back({(*names)[i],
                            {},
                            location_of(r, sinks->value[i].Mark()),
                            config::index_path(sinks->path, i)});
        }
      }
    } else {
      const MapView by_name(r, sinks->value, sinks->key.Mark(), sinks->path);
      for (const auto& s : by_name.fields()) {
        if (!known_sink(s.key, s.path))
          continue;
        SinkExpect expect{s.key.Scalar(), {}, location_of(r, s.key.Mark()), s.path};
        if (!s.value.IsNull()) {
          const MapView targets(r, s.value, s.key.Mark(), s.path);
          targets.check_keys(target_fields(config.find_sink(expect.name)->type_name()));
          for (const auto& t : targets.fields()) {
            FieldExpect fe{t.key.Scalar(), std::nullopt, location_of(r, t.mark()), t.path};
            if (t.value.IsNull() && fe.field == "key") {
              expect.fields.push_back(std::move(fe));
            } else if (auto value = r.string(t, false)) {
              fe.value = std::move(*value);
              expect.fields.push_back(std::move(fe));
            }
          }
        }
        list.push_back(std::move(expect));
      }
    }
    out.sinks = std::move(list);
  }
  if (!out.routes && !out.sinks)
    r.error(f.key.Mark(), f.path, "expected routes, sinks or both");
  return r.error_count() == before;
}

// The `data` object of the case's realtime message, as JSON text; nullopt on errors (reported).
std::optional<std::string> case_data(Reader& r, const config::Config& config, const MapView& map) {
  const auto* record = map.get("record");
  const auto* event = map.get("event");
  if ((record != nullptr) == (event != nullptr)) {
    r.error(map.anchor(), map.path(),
            "expected either record (a realtime message's data) or event (with params and "
            "payload)");
    return std::nullopt;
  }
  std::string data;
  if (record != nullptr) {
    for (const auto* other : {"params", "database_type", "appwrite", "payload", "timestamp"}) {
      if (const auto* f = map.get(other))
        r.error(f->key.Mark(), f->path, std::string(other) + " goes with event, not record");
    }
    if (!record->value.IsMap()) {
      r.error(record->mark(), record->path,
              "expected a mapping (events, channels, timestamp, payload), got " +
                  config::kind_of(record->value));
      return std::nullopt;
    }
    if (!append_json(r, record->value, record->path, data))
      return std::nullopt;
    return data;
  }
  const auto pattern = r.string(*event);
  std::map<std::string, std::string> params;
  if (const auto* p = map.get("params")) {
    const MapView pmap(r, p->value, p->key.Mark(), p->path);
    for (const auto& field : pmap.fields()) {
      if (auto value = r.string(field))
        params[field.key.Scalar()] = *value;
    }
  }
  std::string database_type = "tablesdb";
  if (const auto* d = map.get("database_type")) {
    if (auto value = r.enumeration<std::string>(*d, {{"tablesdb", "tablesdb"},
                                                     {"legacy", "legacy"},
                                                     {"documentsdb", "documentsdb"},
                                                     {"vectorsdb", "vectorsdb"}}))
      database_type = *value;
  }
  // The Appwrite release whose fan-out rules expand the event: 1.8 publishes fewer channels
  // (no tablesdb.… ones, no action suffixes); servers newer than 1.9.6 ("main") name an
  // execution's channel by its payload's resourceId instead of functionId.
  auto profile = emulator::Profile::v1_9;
  if (const auto* v = map.get("appwrite")) {
    using P = emulator::Profile;
    if (auto value = r.enumeration<P>(*v, {{"1.9", P::v1_9}, {"1.8", P::v1_8}, {"main", P::main}}))
      profile = *value;
  }
  std::string timestamp(kDefaultTimestamp);
  if (const auto* t = map.get("timestamp")) {
    if (auto value = r.string(*t)) {
      if (upstream::parse_timestamp(*value)) {
        timestamp = *value;
      } else {
        r.error(t->mark(), t->path,
                "bad timestamp " + config::quote(*value) +
                    " (expected e.g. 2026-01-01T00:00:00.000+00:00)");
      }
    }
  }
  std::string payload = "{}";
  if (const auto* p = map.get("payload")) {
    payload.clear();
    if (!p->value.IsMap()) {
      r.error(p->mark(), p->path, "expected a mapping, got " + config::kind_of(p->value));
      return std::nullopt;
    }
    if (!append_json(r, p->value, p->path, payload))
      return std::nullopt;
  }
  if (!pattern)
    return std::nullopt;
  // The payload was built above from YAML, so it is a JSON object.
  const auto payload_object = boost::json::parse(payload).as_object();
  auto computed = emulator::compute_fanout(profile, *pattern, params, database_type, {"any"},
                                           emulator::Project{config.appwrite.project, "owners"},
                                           payload_object);
  if (const auto* message = std::get_if<std::string>(&computed)) {
    r.error(event->mark(), event->path, *message);
    return std::nullopt;
  }
  const auto& fanout = std::get<emulator::Fanout>(computed);
  if (fanout.channels.empty()) {
    r.error(event->mark(), event->path,
            "Appwrite publishes this event on no channel a project's connection can subscribe to");
    return std::nullopt;
  }
  const auto strings = [](const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0)
        out += ',';
      append_json_string(out, items[i]);
    }
    return out + "]";
  };
  data = "{\"events\":" + strings(fanout.events) + ",\"channels\":" + strings(fanout.channels) +
         ",\"timestamp\":";
  append_json_string(data, timestamp);
  data += ",\"payload\":" + payload + "}";
  return data;
}

void compare(const Expect& expect, const Routing& actual, CaseResult& result) {
  if (expect.routes && sorted(*expect.routes) != sorted(actual.routes)) {
    result.mismatches.push_back({expect.routes_at, expect.routes_path, list_text(*expect.routes),
                                 list_text(actual.routes)});
  }
  if (!expect.sinks)
    return;
  std::vector<std::string> expected_names;
  for (const auto& s : *expect.sinks)
    expected_names.push_back(s.name);
  std::vector<std::string> actual_names;
  for (const auto& d : actual.sinks)
    actual_names.push_back(d.sink);
  if (sorted(expected_names) != sorted(actual_names)) {
    result.mismatches.push_back(
        {expect.sinks_at, expect.sinks_path, list_text(expected_names), list_text(actual_names)});
  }
  for (const auto& s : *expect.sinks) {
    const auto d = std::find_if(actual.sinks.begin(), actual.sinks.end(),
                                [&](const Delivery& x) { return x.sink == s.name; });
    if (d == actual.sinks.end())
      continue;  // reported with the list of sinks
    if (!d->dead_letter.empty()) {
      result.mismatches.push_back(
          {s.location, s.path, "delivered", "would be dead-lettered: " + d->dead_letter});
    }
    for (const auto& f : s.fields) {
      const auto value = actual_field(*d, f.field);
      if (value != f.value)
        result.mismatches.push_back({f.location, f.path, shown(f.value), shown(value)});
    }
  }
}

// The `tests` list and the reader whose file it is in: the configuration, or the companion file
// it names (relative to the configuration's directory).
struct TestsSource {
  YAML::Node list;
  std::string file;
};

std::optional<TestsSource> find_tests(Reader& r, const YAML::Node& root, bool& found) {
  const MapView map(r, root, YAML::Mark(), "");
  const Field* tests = map.ok() ? map.get("tests") : nullptr;
  found = tests != nullptr;
  if (!found)
    return std::nullopt;
  if (tests->value.IsSequence())
    return TestsSource{tests->value, r.file()};
  auto name = r.string(*tests);
  if (!name)
    return std::nullopt;
  std::string path = *name;
  const auto slash = r.file().rfind('/');
  if (!path.starts_with('/') && slash != std::string::npos)
    path = r.file().substr(0, slash + 1) + path;
  YAML::Node companion;
  try {
    companion = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    r.error(tests->mark(), tests->path, "cannot read the test file " + config::quote(path));
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    r.error(tests->mark(), tests->path,
            "the test file " + config::quote(path) + " is not valid YAML: " + e.what());
    return std::nullopt;
  }
  const auto list = companion.IsMap() ? companion["tests"] : YAML::Node();
  if (!list || !list.IsSequence()) {
    r.error(tests->mark(), tests->path,
            "the test file " + config::quote(path) + " must hold a `tests:` list");
    return std::nullopt;
  }
  return TestsSource{list, path};
}

// The sinks whose webhook URL came from `${…}`: a secret, so a report or a captured case shows
// it (and a case compares it) as its scheme, host and port only, like /status.
std::vector<std::string> secret_urls(const std::string& path) {
  std::vector<std::string> out;
  try {
    const YAML::Node sinks = YAML::LoadFile(path)["sinks"];
    for (auto it = sinks.begin(); sinks.IsMap() && it != sinks.end(); ++it) {
      const YAML::Node url = it->second.IsMap() ? it->second["url"] : YAML::Node();
      if (url && url.IsScalar() && url.Scalar().find("${") != std::string::npos)
        out.push_back(it->first.Scalar());
    }
  } catch (const YAML::Exception&) {
    // The loader read it a moment ago; a file that changed since has no secret URL to hide.
  }
  return out;
}

Routing route_shown(const config::Config& config, const Router& router, const Event& event,
                    const std::vector<std::string>& secret_url_sinks) {
  auto routing = route_offline(config, router, event);
  for (auto& d : routing.sinks) {
    if (std::find(secret_url_sinks.begin(), secret_url_sinks.end(), d.sink) !=
        secret_url_sinks.end()) {
      d.url = config::redacted_url(d.url, true);
    }
  }
  return routing;
}

std::string case_name(const std::string& first_event, const std::string& id) {
  return first_event + " " + id.substr(0, 8);
}

// Test cases and their report are printed: `${…}` in them is refused rather than resolved, so
// no secret reaches the output (and no relative `${file:…}` is read from the wrong directory).
config::InterpolationEnv test_case_env() {
  config::InterpolationEnv env;
  env.refused =
      "test cases are printed, so they hold no secrets; write the value itself (a secret "
      "webhook URL as the report shows it, e.g. https://hooks.example.com/…)";
  return env;
}

}  // namespace

std::size_t TestRun::failed() const {
  return static_cast<std::size_t>(std::count_if(
      cases.begin(), cases.end(), [](const CaseResult& c) { return !c.mismatches.empty(); }));
}

Routing route_offline(const config::Config& config, const Router& router, const Event& event) {
  RouteResult result;
  router.route(event, result);
  Routing out;
  for (const auto route : result.matched)
    out.routes.emplace_back(router.route_name(route));
  auto targets = result.targets;
  std::sort(targets.begin(), targets.end(),
            [](const RouteTarget& a, const RouteTarget& b) { return a.sink < b.sink; });
  for (const auto& t : targets) {
    const auto& sink = config.sinks[t.sink];
    Delivery d;
    d.sink = sink.name;
    d.route = std::string(t.route_name.view());
    const std::string_view channel =
        t.channel < event.channels.size() ? event.channels[t.channel] : std::string_view{};
    const TemplateContext context{t.route_name.view(), channel, config.appwrite.project};
    const auto type = sink.type_name();
    if (type == sinks::KafkaSinkConfig::kType) {
      const auto& kafka = sink.settings_as<sinks::KafkaSinkConfig>();
      d.topic = kafka.topic.render(event, context);
      d.dead_letter = sinks::check_rendered_topic(d.topic);
      if (kafka.key) {
        // As the Kafka sink does: an empty key is a null key.
        if (auto key = kafka.key->render(event, context); !key.empty())
          d.key = std::move(key);
      }
    } else if (type == sinks::FileSinkConfig::kType) {
      const auto& file = sink.settings_as<sinks::FileSinkConfig>();
      d.path = file.path.render(event, context);
      d.dead_letter = sinks::check_rendered_path(file, d.path);
    } else {
      d.url = sink.settings_as<sinks::WebhookSinkConfig>().url;
    }
    out.sinks.push_back(std::move(d));
  }
  return out;
}

EventPtr event_from_data(std::string_view project, std::string_view data, std::string& error,
                         std::optional<std::chrono::system_clock::time_point> received) {
  upstream::FrameDecoder decoder{std::string(project)};
  std::string frame = "{\"type\":\"event\",\"data\":";
  frame += data;
  frame += '}';
  auto decoded = decoder.decode(std::move(frame), false, std::chrono::steady_clock::now(),
                                received.value_or(std::chrono::system_clock::now()));
  if (decoded.kind != upstream::FrameKind::event) {
    error = decoded.invalid_reason == "json"
                ? "not valid JSON"
                : "not a realtime event's data (it needs events, channels, timestamp and payload)";
    return nullptr;
  }
  if (decoded.timestamp_fallback && !received) {
    error = "its timestamp is missing or malformed";
    return nullptr;
  }
  return decoded.event;
}

TestRun run_tests(const config::Config& config) {
  TestRun run;
  Reader config_reader(config.path, test_case_env());
  YAML::Node root;
  try {
    root = YAML::LoadFile(config.path);
  } catch (const YAML::Exception& e) {
    config_reader.error(YAML::Mark(), "",
                        std::string("cannot read the configuration: ") + e.what());
    run.errors = config_reader.take_errors();
    return run;
  }
  auto source = find_tests(config_reader, root, run.found);
  run.errors = config_reader.take_errors();
  if (!source)
    return run;

  Reader r(source->file, test_case_env());
  const Router router(config);
  const auto hidden = secret_urls(config.path);
  const std::vector<std::string> keys = {"name",          "event",    "params",
                                         "database_type", "appwrite", "payload",
                                         "timestamp",     "record",   "expect"};
  for (std::size_t i = 0; i < source->list.size(); ++i) {
    const YAML::Node item = source->list[i];
    const std::string path = config::index_path("tests", i);
    const MapView map(r, item, item.Mark(), path);
    if (!map.ok())
      continue;
    const auto before = r.error_count();
    map.check_keys(keys);
    CaseResult result;
    result.path = path;
    result.location = location_of(r, item.Mark());
    if (const auto* name = map.require("name", "what the case checks"))
      result.name = r.string(*name).value_or("");
    Expect expect;
    const auto* expect_field = map.require("expect", "the routes and sinks it should reach");
    if (expect_field)
      read_expect(r, config, *expect_field, expect);
    const auto data = case_data(r, config, map);
    if (r.error_count() != before || !data)
      continue;
    std::string error;
    const auto event = event_from_data(config.appwrite.project, *data, error);
    if (!event) {
      const auto* at = map.get("record") ? map.get("record") : map.get("event");
      r.error(at->mark(), at->path, "the message is " + error);
      continue;
    }
    compare(expect, route_shown(config, router, *event, hidden), result);
    run.cases.push_back(std::move(result));
  }
  for (auto& e : r.take_errors())
    run.errors.push_back(std::move(e));
  return run;
}

std::string format_report(const TestRun& run) {
  std::string out;
  const auto where = [](const config::Location& l) {
    return l.file + ":" + std::to_string(l.line) + ":" + std::to_string(l.column);
  };
  for (const auto& c : run.cases) {
    out += where(c.location) + ": " + c.path + " " + config::quote(c.name) + ": " +
           (c.mismatches.empty() ? "ok" : "FAILED") + "\n";
    for (const auto& m : c.mismatches) {
      out += "  " + where(m.location) + ": " + m.path + "\n";
      out += "    expected: " + m.expected + "\n";
      out += "    actual:   " + m.actual + "\n";
    }
  }
  const auto failed = run.failed();
  out += std::to_string(run.cases.size()) + " test case" + (run.cases.size() == 1 ? "" : "s") +
         ": " + std::to_string(run.cases.size() - failed) + " passed, " + std::to_string(failed) +
         " failed";
  if (!run.errors.empty())
    out += ", " + std::to_string(run.errors.size()) + " not run (see the errors above)";
  out += "\n";
  return out;
}

std::optional<std::string> capture_cases(const config::Config& config, std::istream& in,
                                         const std::string& name, std::string& error) {
  const Router router(config);
  const auto hidden = secret_urls(config.path);
  std::string out = "tests:\n";
  std::string line;
  std::size_t number = 0;
  std::size_t count = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    const std::string at = name + ":" + std::to_string(number) + ": ";
    // A dead-letter line holds the record under `record`; a file sink's line is the record.
    std::string why;
    const auto dead_letter = parse_dead_letter_line(line, why);
    const std::string data = dead_letter ? dead_letter->record : line;
    const auto event = event_from_data(config.appwrite.project, data, why);
    if (!event) {
      error = at + "the record is " + why;
      return std::nullopt;
    }
    const auto routing = route_shown(config, router, *event, hidden);
    ++count;
    std::string name_text;
    append_json_string(name_text, case_name(std::string(event->first_event()), event->id));
    out += "  - name: " + name_text + "\n";
    out += "    record: " + std::string(event->data) + "\n";
    out += "    expect:\n";
    std::vector<std::string> routes;
    for (const auto& r : routing.routes) {
      std::string quoted;
      append_json_string(quoted, r);
      routes.push_back(std::move(quoted));
    }
    out += "      routes: " + list_text(routes) + "\n";
    if (routing.sinks.empty()) {
      out += "      sinks: []\n";
      continue;
    }
    out += "      sinks:\n";
    for (const auto& d : routing.sinks) {
      const auto type = config.find_sink(d.sink)->type_name();
      std::string fields;
      for (const auto& field : target_fields(type)) {
        const auto value = actual_field(d, field);
        if (!fields.empty())
          fields += ", ";
        fields += field + ": ";
        if (value) {
          append_json_string(fields, *value);
        } else {
          fields += "null";
        }
      }
      std::string sink_name;
      append_json_string(sink_name, d.sink);
      out += "        " + sink_name + ": {" + fields + "}\n";
    }
  }
  if (count == 0) {
    error = name + ": no records";
    return std::nullopt;
  }
  return out;
}

}  // namespace sluice::tools
