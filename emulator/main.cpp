// appwrite-emulator: a protocol-faithful stand-in for an Appwrite server (realtime, a few REST
// endpoints, control endpoints for tests). See --help and the README.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/log.hpp"
#include "emulator/engine.hpp"
#include "emulator/server.hpp"

namespace {

constexpr std::string_view kHelp = R"help(usage: appwrite-emulator [options]

A stand-in for an Appwrite server for tests, demos and benchmarks: the realtime WebSocket
protocol (/v1/realtime), a few REST endpoints, and control endpoints to publish events.

Options:
  --listen HOST:PORT     address to listen on (default 127.0.0.1:8080; port 0 picks a free
                         one). The first line on stdout is "listening on HOST:PORT".
  --profile 1.9|main|1.8 behave like Appwrite 1.9.6 (default: URL and message subscriptions,
                         subscription ids), like Appwrite's main branch after 1.9.6 (as 1.9,
                         plus ?jwt= and executions named by resourceId/resourceType; it
                         reports version 1.9.6 too, as that branch does), or like 1.8.1 (URL
                         subscriptions only)
  --project ID           a known project id; repeatable (default: one project, "test").
                         Other ids get error 1008 "Missing or unknown project ID".
  --fixtures FILE        JSON seeding projects and users:
                         {"projects": ["shop", {"id": "crm", "team": "acme"}],
                          "users": [{"id": "alice", "email": "a@x.io", "password": "pw",
                                     "name": "Alice", "teams": ["t1"], "labels": ["vip"],
                                     "email_verified": true, "secret": "fixed-secret"}]}
                         A user with "secret" gets a session whose token is
                         base64({"id":"alice","secret":"fixed-secret"}). A project's "team"
                         is its owner team (default "owners"): only its members receive
                         `reports` events.
  --api-key KEY          the X-Appwrite-Key accepted by POST /v1/users/{id}/sessions and
                         POST /v1/users/{id}/jwts (without it those endpoints answer 401)
  --tls-cert FILE        PEM certificate chain; with --tls-key, connections that start with a
  --tls-key FILE         TLS handshake are served as https/wss on the same port (plain ones too)
  --dev-errors           do not mask error messages (Appwrite's development mode); by default
                         messages of codes 0 and >= 500 read "Error: Server Error"
  --open-delay MS        how long the handshake takes before "connected" (default 50): a
                         message other than ping sent before "connected" gets 1008 "Missing
                         project context. Reconnect to the project first." and a close, as
                         on Appwrite, whose handshake reads the database first
  --log-level LEVEL      debug, info (default), warn or error; logs go to stderr
  -h, --help             this text

Realtime (GET /v1/realtime, WebSocket): project from X-Appwrite-Project then ?project= (1.8:
the other way round); auth by cookie a_session_<project>[_legacy], X-Appwrite-Session,
X-Fallback-Cookies, X-Appwrite-JWT or ?jwt= (main only); channels[]=… in the URL; messages
ping, authentication, and from 1.9 subscribe/unsubscribe (re-using a subscription id
replaces the queries of the channels it lists only). An Origin header must name host
localhost. A team or membership event with a "userId" param re-subscribes that user's
connections with the user's current teams, silently (permissionsChanged).
Limits, as Appwrite's: 128 connects per 60 s per client IP and path (error 1013 "Too many
requests", then close); 32 messages per 60 s per connection, pings included (1013, the
connection stays open); frames over 64000 bytes drop the connection; a session in
"authentication" is at most 2048 characters; a subscriptionId is at most 36 characters of
a-z A-Z 0-9 . - _ (or "unique()"). Appwrite counts in minutes aligned to its clock; the
emulator refuses whenever some alignment would (any 60 s), so passing here means passing
there. POST /_emulator/clock moves that clock forward.

REST (Appwrite models and error bodies):
  GET  /v1/health/version           {"version": "1.9.6" | "1.8.1"} (main: "1.9.6")
  GET  /v1/account                  the Account of the session or JWT; 401 otherwise
  POST /v1/account/sessions/email   {"email","password"} -> Session; "secret" is the token
  POST /v1/users/{id}/sessions      (X-Appwrite-Key) -> Session with the token in "secret"
  POST /v1/users/{id}/jwts          (X-Appwrite-Key) {"sessionId"? (one of the user's, or
                                    "recent"; otherwise the JWT has no session), "duration"?
                                    seconds, default 900, 0 = already expired} -> {"jwt"}
  DELETE /v1/users/{id}/sessions/{sessionId}  (X-Appwrite-Key) -> 204
  GET  /v1/tablesdb[/{db}[/tables[/{table}/rows]]]
  GET  /v1/databases[/{db}[/collections[/{collection}/documents]]]
  GET  /v1/storage/buckets[/{bucket}/files]
                                    the latest version of every row, document and file
                                    /_emulator/publish created, updated or upserted (a delete
                                    removes it); rows and documents are one store. queries[]
                                    as Appwrite's JSON (filters, orderAsc/orderDesc, limit
                                    (default 25), offset, cursorAfter/cursorBefore, select),
                                    total=false; "total" counts at most 5000, as Appwrite.
                                    X-Appwrite-Key sees everything and alone may list databases,
                                    tables and buckets; a session or JWT sees what its roles
                                    may read; a guest read("any") and read("guests").
  REST answers carry a Date header from the emulator's clock (see /_emulator/clock).

Control (no authentication; loopback clients only):
  POST /_emulator/publish      {"event": "databases.[databaseId].tables.[tableId].rows.[rowId].update",
                                "params": {...}, "database_type": "tablesdb", "payload": {...},
                                "read": ["any"], "project"?: ID}
                               -> {"events","channels","timestamp","delivered"}
  POST /_emulator/stream       a publish body plus "count" (default 1) and "rate" (events/s,
                               0 = as fast as the readers take them); payloads get "seq"
                               1..count; connections present at the start receive them
                               -> {"sent","delivered","seconds"} when done
  POST /_emulator/disconnect   {"user"?: ID (null: guests)} drops matching connections
                               (all without "user") with a TCP close -> {"disconnected"}
  GET  /_emulator/connections  [{"id","project","user","session","roles","channels",
                               "subscriptions","remote"}] ("session": the one it authenticated
                               with, null for none)
  POST /_emulator/users        {"id"?,"email"?,"password"?,"name"?,"teams"?,"labels"?,
                                "secret"?} creates or replaces a user
                               -> {"userId","session","sessionId"}
  GET  /_emulator/sessions     [{"$id","userId","provider","expire","expired","jwts",
                               "jwtExpire"}] ("jwts": how many JWTs were minted for it)
  POST /_emulator/sessions     {"session": ID, "action": "revoke"|"expire", "when"?: "now"|
                               "handshake"}: deletes the session or ends it, now or at the
                               next realtime handshake (after a client's REST check)
  POST /_emulator/clock        {"advance": SECONDS} moves the emulator's clock forward (no
                               sleeping in tests): the abuse limits' windows, sessions and
                               JWTs -> {"advanced": total, "now"}
  POST /_emulator/outage       {"seconds": S}: closes every realtime connection (TCP close)
                               and answers realtime upgrades 503 for S seconds of the
                               emulator's clock (/_emulator/clock shortens it; 0 ends it);
                               REST keeps answering. GET shows {"active","remaining"}

Execution events (functions.[functionId].executions.[executionId].update) take the function
from the payload as each version does: "functionId" on 1.9 and 1.8, "resourceId" with
"resourceType" ("functions" or "sites") on main; the channel is functions.<that id>.

SIGTERM and SIGINT stop the emulator with exit code 0.
)help";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "appwrite-emulator: " << message << " (see --help)\n";
  std::exit(2);
}

boost::asio::ip::tcp::endpoint parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos)
    usage_error("--listen needs HOST:PORT");
  auto host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost")
    host = "127.0.0.1";
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  if (ec)
    usage_error("--listen: not an IP address: " + host);
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || port > 65535)
      throw std::out_of_range("port");
  } catch (const std::exception&) {
    usage_error("--listen: invalid port in " + text);
  }
  return {address, static_cast<unsigned short>(port)};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "appwrite-emulator: cannot read " << path << "\n";
    std::exit(1);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice::emulator;
  Options options;
  std::string listen = "127.0.0.1:8080";
  std::string fixtures;
  std::string tls_cert;
  std::string tls_key;
  std::string profile_name = "1.9";
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto arg = args[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= args.size())
        usage_error(std::string(arg) + " needs a value");
      return std::string(args[++i]);
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kHelp;
      return 0;
    } else if (arg == "--listen") {
      listen = value();
    } else if (arg == "--profile") {
      const auto p = value();
      profile_name = p;
      if (p == "1.9") {
        options.profile = Profile::v1_9;
      } else if (p == "main") {
        options.profile = Profile::main;
      } else if (p == "1.8") {
        options.profile = Profile::v1_8;
      } else {
        usage_error("--profile must be 1.9, main or 1.8");
      }
    } else if (arg == "--project") {
      options.projects.push_back(Project{value(), std::string(kDefaultOwnerTeam)});
    } else if (arg == "--open-delay") {
      const auto text = value();
      unsigned long ms = 0;
      try {
        std::size_t used = 0;
        ms = std::stoul(text, &used);
        if (used != text.size() || ms > 60000)
          throw std::out_of_range("delay");
      } catch (const std::exception&) {
        usage_error("--open-delay takes milliseconds, 0 to 60000");
      }
      options.open_delay = std::chrono::milliseconds(ms);
    } else if (arg == "--fixtures") {
      fixtures = value();
    } else if (arg == "--api-key") {
      options.api_key = value();
    } else if (arg == "--tls-cert") {
      tls_cert = value();
    } else if (arg == "--tls-key") {
      tls_key = value();
    } else if (arg == "--dev-errors") {
      options.dev_errors = true;
    } else if (arg == "--log-level") {
      const auto level = sluice::log::parse_level(value());
      if (!level)
        usage_error("--log-level must be debug, info, warn or error");
      sluice::log::configure(*level, sluice::log::Format::text);
    } else {
      usage_error("unknown option " + std::string(arg));
    }
  }
  if (tls_cert.empty() != tls_key.empty())
    usage_error("--tls-cert and --tls-key go together");
  const auto where = parse_listen(listen);

  // The io_context outlives nothing that uses it: the Engine holds peers whose sockets belong
  // to it, so it is destroyed first.
  boost::asio::io_context io(1);
  Engine engine(std::move(options));
  if (!fixtures.empty()) {
    if (auto error = engine.load_fixtures(read_file(fixtures)); !error.empty()) {
      std::cerr << "appwrite-emulator: " << fixtures << ": " << error << "\n";
      return 1;
    }
  }

  std::shared_ptr<boost::asio::ssl::context> tls;
  try {
    if (!tls_cert.empty()) {
      tls = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
      tls->use_certificate_chain_file(tls_cert);
      tls->use_private_key_file(tls_key, boost::asio::ssl::context::pem);
    }
  } catch (const std::exception& e) {
    std::cerr << "appwrite-emulator: TLS: " << e.what() << "\n";
    return 1;
  }

  Server server(io, engine, tls);
  boost::asio::ip::tcp::endpoint bound;
  try {
    bound = server.listen(where);
  } catch (const std::exception& e) {
    std::cerr << "appwrite-emulator: cannot listen on " << listen << ": " << e.what() << "\n";
    return 1;
  }
  const auto address = bound.address().to_string();
  std::printf("listening on %s:%u\n",
              bound.address().is_v6() ? ("[" + address + "]").c_str() : address.c_str(),
              static_cast<unsigned>(bound.port()));
  std::fflush(stdout);
  sluice::log::info("emulator", "started",
                    {{"profile", profile_name},
                     {"version", std::string(engine.version())},
                     {"tls", tls ? "yes" : "no"}});

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec)
      return;
    server.stop();
    io.stop();
  });
  server.start();
  io.run();
  return 0;
}
