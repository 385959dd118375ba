// libFuzzer target: a template source through Template::parse and, when it parses, render on a
// fixed event. The first byte chooses a file-path template (strftime allowed, event-derived text
// sanitised) or a plain one.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/template.hpp"
#include "daemon/upstream/decoder.hpp"

namespace {

sluice::EventPtr fixed_event() {
  sluice::upstream::FrameDecoder decoder{"fuzz"};
  std::string frame =
      R"({"type":"event","data":{"events":["databases.shop.tables.orders.rows.o1.create",)"
      R"("databases.*.tables.*.rows.*.create"],"channels":["databases.shop.tables.orders.rows",)"
      R"("rows"],"timestamp":"2026-08-21T12:34:56.789+00:00","payload":{"$id":"o1","total":150,)"
      R"("name":"../../etc/passwd","nested":{"a":[1,{"b":"\u00e9\n/x"}]},"nil":null,)"
      R"("status":"paid"},"subscriptions":["s1"]}})";
  auto f = decoder.decode(std::move(frame), false, std::chrono::steady_clock::now(),
                          std::chrono::system_clock::now());
  if (f.kind != sluice::upstream::FrameKind::event)
    std::abort();
  return f.event;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const sluice::EventPtr event = fixed_event();
  if (size == 0)
    return 0;
  const bool path = (data[0] & 1) != 0;
  const std::string_view source(reinterpret_cast<const char*>(data) + 1, size - 1);
  sluice::Template t;
  sluice::Template::Error error;
  if (!sluice::Template::parse(source, path, t, error)) {
    if (error.offset > source.size())
      std::abort();
    return 0;
  }
  const sluice::TemplateContext context{"route-a", "databases.shop.tables.orders.rows", "shop"};
  const auto out = t.render(*event, context);
  // A file path never gains a "." or ".." segment from event data: with no dot written outside
  // the placeholders, no segment of the output may be made of dots only.
  if (path) {
    // NUL the operator wrote is theirs (the loader's concern); event data never adds one.
    if (source.find('\0') == std::string_view::npos && out.find('\0') != std::string::npos)
      std::abort();
    std::string literal;
    int depth = 0;
    for (char c : source) {
      if (c == '{')
        ++depth;
      else if (c == '}' && depth > 0)
        --depth;
      else if (depth == 0)
        literal += c;
    }
    // Escaped braces ({{ }}) would confuse the count above: such sources are not checked.
    const bool escapes =
        source.find("{{") != std::string_view::npos || source.find("}}") != std::string_view::npos;
    if (!escapes && literal.find('.') == std::string::npos) {
      std::size_t start = 0;
      while (start <= out.size()) {
        auto end = out.find('/', start);
        if (end == std::string::npos)
          end = out.size();
        const auto segment = std::string_view(out).substr(start, end - start);
        if (segment == "." || segment == "..")
          std::abort();
        start = end + 1;
      }
    }
  }
  return 0;
}
