// kafka-mock-broker: librdkafka's in-process mock cluster (rdkafka_mock.h) run as its own
// process, so tests, the demo and benchmarks can talk to a Kafka-compatible cluster on loopback
// without a JVM.
//
//   kafka-mock-broker [--brokers N] [--partitions N] [--topic NAME[:PARTITIONS]]...
//
// Prints `bootstrap HOST:PORT,HOST:PORT,...` as its first stdout line, then reads commands from
// stdin, one per line, and answers each with one line, `ok` or `error: MESSAGE`:
//
//   topic NAME PARTITIONS            create a topic (replication factor = broker count)
//   down BROKER_ID | up BROKER_ID    take a broker down (connections closed) or back up
//   errors API COUNT ERROR           the next COUNT requests of API (Produce, Fetch, Metadata,
//                                    InitProducerId or a number) fail with ERROR (a librdkafka
//                                    error name such as NOT_LEADER_FOR_PARTITION)
//   topic-error NAME ERROR           Metadata reports ERROR for topic NAME (NO_ERROR clears it)
//   leader TOPIC PARTITION BROKER_ID move a partition's leader
//   clear                            drop pending injected errors
//
// Runs until SIGTERM or SIGINT (end of stdin does not stop it, so it can run in the background).
// Owner: the process's main thread; the mock cluster runs its own librdkafka threads.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) {
  g_stop = 1;
}

std::optional<rd_kafka_resp_err_t> error_by_name(const std::string& name) {
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name && name == descs[i].name)
      return descs[i].code;
  }
  if (name == "NO_ERROR")
    return RD_KAFKA_RESP_ERR_NO_ERROR;
  return std::nullopt;
}

std::optional<int16_t> api_by_name(const std::string& name) {
  static const std::map<std::string, int16_t> kApis = {{"Produce", 0},      {"Fetch", 1},
                                                       {"ListOffsets", 2},  {"Metadata", 3},
                                                       {"OffsetCommit", 8}, {"FindCoordinator", 10},
                                                       {"ApiVersions", 18}, {"InitProducerId", 22}};
  if (const auto it = kApis.find(name); it != kApis.end())
    return it->second;
  char* end = nullptr;
  const long v = std::strtol(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0' && v >= 0 && v < 100)
    return static_cast<int16_t>(v);
  return std::nullopt;
}

bool parse_int(const std::string& s, int& out) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 0 || v > 1000000)
    return false;
  out = static_cast<int>(v);
  return true;
}

std::string run_command(rd_kafka_mock_cluster_t* mc, const std::string& line, int brokers) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string t; in >> t;)
    w.push_back(t);
  if (w.empty())
    return "error: empty command";
  const std::string& cmd = w[0];
  int a = 0;
  int b = 0;
  if (cmd == "topic" && w.size() == 3 && parse_int(w[2], a) && a > 0) {
    const auto err = rd_kafka_mock_topic_create(mc, w[1].c_str(), a, brokers);
    return err ? std::string("error: ") + rd_kafka_err2str(err) : "ok";
  }
  if ((cmd == "down" || cmd == "up") && w.size() == 2 && parse_int(w[1], a)) {
    const auto err =
        cmd == "down" ? rd_kafka_mock_broker_set_down(mc, a) : rd_kafka_mock_broker_set_up(mc, a);
    return err ? std::string("error: ") + rd_kafka_err2str(err) : "ok";
  }
  if (cmd == "errors" && w.size() == 4) {
    const auto api = api_by_name(w[1]);
    const auto err = error_by_name(w[3]);
    if (!api)
      return "error: unknown API " + w[1];
    if (!err)
      return "error: unknown error name " + w[3];
    if (!parse_int(w[2], a) || a == 0)
      return "error: COUNT must be a positive number";
    std::vector<rd_kafka_resp_err_t> errs(static_cast<size_t>(a), *err);
    rd_kafka_mock_push_request_errors_array(mc, *api, errs.size(), errs.data());
    return "ok";
  }
  if (cmd == "topic-error" && w.size() == 3) {
    const auto err = error_by_name(w[2]);
    if (!err)
      return "error: unknown error name " + w[2];
    rd_kafka_mock_topic_set_error(mc, w[1].c_str(), *err);
    return "ok";
  }
  if (cmd == "leader" && w.size() == 4 && parse_int(w[2], a) && parse_int(w[3], b)) {
    const auto err = rd_kafka_mock_partition_set_leader(mc, w[1].c_str(), a, b);
    return err ? std::string("error: ") + rd_kafka_err2str(err) : "ok";
  }
  if (cmd == "clear" && w.size() == 1) {
    for (int16_t api = 0; api < 70; ++api)
      rd_kafka_mock_clear_request_errors(mc, api);
    return "ok";
  }
  return "error: unknown command or wrong arguments: " + line;
}

int usage() {
  std::fprintf(stderr,
               "usage: kafka-mock-broker [--brokers N] [--partitions N] "
               "[--topic NAME[:PARTITIONS]]...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  int partitions = 4;
  std::vector<std::string> topics;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    }
    if (i + 1 >= argc)
      return usage();
    const std::string value = argv[++i];
    if (arg == "--brokers") {
      if (!parse_int(value, brokers) || brokers < 1)
        return usage();
    } else if (arg == "--partitions") {
      if (!parse_int(value, partitions) || partitions < 1)
        return usage();
    } else if (arg == "--topic") {
      topics.push_back(value);
    } else {
      return usage();
    }
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The handle only hosts the mock cluster; keep its own logging quiet.
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    std::fprintf(stderr, "kafka-mock-broker: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    std::fprintf(stderr, "kafka-mock-broker: could not create the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  for (const auto& spec : topics) {
    const auto colon = spec.rfind(':');
    std::string name = spec;
    int n = partitions;
    if (colon != std::string::npos) {
      name = spec.substr(0, colon);
      if (!parse_int(spec.substr(colon + 1), n) || n < 1)
        return usage();
    }
    if (const auto err = rd_kafka_mock_topic_create(mc, name.c_str(), n, brokers)) {
      std::fprintf(stderr, "kafka-mock-broker: topic %s: %s\n", name.c_str(),
                   rd_kafka_err2str(err));
      return 1;
    }
  }

  std::printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  std::fflush(stdout);

  std::string buffer;
  bool stdin_open = true;
  while (!g_stop) {
    if (!stdin_open) {
      pause();  // a signal ends the wait
      continue;
    }
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    const int n = ::poll(&pfd, 1, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    char chunk[4096];
    const ssize_t got = ::read(STDIN_FILENO, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      stdin_open = false;
      continue;
    }
    buffer.append(chunk, static_cast<size_t>(got));
    for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r')
        line.pop_back();
      if (line.empty())
        continue;
      std::printf("%s\n", run_command(mc, line, brokers).c_str());
      std::fflush(stdout);
    }
  }

  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
