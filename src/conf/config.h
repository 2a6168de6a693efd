// Config: every setting of the kingx binary, from command-line flags and an
// optional JSON configuration file.
//
// Each setting has one name used in both places: flag `--max-value-bytes` is
// key "max_value_bytes" in the file. The file is read first, then flags
// override it. An unknown or invalid setting is an error whose message names
// the setting (kInvalidArgument). Sizes accept plain bytes or a K/M/G suffix
// (powers of 1024). `HelpText()` documents every setting with its default.
//
// A Config is plain data: the master parses it once (and again on HUP), then
// each forked process owns its copy (copied by fork). No globals.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/options.h"
#include "engine/status.h"

namespace kingx {

// How workers serve connections.
enum class Model : uint8_t {
  kEvent,    // single-threaded libuv loop per worker process (default)
  kThreads,  // acceptor thread + N blocking pool threads per worker process
};

// How listening sockets are shared among workers.
enum class AcceptMode : uint8_t {
  kReusePort,  // one SO_REUSEPORT socket per (address, worker index) (default)
  kShared,     // one socket per address, inherited by every worker
};

enum class LogLevel : uint8_t { kDebug = 0, kInfo, kWarn, kError };

enum class AccessLogFormat : uint8_t { kCombined, kJson };

// A numeric IPv4 or IPv6 address and a port. `host` is kept as written
// ("127.0.0.1", "::1"; brackets removed). Names are not resolved.
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
  // "127.0.0.1:8080" or "[::1]:8080".
  std::string ToString() const;
};

// An address or CIDR block whose X-Forwarded-For is trusted (--trusted-proxy).
// `bytes` is the address in network order (4 or 16 bytes used).
struct TrustedProxy {
  bool ipv6 = false;
  uint8_t bytes[16] = {};
  uint8_t prefix_bits = 0;  // 32 / 128 for a single address
  std::string text;         // as written, for logs
};

struct Config {
  std::vector<ListenAddress> listen;             // --listen (repeatable), default 127.0.0.1:8080
  std::optional<ListenAddress> admin_listen;     // --admin-listen; /admin/* only there; off by default
  std::string data_dir = "./data";               // --data
  uint32_t workers = 1;                          // --workers N|auto; resolved (auto = online CPUs)
  bool workers_auto = true;                      // whether --workers was "auto" (for -t output)
  Model model = Model::kEvent;                   // --model event|threads
  uint32_t threads = 150;                        // --threads (pool threads per worker, threads model)
  AcceptMode accept = AcceptMode::kReusePort;    // --accept reuseport|shared
  bool single_process = false;                   // --single-process
  engine::SyncMode sync = engine::SyncMode::kAlways;  // --sync always|interval:MS|none
  uint32_t sync_interval_ms = 0;                 // MS of interval:MS
  uint32_t sync_depth = 1;                       // --sync-depth (fdatasyncs in flight at once, sync always)
  uint32_t commit_delay_us = 0;                  // --commit-delay-us (the most a group commit waits for company; 0: never)
  uint64_t max_value_bytes = 64ull << 20;        // --max-value-bytes
  uint32_t max_key_bytes = 1024;                 // --max-key-bytes
  uint64_t segment_bytes = 256ull << 20;         // --segment-bytes SIZE|auto (resolved when parsed)
  bool segment_bytes_auto = true;                // --segment-bytes auto: from the data disk's size
  uint64_t disk_reserve_bytes = 0;               // --disk-reserve-bytes SIZE|auto (resolved when parsed)
  bool disk_reserve_auto = true;                 // --disk-reserve-bytes auto: from segment_bytes
  double compaction_dead_ratio = 0.5;            // --compaction-dead-ratio (0 < r <= 1)
  bool compaction = true;                        // --compaction on|off
  bool read_only = false;                        // --read-only: serve without changing a byte of --data
  int compression_level = 1;                     // --compression-level (0 = off, 1..19)
  uint32_t max_connections = 10000;              // --max-connections (per worker)
  uint64_t max_request_line_bytes = 8192;        // --max-request-line-bytes
  uint64_t max_header_line_bytes = 8192;         // --max-header-line-bytes
  uint64_t max_header_bytes = 16384;             // --max-header-bytes
  uint32_t max_header_fields = 100;              // --max-header-fields
  uint64_t keepalive_timeout_ms = 75000;         // --keepalive-timeout-ms
  uint64_t header_timeout_ms = 10000;            // --header-timeout-ms
  uint64_t body_timeout_ms = 60000;              // --body-timeout-ms
  uint64_t send_timeout_ms = 60000;              // --send-timeout-ms
  uint64_t storage_timeout_ms = 30000;           // --storage-timeout-ms (>= 100)
  uint64_t backup_max_ms = 6ull * 3600 * 1000;   // --backup-max-ms (longest pin of one online backup)
  uint64_t write_queue_bytes = 64ull << 20;      // --write-queue-bytes (shared ring size)
  uint64_t body_buffer_bytes = 64ull << 20;      // --body-buffer-bytes (request bodies in memory, per worker)
  uint64_t body_spill_bytes = 1ull << 30;        // --body-spill-bytes (request bodies spilled to disk, per worker; 0 = off)
  uint64_t response_buffer_bytes = 32ull << 20;  // --response-buffer-bytes (decoded values being sent, per worker)
  uint64_t staging_bytes = 1ull << 30;           // --staging-bytes (disk held by large uploads in progress)
  uint64_t send_lowat_bytes = 16ull << 10;       // --send-lowat-bytes (TCP_NOTSENT_LOWAT; 0 = kernel default)
  std::string access_log;                        // --access-log FILE|off; empty = off
  AccessLogFormat access_log_format = AccessLogFormat::kCombined;  // --access-log-format
  std::string error_log;                         // --error-log FILE; empty = stderr
  LogLevel log_level = LogLevel::kInfo;          // --log-level debug|info|warn|error
  std::vector<TrustedProxy> trusted_proxies;     // --trusted-proxy ADDR[/BITS] (repeatable)
  std::string pid_file;                          // --pid FILE|none; empty = none
  std::string config_file;                       // --config FILE; empty = none

  // Not a setting: the scratch directory a --read-only server keeps its
  // sorted key view in (made by the master, src/master/data_dir.h).
  std::string keys_scratch_dir;

  // The engine options these settings imply (take_lock = true; the master
  // clears it for the writer it forks because it holds the LOCK itself).
  engine::Options EngineOptions() const;
};

// True when `next` changes a setting the running writer process took at its
// start: its engine options (but the key, value and compression limits the
// workers apply) and its own limits and timeouts (--staging-bytes,
// --backup-max-ms, --storage-timeout-ms, --compaction). A reload restarts
// the writer exactly then. The error log and its level are not among them:
// the running writer applies a change of those in place (the master
// publishes them, src/ipc/log_settings.h). Settings only a restart can
// change (--data, --read-only) are not compared.
bool WriterSettingsDiffer(const Config& running, const Config& next);

// What the command line asks the binary to do.
enum class Command : uint8_t {
  kRun,      // serve
  kTest,     // -t: validate the configuration, print the verdict, exit 0/1
  kHelp,     // --help
  kVersion,  // --version
};

struct ParsedCommandLine {
  Command command = Command::kRun;
  Config config;
};

// Parses argv (argv[0] is skipped): reads --config FILE first if given, then
// applies every flag over it, resolves "auto" workers, then validates the
// whole (Validate). For --help / --version the config is not validated.
// Flags take their value as the next argument or after '=' (--data=/x). A
// flag given twice is an error unless its setting is repeatable (--listen,
// --trusted-proxy: each flag adds one), as is --config given twice.
// Errors: kInvalidArgument whose message names the setting
// ("--workers: expected a positive integer or 'auto', got 'x'",
// "config file /etc/kingx.json: unknown setting 'foo'"), or kIOError when the
// config file cannot be read. Never exits, never prints.
engine::Result<ParsedCommandLine> ParseCommandLine(int argc, const char* const* argv);

// Cross-field checks (sizes within engine limits, at least one listen
// address, admin listener distinct from the others, ...). kInvalidArgument
// naming the setting.
engine::Status Validate(const Config& config);

// Parses "HOST:PORT" / "[V6]:PORT" with a numeric host (port 0 allowed: the
// kernel picks one, useful in tests). kInvalidArgument otherwise.
engine::Result<ListenAddress> ParseListenAddress(std::string_view text);

// Parses "ADDR" or "ADDR/BITS" (IPv4 or IPv6). kInvalidArgument otherwise.
engine::Result<TrustedProxy> ParseTrustedProxy(std::string_view text);

// The --help text: every flag, its file key, meaning and default.
std::string HelpText();

// "kingx 0.1.0".
std::string VersionText();

const char* LogLevelName(LogLevel level);  // "debug", "info", ...

}  // namespace kingx
