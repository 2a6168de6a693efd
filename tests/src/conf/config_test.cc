// Config: flags, the JSON file, flags over the file, errors that name the
// setting, sizes, addresses.
#include "src/conf/config.h"
#include "src/worker/serve_options.h"

#include "engine/disk_space.h"
#include "engine/env.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kingx {
namespace {

engine::Result<ParsedCommandLine> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "kingx");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

// A JSON file in a fresh temporary directory, removed with the object.
struct TempFile {
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/kingx-config-test-XXXXXX";
    const int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    path = tmpl;
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
  }
  ~TempFile() { unlink(path.c_str()); }
  std::string path;
};

std::string ErrorOf(const engine::Result<ParsedCommandLine>& r) {
  REQUIRE_FALSE(r.ok());
  return std::string(r.status().message());
}

}  // namespace

TEST_CASE("no flags give the documented defaults", "[src][config]") {
  auto r = Parse({});
  REQUIRE(r.ok());
  const Config& c = r->config;
  CHECK(r->command == Command::kRun);
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0].ToString() == "127.0.0.1:8080");
  CHECK_FALSE(c.admin_listen.has_value());
  CHECK(c.data_dir == "./data");
  CHECK(c.workers == static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  CHECK(c.model == Model::kEvent);
  CHECK(c.threads == 150);
  CHECK(c.accept == AcceptMode::kReusePort);
  CHECK_FALSE(c.single_process);
  CHECK(c.sync == engine::SyncMode::kAlways);
  CHECK(c.sync_depth == 1);  // README: one fdatasync at a time unless --sync-depth says more
  CHECK(c.commit_delay_us == 0);  // README: no commit delay unless --commit-delay-us says one
  CHECK(c.max_value_bytes == 64ull << 20);
  CHECK(c.max_key_bytes == 1024);
  // auto: from the size of the disk that holds ./data.
  CHECK(c.segment_bytes_auto);
  auto fs_bytes = engine::FileSystemBytes(engine::PosixEnv(), "./data");
  REQUIRE(fs_bytes.ok());
  CHECK(c.segment_bytes == engine::AutoSegmentBytes(fs_bytes.value()));
  CHECK(c.disk_reserve_auto);
  CHECK(c.disk_reserve_bytes == engine::AutoDiskReserveBytes(c.segment_bytes));
  CHECK(c.EngineOptions().disk_reserve_bytes == c.disk_reserve_bytes);
  CHECK(c.compaction_dead_ratio == 0.5);
  CHECK(c.compression_level == 1);
  CHECK(c.max_connections == 10000);
  CHECK(c.keepalive_timeout_ms == 75000);
  CHECK(c.header_timeout_ms == 10000);
  CHECK(c.body_timeout_ms == 60000);
  CHECK(c.storage_timeout_ms == 30000);
  CHECK(c.write_queue_bytes == 64ull << 20);
  CHECK(c.body_buffer_bytes == 64ull << 20);
  CHECK(c.response_buffer_bytes == 32ull << 20);
  CHECK(c.staging_bytes == 1ull << 30);
  CHECK(c.body_spill_bytes == 1ull << 30);
  CHECK(c.send_lowat_bytes == 16u << 10);
  CHECK(c.access_log.empty());
  CHECK(c.access_log_format == AccessLogFormat::kCombined);
  CHECK(c.error_log.empty());
  CHECK(c.log_level == LogLevel::kInfo);
  CHECK(c.trusted_proxies.empty());
  CHECK(c.pid_file.empty());
}

TEST_CASE("flags set every setting, with a space or '=' before the value", "[src][config]") {
  auto r = Parse({"--listen", "127.0.0.1:9000", "--listen=[::1]:9001", "--admin-listen", "127.0.0.1:9100",
                  "--data=/srv/kv", "--workers", "3", "--model", "threads", "--threads", "16", "--accept", "shared",
                  "--single-process", "--sync", "interval:25", "--max-value-bytes", "2M", "--max-key-bytes", "512",
                  "--segment-bytes", "1G", "--disk-reserve-bytes", "300M", "--compaction-dead-ratio", "0.25",
                  "--compression-level", "0",
                  "--max-connections", "77", "--keepalive-timeout-ms", "5", "--header-timeout-ms", "6",
                  "--body-timeout-ms", "7", "--send-timeout-ms", "8", "--storage-timeout-ms", "1500", "--write-queue-bytes", "8M",
                  "--body-buffer-bytes", "9M", "--response-buffer-bytes", "10M", "--staging-bytes", "11M",
                  "--send-lowat-bytes", "0", "--access-log", "/tmp/a.log",
                  "--access-log-format", "json", "--error-log", "/tmp/e.log", "--log-level", "debug",
                  "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1", "--pid", "/tmp/k.pid"});
  REQUIRE(r.ok());
  const Config& c = r->config;
  REQUIRE(c.listen.size() == 2);
  CHECK(c.listen[0].ToString() == "127.0.0.1:9000");
  CHECK(c.listen[1].ToString() == "[::1]:9001");
  REQUIRE(c.admin_listen.has_value());
  CHECK(c.admin_listen->port == 9100);
  CHECK(c.data_dir == "/srv/kv");
  CHECK(c.workers == 3);
  CHECK(c.model == Model::kThreads);
  CHECK(c.threads == 16);
  CHECK(c.accept == AcceptMode::kShared);
  CHECK(c.single_process);
  CHECK(c.sync == engine::SyncMode::kInterval);
  CHECK(c.sync_interval_ms == 25);
  CHECK(c.max_value_bytes == 2u << 20);
  CHECK(c.max_key_bytes == 512);
  CHECK(c.segment_bytes == 1ull << 30);
  CHECK_FALSE(c.segment_bytes_auto);
  CHECK(c.disk_reserve_bytes == 300ull << 20);
  CHECK_FALSE(c.disk_reserve_auto);
  CHECK(c.compaction_dead_ratio == 0.25);
  CHECK(c.compression_level == 0);
  CHECK(c.max_connections == 77);
  CHECK(c.keepalive_timeout_ms == 5);
  CHECK(c.header_timeout_ms == 6);
  CHECK(c.body_timeout_ms == 7);
  CHECK(c.send_timeout_ms == 8);
  CHECK(c.storage_timeout_ms == 1500);
  CHECK(c.write_queue_bytes == 8u << 20);
  CHECK(c.body_buffer_bytes == 9u << 20);
  CHECK(c.response_buffer_bytes == 10u << 20);
  CHECK(c.staging_bytes == 11u << 20);
  CHECK(c.send_lowat_bytes == 0);
  CHECK(c.access_log == "/tmp/a.log");
  CHECK(c.access_log_format == AccessLogFormat::kJson);
  CHECK(c.error_log == "/tmp/e.log");
  CHECK(c.log_level == LogLevel::kDebug);
  REQUIRE(c.trusted_proxies.size() == 2);
  CHECK(c.trusted_proxies[0].prefix_bits == 8);
  CHECK(c.trusted_proxies[1].ipv6);
  CHECK(c.pid_file == "/tmp/k.pid");
}

TEST_CASE("the JSON file sets settings and flags override it", "[src][config]") {
  TempFile file(R"({"listen": ["127.0.0.1:7000", "127.0.0.1:7001"], "workers": 2, "sync": "none",
                    "max_value_bytes": "1M", "compaction_dead_ratio": 0.75, "single_process": true,
                    "access_log": "off", "trusted_proxy": "192.168.0.0/16"})");
  auto from_file = Parse({"--config", file.path});
  REQUIRE(from_file.ok());
  CHECK(from_file->config.listen.size() == 2);
  CHECK(from_file->config.workers == 2);
  CHECK(from_file->config.sync == engine::SyncMode::kNone);
  CHECK(from_file->config.max_value_bytes == 1u << 20);
  CHECK(from_file->config.compaction_dead_ratio == 0.75);
  CHECK(from_file->config.single_process);
  CHECK(from_file->config.config_file == file.path);
  CHECK(from_file->config.trusted_proxies.size() == 1);

  // Flags win, whatever their position relative to --config; a repeatable
  // flag replaces the file's list.
  auto overridden = Parse({"--workers", "5", "--config", file.path, "--listen", "127.0.0.1:7100"});
  REQUIRE(overridden.ok());
  CHECK(overridden->config.workers == 5);
  REQUIRE(overridden->config.listen.size() == 1);
  CHECK(overridden->config.listen[0].port == 7100);
  CHECK(overridden->config.sync == engine::SyncMode::kNone);  // untouched file value
}

TEST_CASE("a flag given twice is an error naming it, unless its setting is repeatable", "[src][config]") {
  for (const std::vector<std::string>& twice :
       {std::vector<std::string>{"--workers", "2", "--workers", "3"}, {"--sync=none", "--sync", "always"},
        {"--read-only", "--read-only=false"}, {"--config", "/a.json", "--config=/b.json"}}) {
    const std::string e = ErrorOf(Parse(twice));
    CHECK(e.find(twice[0].substr(0, twice[0].find('=')) + ": given more than once") != std::string::npos);
  }
  auto r = Parse({"--listen", "127.0.0.1:9000", "--listen", "127.0.0.1:9001", "--trusted-proxy", "10.0.0.1",
                  "--trusted-proxy", "10.0.0.2"});
  REQUIRE(r.ok());
  CHECK(r.value().config.listen.size() == 2);
  CHECK(r.value().config.trusted_proxies.size() == 2);
}

TEST_CASE("unknown and invalid settings are errors that name the setting", "[src][config]") {
  CHECK(ErrorOf(Parse({"--bogus", "1"})).find("--bogus") != std::string::npos);
  CHECK(ErrorOf(Parse({"--workers", "zero"})).find("--workers") != std::string::npos);
  CHECK(ErrorOf(Parse({"--workers", "0"})).find("--workers") != std::string::npos);
  CHECK(ErrorOf(Parse({"--sync", "sometimes"})).find("--sync") != std::string::npos);
  CHECK(ErrorOf(Parse({"--sync", "interval:0"})).find("--sync") != std::string::npos);
  CHECK(ErrorOf(Parse({"--sync-depth", "0"})).find("--sync-depth") != std::string::npos);
  CHECK(ErrorOf(Parse({"--sync-depth", "17"})).find("--sync-depth") != std::string::npos);
  CHECK(ErrorOf(Parse({"--commit-delay-us", "100001"})).find("--commit-delay-us") != std::string::npos);
  CHECK(ErrorOf(Parse({"--commit-delay-us", "-1"})).find("--commit-delay-us") != std::string::npos);
  CHECK(ErrorOf(Parse({"--commit-delay-us", "1ms"})).find("--commit-delay-us") != std::string::npos);
  CHECK(Parse({"--commit-delay-us", "100000"})->config.commit_delay_us == 100000);
  // At most a quarter of --storage-timeout-ms: the writer's heartbeat stays fresh through a delay.
  CHECK(ErrorOf(Parse({"--commit-delay-us", "25001", "--storage-timeout-ms", "100"})).find("--commit-delay-us") !=
        std::string::npos);
  CHECK(Parse({"--commit-delay-us", "25000", "--storage-timeout-ms", "100"}).ok());
  CHECK(ErrorOf(Parse({"--listen", "localhost:80"})).find("--listen") != std::string::npos);
  CHECK(ErrorOf(Parse({"--listen", "127.0.0.1:70000"})).find("--listen") != std::string::npos);
  CHECK(ErrorOf(Parse({"--max-value-bytes", "12Q"})).find("--max-value-bytes") != std::string::npos);
  CHECK(ErrorOf(Parse({"--compaction-dead-ratio", "1.5"})).find("--compaction-dead-ratio") != std::string::npos);
  CHECK(ErrorOf(Parse({"--model", "fibers"})).find("--model") != std::string::npos);
  CHECK(ErrorOf(Parse({"--log-level", "loud"})).find("--log-level") != std::string::npos);
  CHECK(ErrorOf(Parse({"--trusted-proxy", "10.0.0.0/33"})).find("--trusted-proxy") != std::string::npos);
  CHECK(ErrorOf(Parse({"--data"})).find("--data: missing value") != std::string::npos);
  // Spilling is off (0) or has room for one body part.
  CHECK(ErrorOf(Parse({"--body-spill-bytes", "64K"})).find("--body-spill-bytes") != std::string::npos);
  CHECK(Parse({"--body-spill-bytes", "0"}).ok());
  CHECK(Parse({"--body-spill-bytes", "1M"}).ok());
  CHECK(ErrorOf(Parse({"--listen", "127.0.0.1:80", "--listen", "127.0.0.1:80"})).find("--listen") !=
        std::string::npos);

  TempFile unknown(R"({"workers": 1, "colour": "blue"})");
  const std::string e1 = ErrorOf(Parse({"--config", unknown.path}));
  CHECK(e1.find("colour") != std::string::npos);
  CHECK(e1.find(unknown.path) != std::string::npos);

  TempFile invalid(R"({"max_key_bytes": "huge"})");
  CHECK(ErrorOf(Parse({"--config", invalid.path})).find("max_key_bytes") != std::string::npos);

  TempFile wrong_type(R"({"workers": [1, 2]})");
  CHECK(ErrorOf(Parse({"--config", wrong_type.path})).find("workers") != std::string::npos);

  TempFile broken(R"({"workers": )");
  CHECK(ErrorOf(Parse({"--config", broken.path})).find(broken.path) != std::string::npos);

  auto missing = Parse({"--config", "/nonexistent/kingx.json"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().Is(engine::Code::kIOError));
}

TEST_CASE("a number in the file beyond a double's range is an error naming the setting, not an abort",
          "[src][config]") {
  TempFile huge(R"({"workers": 2, "compaction_dead_ratio": 1e400})");
  const std::string e1 = ErrorOf(Parse({"--config", huge.path}));
  CHECK(e1.find("compaction_dead_ratio") != std::string::npos);
  CHECK(e1.find(huge.path) != std::string::npos);

  TempFile in_list(R"({"listen": ["127.0.0.1:8080", -1e999]})");
  CHECK(ErrorOf(Parse({"--config", in_list.path})).find("listen") != std::string::npos);
}

TEST_CASE("listen addresses and trusted proxies parse numeric IPv4 and IPv6", "[src][config]") {
  auto v4 = ParseListenAddress("0.0.0.0:0");
  REQUIRE(v4.ok());
  CHECK(v4->host == "0.0.0.0");
  CHECK(v4->port == 0);
  auto v6 = ParseListenAddress("[::]:443");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::");
  CHECK(v6->ToString() == "[::]:443");
  CHECK_FALSE(ParseListenAddress("::1:80").ok());
  CHECK_FALSE(ParseListenAddress("127.0.0.1").ok());
  CHECK_FALSE(ParseListenAddress("[::1]80").ok());

  auto p = ParseTrustedProxy("172.16.0.0/12");
  REQUIRE(p.ok());
  CHECK_FALSE(p->ipv6);
  CHECK(p->prefix_bits == 12);
  CHECK(ParseTrustedProxy("fd00::/8")->prefix_bits == 8);
  CHECK(ParseTrustedProxy("10.1.2.3")->prefix_bits == 32);
  CHECK_FALSE(ParseTrustedProxy("10.1.2").ok());
  CHECK_FALSE(ParseTrustedProxy("10.0.0.0/").ok());
}

TEST_CASE("segment size and disk reserve: auto, a size, or an error naming the setting", "[src][config]") {
  auto r = Parse({"--segment-bytes", "2M", "--disk-reserve-bytes", "auto"});
  REQUIRE(r.ok());
  CHECK(r->config.segment_bytes == 2u << 20);
  CHECK(r->config.disk_reserve_bytes == engine::AutoDiskReserveBytes(2u << 20));
  r = Parse({"--disk-reserve-bytes", "0"});
  REQUIRE(r.ok());
  CHECK(r->config.disk_reserve_bytes == 0);
  CHECK(r->config.EngineOptions().disk_reserve_bytes == 0);
  auto bad = Parse({"--disk-reserve-bytes", "lots"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("--disk-reserve-bytes") != std::string_view::npos);
  bad = Parse({"--segment-bytes", "1K"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("--segment-bytes") != std::string_view::npos);
}

TEST_CASE("help documents every setting with its default; -t, --help and --version are commands",
          "[src][config]") {
  const std::string help = HelpText();
  for (const char* flag : {"--listen", "--admin-listen", "--data", "--workers", "--model", "--threads", "--accept",
                           "--single-process", "--sync", "--sync-depth", "--commit-delay-us", "--max-value-bytes", "--max-key-bytes", "--segment-bytes",
                           "--disk-reserve-bytes", "--compaction-dead-ratio", "--compression-level", "--max-connections",
                           "--keepalive-timeout-ms", "--header-timeout-ms", "--body-timeout-ms", "--send-timeout-ms",
                           "--storage-timeout-ms", "--body-buffer-bytes", "--response-buffer-bytes",
                           "--staging-bytes", "--body-spill-bytes", "--send-lowat-bytes", "--write-queue-bytes", "--access-log",
                           "--access-log-format", "--error-log",
                           "--log-level", "--trusted-proxy", "--pid", "--config", "-t", "--help", "--version"}) {
    INFO(flag);
    const bool documented = help.find(std::string("  ") + flag + "\n") != std::string::npos ||
                            help.find(std::string("  ") + flag + " ") != std::string::npos;
    CHECK(documented);
  }
  CHECK(help.find("[max_value_bytes] default: 64M") != std::string::npos);
  CHECK(help.find("[listen] default: 127.0.0.1:8080") != std::string::npos);

  CHECK(Parse({"-t"})->command == Command::kTest);
  CHECK(Parse({"--help", "--bogus"})->command == Command::kHelp);
  CHECK(Parse({"--version"})->command == Command::kVersion);
  CHECK_FALSE(Parse({"-t", "--workers", "nope"}).ok());
}

// One flag of --help: its argument (e.g. "SIZE|auto") and its text lines.
struct HelpEntry {
  std::string flag, arg;
  std::vector<std::string> lines;
};

std::vector<HelpEntry> HelpEntries() {
  std::vector<HelpEntry> out;
  std::istringstream in(HelpText());
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("  -")) {
      const size_t sp = line.find(' ', 2);
      out.push_back(HelpEntry{line.substr(2, sp == std::string::npos ? std::string::npos : sp - 2),
                              sp == std::string::npos ? "" : line.substr(sp + 1), {}});
    } else if (line.starts_with("      ") && !out.empty()) {
      out.back().lines.push_back(line.substr(6));
    }
  }
  return out;
}

TEST_CASE("the help of every numeric setting states the bounds the parser enforces", "[src][config]") {
  // Walks every flag --help lists: an argument with a number in it (N, MS,
  // US, SIZE, RATIO, after a "word:" prefix or not) must come with a line
  // "TOKEN in [lo, hi]" (or "(lo, hi]"), and the parser must take each
  // bound and refuse, naming the flag, the value just past it.
  int ranged = 0;
  for (const HelpEntry& e : HelpEntries()) {
    INFO(e.flag << " " << e.arg);
    std::string token, prefix;
    std::istringstream pieces(e.arg);
    for (std::string piece; std::getline(pieces, piece, '|');) {
      const size_t colon = piece.rfind(':');
      const std::string number = colon == std::string::npos ? piece : piece.substr(colon + 1);
      if (number == "N" || number == "MS" || number == "US" || number == "SIZE" || number == "RATIO") {
        token = number;
        prefix = colon == std::string::npos ? "" : piece.substr(0, colon + 1);
        break;
      }
    }
    if (token.empty()) continue;
    ++ranged;
    const std::string head = token + " in ";
    const auto line = std::find_if(e.lines.begin(), e.lines.end(),
                                   [&head](const std::string& l) { return l.starts_with(head); });
    CHECK(line != e.lines.end());
    if (line == e.lines.end()) continue;
    const std::string range = line->substr(head.size());  // "[1, 256]"
    const size_t comma = range.find(", ");
    REQUIRE((range.starts_with("[") || range.starts_with("(")));
    REQUIRE(range.ends_with("]"));
    REQUIRE(comma != std::string::npos);
    const std::string lo_text = range.substr(1, comma - 1);
    const std::string hi_text = range.substr(comma + 2, range.size() - comma - 3);
    // Refused for its range: the error names the flag and the same bounds
    // (in bytes for a size). Validate's cross-field errors (a key longer
    // than the request line, say) are not the range's.
    std::string stated;
    auto refused = [&](const std::string& v) {
      auto r = Parse({e.flag, prefix + v});
      if (!r.ok()) UNSCOPED_INFO(r.status().ToString());
      return !r.ok() && r.status().message().starts_with(e.flag + ":") &&
             r.status().message().find(stated) != std::string::npos;
    };
    INFO("range " << range);
    if (token == "RATIO") {
      stated = range;
      const double lo = std::stod(lo_text), hi = std::stod(hi_text);
      CHECK(range.starts_with("("));
      CHECK(refused(lo_text));
      CHECK_FALSE(refused(std::to_string(lo + 1e-6)));
      CHECK_FALSE(refused(hi_text));
      CHECK(refused(std::to_string(hi + 1e-6)));
      continue;
    }
    CHECK(range.starts_with("["));
    auto number = [&](const std::string& t) -> uint64_t {
      auto v = token == "SIZE" ? engine::ParseSize(t) : engine::ParseSize(t, 0, UINT64_MAX);
      REQUIRE(v.ok());
      if (token != "SIZE") REQUIRE(t.find_first_not_of("0123456789") == std::string::npos);
      return v.value();
    };
    const uint64_t lo = number(lo_text), hi = number(hi_text);
    REQUIRE(lo <= hi);
    stated = "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    CHECK_FALSE(refused(std::to_string(lo)));
    CHECK_FALSE(refused(std::to_string(hi)));
    CHECK_FALSE(refused(lo_text));
    CHECK_FALSE(refused(hi_text));
    if (lo > 0) CHECK(refused(std::to_string(lo - 1)));
    if (hi < UINT64_MAX) CHECK(refused(std::to_string(hi + 1)));
  }
  CHECK(ranged >= 25);
  // The one the help left out before: zstd's levels.
  CHECK(HelpText().find("  --compression-level N\n      zstd level for values, 0 = off\n      N in [0, 19]\n") !=
        std::string::npos);
}

TEST_CASE("engine options follow the settings", "[src][config]") {
  auto r = Parse({"--sync", "interval:10", "--segment-bytes", "1M", "--compression-level", "3", "--max-key-bytes",
                  "100", "--max-value-bytes", "1K", "--sync-depth", "3"});
  REQUIRE(r.ok());
  const engine::Options o = r->config.EngineOptions();
  CHECK(o.sync == engine::SyncMode::kInterval);
  CHECK(o.sync_interval_ms == 10);
  CHECK(o.sync_depth == 3);
  CHECK(o.segment_bytes == 1u << 20);
  CHECK(o.compression_level == 3);
  // Key and value limits are the HTTP edge's (LimitsFor); the engine keeps the
  // format's, so a reload changing them needs no writer restart.
  CHECK(o.max_key_bytes == engine::kLargestKeyBytes);
  CHECK(o.max_value_bytes == engine::kLargestValueBytes);
  CHECK(LimitsFor(r->config).max_key_bytes == 100);
  CHECK(LimitsFor(r->config).max_body_bytes == 1024);
  CHECK(o.take_lock);
}

TEST_CASE("key and value limits beyond the format are refused, naming the setting", "[src][config]") {
  auto key = Parse({"--max-key-bytes", "70000"});
  REQUIRE_FALSE(key.ok());
  CHECK(std::string(key.status().message()).find("--max-key-bytes") != std::string::npos);
  auto value = Parse({"--max-value-bytes", "5G"});
  REQUIRE_FALSE(value.ok());
  CHECK(std::string(value.status().message()).find("--max-value-bytes") != std::string::npos);
}

TEST_CASE("the staging budget must hold a value of the largest size with its staged prefix", "[src][config]") {
  // The prefix: the record's headers (88 bytes), the longest key, the longest content type (255).
  const uint64_t smallest = (2u << 20) + 88 + 100 + 255;
  auto fits = Parse({"--max-value-bytes", "2M", "--max-key-bytes", "100", "--staging-bytes", std::to_string(smallest)});
  CHECK(fits.ok());
  auto refused =
      Parse({"--max-value-bytes", "2M", "--max-key-bytes", "100", "--staging-bytes", std::to_string(smallest - 1)});
  REQUIRE_FALSE(refused.ok());
  CHECK(ErrorOf(refused).find("--staging-bytes") != std::string::npos);
  CHECK(ErrorOf(refused).find(std::to_string(smallest)) != std::string::npos);
  CHECK_FALSE(Parse({"--max-value-bytes", "2M", "--staging-bytes", "2M"}).ok());
}

TEST_CASE("a reload restarts the writer exactly when a setting the writer took changes", "[src][config]") {
  struct Change {
    std::vector<std::string> flags;
    bool restarts_writer;
  };
  const Config running = Parse({})->config;
  for (const Change& change : std::vector<Change>{{{"--staging-bytes", "2G"}, true},
                                                  {{"--backup-max-ms", "1000"}, true},
                                                  {{"--storage-timeout-ms", "5000"}, true},
                                                  {{"--compaction", "off"}, true},
                                                  {{"--compaction-dead-ratio", "0.25"}, true},
                                                  {{"--sync", "none"}, true},
                                                  {{"--sync", "interval:50"}, true},
                                                  {{"--sync-depth", "4"}, true},
                                                  {{"--commit-delay-us", "200"}, true},
                                                  {{"--segment-bytes", "1M"}, true},
                                                  {{"--disk-reserve-bytes", "300M"}, true},
                                                  {{"--error-log", "/tmp/kingx-other.log"}, false},
                                                  {{"--log-level", "debug"}, false},
                                                  {{"--max-value-bytes", "2M"}, false},
                                                  {{"--max-key-bytes", "100"}, false},
                                                  {{"--compression-level", "3"}, false},
                                                  {{"--workers", "3"}, false},
                                                  {{"--send-timeout-ms", "5000"}, false},
                                                  {{"--body-buffer-bytes", "8M"}, false},
                                                  {{"--body-spill-bytes", "0"}, false},
                                                  {{"--response-buffer-bytes", "8M"}, false},
                                                  {{"--keepalive-timeout-ms", "1000"}, false},
                                                  {{"--access-log", "/tmp/kingx-access.log"}, false}}) {
    INFO(change.flags[0] << " " << change.flags[1]);
    CHECK(WriterSettingsDiffer(running, Parse(change.flags)->config) == change.restarts_writer);
  }
}

TEST_CASE("compaction can be turned off, and only with on or off", "[src][config]") {
  CHECK(Parse({})->config.compaction);
  CHECK_FALSE(Parse({"--compaction", "off"})->config.compaction);
  auto bad = Parse({"--compaction", "maybe"});
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()).find("--compaction") != std::string::npos);
}

TEST_CASE("pid none means no pid file, in a flag and in the file", "[src][config]") {
  auto none = Parse({"--pid", "none"});
  REQUIRE(none.ok());
  CHECK(none->config.pid_file.empty());
  auto off = Parse({"--pid", "off"});
  REQUIRE(off.ok());
  CHECK(off->config.pid_file.empty());
  TempFile file(R"({"pid": "none"})");
  auto from_file = Parse({"--config", file.path});
  REQUIRE(from_file.ok());
  CHECK(from_file->config.pid_file.empty());
  auto real = Parse({"--pid", "/run/kingx.pid"});
  REQUIRE(real.ok());
  CHECK(real->config.pid_file == "/run/kingx.pid");
  CHECK(ErrorOf(Parse({"--pid", ""})).find("pid") != std::string::npos);
}

TEST_CASE("a setting given twice in the JSON file is refused, naming it", "[src][config]") {
  TempFile dup(R"({"workers": 1, "sync": "none", "workers": 2})");
  const std::string e = ErrorOf(Parse({"--config", dup.path}));
  CHECK(e.find("'workers'") != std::string::npos);
  CHECK(e.find("more than once") != std::string::npos);
  CHECK(e.find(dup.path) != std::string::npos);
  // A list value may repeat entries; only keys count.
  TempFile list(R"({"listen": ["127.0.0.1:1", "127.0.0.1:2"], "trusted_proxy": ["10.0.0.0/8", "10.0.0.0/8"]})");
  CHECK(Parse({"--config", list.path}).ok());
}

TEST_CASE("a key of the JSON file that starts with // is a comment, whatever its value", "[src][config]") {
  TempFile commented(R"({"//": "kingx", "//data": ["a", {"b": 1}], "data": "/srv/kv", "//workers": 7})");
  auto r = Parse({"--config", commented.path});
  REQUIRE(r.ok());
  CHECK(r->config.data_dir == "/srv/kv");
  CHECK(r->config.workers != 7);
  // Only a leading //: a setting's name with a slash elsewhere is still unknown.
  TempFile slash(R"({"data//": "/srv/kv"})");
  CHECK(ErrorOf(Parse({"--config", slash.path})).find("unknown setting 'data//'") != std::string::npos);
  // Two comments under one key are a key given twice, as for any other.
  TempFile twice(R"({"//": "a", "//": "b"})");
  CHECK(ErrorOf(Parse({"--config", twice.path})).find("more than once") != std::string::npos);
}

TEST_CASE("header limits are settings, nginx's by default, checked against each other", "[src][config]") {
  auto r = Parse({});
  REQUIRE(r.ok());
  http::Limits l = LimitsFor(r->config);
  CHECK(l.max_request_line_bytes == 8192);
  CHECK(l.max_header_line_bytes == 8192);
  CHECK(l.max_header_bytes == 16384);
  CHECK(l.max_header_fields == 100);
  auto set = Parse({"--max-header-line-bytes", "4K", "--max-header-bytes", "32K", "--max-header-fields", "50",
                    "--max-request-line-bytes", "16K"});
  REQUIRE(set.ok());
  l = LimitsFor(set->config);
  CHECK(l.max_header_line_bytes == 4096);
  CHECK(l.max_header_bytes == 32768);
  CHECK(l.max_header_fields == 50);
  CHECK(l.max_request_line_bytes == 16384);
  CHECK(http::InvalidLimit(l).empty());
  CHECK(ErrorOf(Parse({"--max-header-line-bytes", "32K"})).find("max-header-line-bytes") != std::string::npos);
  CHECK(ErrorOf(Parse({"--max-request-line-bytes", "1K"})).find("max-key-bytes") != std::string::npos);
  // A PUT carries Host and Content-Length: one field would refuse every PUT with 431.
  CHECK(ErrorOf(Parse({"--max-header-fields", "1"})).find("--max-header-fields") != std::string::npos);
  CHECK(Parse({"--max-header-fields", "2"}).ok());
}

}  // namespace kingx
