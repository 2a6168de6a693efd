// Config parsing. The only includer of <nlohmann/json.hpp>.
//
// Every setting is one row of kSettings: its name (the JSON key; the flag is
// "--" + name with '_' turned into '-'), its argument, default and help, and
// one Apply function that parses a text value into the Config. Flags and file
// values both go through Apply, so they accept exactly the same syntax.
#include "src/conf/config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/disk_space.h"
#include "engine/env.h"
#include "engine/record.h"
#include "src/conf/kingx_version.h"
#include "src/ipc/staging_budget.h"

namespace kingx {
namespace {

using engine::Result;
using engine::Status;

Status Invalid(std::string_view setting, std::string_view why) {
  return Status::InvalidArgument(std::string(setting) + ": " + std::string(why));
}

template <class T>
Result<T> ParseUnsigned(std::string_view text, T min, T max) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return Status::InvalidArgument("expected an integer in [" + std::to_string(min) + ", " +
                                   std::to_string(max) + "], got '" + std::string(text) + "'");
  }
  return v;
}

// The bounds a numeric setting's apply enforces (inclusive, but kRatio's lo
// is excluded), shown by --help as "N in [lo, hi]" under the setting; the
// number follows `prefix` in the value ("interval:" of --sync). The one place
// both the parser and the help read them.
struct Range {
  enum class Kind : uint8_t { kNone, kInteger, kSize, kRatio };
  Kind kind = Kind::kNone;
  uint64_t lo = 0;
  uint64_t hi = 0;
  const char* prefix = "";
};

constexpr Range kNoRange{};

// A setting: `apply` parses `value` into *c. `repeatable` settings append
// (flags replace the file's list: see ParseCommandLine). `takes_value` false
// for switches (--single-process), whose value is "true"/"false".
struct Setting {
  const char* name;
  const char* arg;
  const char* default_text;
  const char* help;
  bool repeatable;
  bool takes_value;
  Status (*apply)(Config* c, std::string_view value);
  Range range;
};

template <class T>
Status Assign(T* field, Result<T> r) {
  if (!r.ok()) return r.status();
  *field = *r;
  return Status::OK();
}

// Each expands to a row's apply function and its range.
#define KINGX_UNSIGNED(field, type, lo, hi)                                                           \
  [](Config* c, std::string_view v) { return Assign(&c->field, ParseUnsigned<type>(v, lo, hi)); }, \
      Range{Range::Kind::kInteger, lo, hi}
#define KINGX_SIZE(field, lo, hi)                                                                     \
  [](Config* c, std::string_view v) { return Assign(&c->field, engine::ParseSize(v, lo, hi)); },   \
      Range{Range::Kind::kSize, lo, hi}

constexpr uint64_t kMaxMs = 24ull * 3600 * 1000;
// PostgreSQL's commit_delay has the same ceiling: a tenth of a second.
constexpr uint32_t kMaxCommitDelayUs = 100000;
constexpr uint32_t kMaxWorkers = 256;
constexpr uint64_t kMaxKeyBytes = 65535;
constexpr uint64_t kMinSegmentBytes = 64 << 10;
constexpr uint64_t kMaxSegmentBytes = 1ull << 38;
constexpr uint64_t kMaxDiskReserveBytes = 1ull << 50;

const Setting kSettings[] = {
    {"listen", "ADDR:PORT", "127.0.0.1:8080",
     "address to serve HTTP on (numeric IPv4 or [IPv6]); repeatable", true, true,
     [](Config* c, std::string_view v) {
       auto a = ParseListenAddress(v);
       if (!a.ok()) return a.status();
       c->listen.push_back(*a);
       return Status::OK();
     },
     kNoRange},
    {"admin_listen", "ADDR:PORT", "off",
     "separate listener for /admin/* (compaction trigger, online backup); 'off' disables it", false, true,
     [](Config* c, std::string_view v) {
       if (v == "off") {
         c->admin_listen.reset();
         return Status::OK();
       }
       auto a = ParseListenAddress(v);
       if (!a.ok()) return a.status();
       c->admin_listen = *a;
       return Status::OK();
     },
     kNoRange},
    {"data", "DIR", "./data", "data directory: created if missing, used if empty (lost+found aside) or holding a database (a MANIFEST or "
     "a segment file), refused if it holds other files; locked while serving", false, true,
     [](Config* c, std::string_view v) {
       if (v.empty()) return Status::InvalidArgument("expected a directory, got ''");
       c->data_dir = std::string(v);
       return Status::OK();
     },
     kNoRange},
    {"workers", "N|auto", "auto", "worker processes; auto = one per online CPU", false, true,
     [](Config* c, std::string_view v) {
       if (v == "auto") {
         long n = sysconf(_SC_NPROCESSORS_ONLN);
         c->workers = n > 0 ? static_cast<uint32_t>(std::min<long>(n, kMaxWorkers)) : 1;
         c->workers_auto = true;
         return Status::OK();
       }
       auto n = ParseUnsigned<uint32_t>(v, 1, kMaxWorkers);
       if (!n.ok()) return Status::InvalidArgument("expected 'auto' or an integer in [1, " +
                                                   std::to_string(kMaxWorkers) + "], got '" + std::string(v) + "'");
       c->workers = *n;
       c->workers_auto = false;
       return Status::OK();
     },
     Range{Range::Kind::kInteger, 1, kMaxWorkers}},
    {"model", "event|threads", "event",
     "serving model: libuv event loop, or KingServer-style thread pool", false, true,
     [](Config* c, std::string_view v) {
       if (v == "event") c->model = Model::kEvent;
       else if (v == "threads") c->model = Model::kThreads;
       else return Status::InvalidArgument("expected 'event' or 'threads', got '" + std::string(v) + "'");
       return Status::OK();
     },
     kNoRange},
    {"threads", "N", "150", "pool threads per worker (threads model)", false, true,
     KINGX_UNSIGNED(threads, uint32_t, 1, 100000)},
    {"accept", "reuseport|shared", "reuseport",
     "one SO_REUSEPORT socket per worker, or one socket shared by all", false, true,
     [](Config* c, std::string_view v) {
       if (v == "reuseport") c->accept = AcceptMode::kReusePort;
       else if (v == "shared") c->accept = AcceptMode::kShared;
       else return Status::InvalidArgument("expected 'reuseport' or 'shared', got '" + std::string(v) + "'");
       return Status::OK();
     },
     kNoRange},
    {"single_process", "", "false",
     "master, writer and one worker in one process (gdb, TSan); HUP does not reload it (a warning says so)", false, false,
     [](Config* c, std::string_view v) {
       if (v == "true") c->single_process = true;
       else if (v == "false") c->single_process = false;
       else return Status::InvalidArgument("expected true or false, got '" + std::string(v) + "'");
       return Status::OK();
     },
     kNoRange},
    {"read_only", "", "false",
     "serve --data without changing a byte of it (a backup, a snapshot): GET/HEAD and listing work, PUT and "
     "DELETE answer 405, no compaction; the directory must hold a database; shares it with other read-only servers",
     false, false,
     [](Config* c, std::string_view v) {
       if (v == "true") c->read_only = true;
       else if (v == "false") c->read_only = false;
       else return Status::InvalidArgument("expected true or false, got '" + std::string(v) + "'");
       return Status::OK();
     },
     kNoRange},
    {"sync", "always|interval:MS|none", "always",
     "when a write is acknowledged: after its fdatasync, after write() with a sync every MS, or never synced",
     false, true,
     [](Config* c, std::string_view v) {
       engine::Options o;
       Status s = engine::ParseSyncMode(v, &o);
       if (!s.ok()) return Status::InvalidArgument("expected always, none or interval:MS with MS in [1, " +
                                                   std::to_string(UINT32_MAX) + "], got '" + std::string(v) + "'");
       c->sync = o.sync;
       c->sync_interval_ms = o.sync_interval_ms;
       return Status::OK();
     },
     Range{Range::Kind::kInteger, 1, UINT32_MAX, "interval:"}},
    {"sync_depth", "N", "1",
     "under --sync always: the most group commits whose fdatasyncs run at once (each batch still acknowledged "
     "only once its own and every earlier fdatasync returned)",
     false, true, KINGX_UNSIGNED(sync_depth, uint32_t, 1, engine::kMaxSyncDepth)},
    {"commit_delay_us", "US", "0",
     "under --sync always: the most microseconds the writer waits before a group commit for more writes to join "
     "it; it waits only when the previous group commit carried more than one write and fewer are queued, and stops "
     "as soon as as many are (0: never waits)",
     false, true, KINGX_UNSIGNED(commit_delay_us, uint32_t, 0, kMaxCommitDelayUs)},
    {"max_value_bytes", "SIZE", "64M", "largest value accepted (413 above)", false, true,
     KINGX_SIZE(max_value_bytes, 1, (4ull << 30) - 1)},
    {"max_key_bytes", "SIZE", "1024", "longest key accepted (414 above)", false, true,
     [](Config* c, std::string_view v) {
       auto r = engine::ParseSize(v, 1, kMaxKeyBytes);
       if (!r.ok()) return r.status();
       c->max_key_bytes = static_cast<uint32_t>(*r);
       return Status::OK();
     },
     Range{Range::Kind::kSize, 1, kMaxKeyBytes}},
    {"segment_bytes", "SIZE|auto", "auto",
     "segment file size before rotation; auto = a 32nd of the data directory's disk, as a power of two in "
     "[1M, 256M]",
     false, true,
     [](Config* c, std::string_view v) {
       if (v == "auto") {
         c->segment_bytes_auto = true;
         return Status::OK();
       }
       c->segment_bytes_auto = false;
       return Assign(&c->segment_bytes, engine::ParseSize(v, kMinSegmentBytes, kMaxSegmentBytes));
     },
     Range{Range::Kind::kSize, kMinSegmentBytes, kMaxSegmentBytes}},
    {"disk_reserve_bytes", "SIZE|auto", "auto",
     "free disk space that writes may not use, kept so that compaction and deletes work on a full disk "
     "(writes answer 507 below it); auto = 1.25 x the segment size + 1M; 0 = none",
     false, true,
     [](Config* c, std::string_view v) {
       if (v == "auto") {
         c->disk_reserve_auto = true;
         return Status::OK();
       }
       c->disk_reserve_auto = false;
       return Assign(&c->disk_reserve_bytes, engine::ParseSize(v, 0, kMaxDiskReserveBytes));
     },
     Range{Range::Kind::kSize, 0, kMaxDiskReserveBytes}},
    {"compaction_dead_ratio", "RATIO", "0.5",
     "compact a sealed segment once this fraction of it is dead", false, true,
     [](Config* c, std::string_view v) {
       double d = 0;
       auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
       if (v.empty() || ec != std::errc() || end != v.data() + v.size() || !(d > 0.0 && d <= 1.0)) {
         return Status::InvalidArgument("expected a number in (0, 1], got '" + std::string(v) + "'");
       }
       c->compaction_dead_ratio = d;
       return Status::OK();
     },
     Range{Range::Kind::kRatio, 0, 1}},
    {"compaction", "on|off", "on",
     "background compaction in the writer (off: only for measuring its cost; the disk fills up)", false, true,
     [](Config* c, std::string_view v) {
       if (v == "on") c->compaction = true;
       else if (v == "off") c->compaction = false;
       else return Status::InvalidArgument("expected 'on' or 'off', got '" + std::string(v) + "'");
       return Status::OK();
     },
     kNoRange},
    {"compression_level", "N", "1", "zstd level for values, 0 = off", false, true,
     KINGX_UNSIGNED(compression_level, int, 0, 19)},
    {"max_connections", "N", "10000", "open connections per worker", false, true,
     KINGX_UNSIGNED(max_connections, uint32_t, 1, 10000000)},
    {"max_request_line_bytes", "SIZE", "8K", "longest request line (414), as nginx's large_client_header_buffers",
     false, true, KINGX_SIZE(max_request_line_bytes, 64, 1 << 20)},
    {"max_header_line_bytes", "SIZE", "8K", "longest header field line (431; nginx answers 400)", false, true,
     KINGX_SIZE(max_header_line_bytes, 64, 1 << 20)},
    {"max_header_bytes", "SIZE", "16K", "largest request head: request line and header section (431)", false, true,
     KINGX_SIZE(max_header_bytes, 64, 1 << 20)},
    {"max_header_fields", "N", "100", "most header fields in a request (431)", false, true,
     KINGX_UNSIGNED(max_header_fields, uint32_t, 1, 10000)},
    {"keepalive_timeout_ms", "MS", "75000", "idle keep-alive connection timeout", false, true,
     KINGX_UNSIGNED(keepalive_timeout_ms, uint64_t, 1, kMaxMs)},
    {"header_timeout_ms", "MS", "10000", "total time allowed for a request's headers (408)", false, true,
     KINGX_UNSIGNED(header_timeout_ms, uint64_t, 1, kMaxMs)},
    {"body_timeout_ms", "MS", "60000", "longest gap between two reads of a body (408)", false, true,
     KINGX_UNSIGNED(body_timeout_ms, uint64_t, 1, kMaxMs)},
    {"send_timeout_ms", "MS", "60000",
     "longest time a response may make no progress towards the client (it reads nothing); the connection is "
     "then closed (nginx's send_timeout)",
     false, true, KINGX_UNSIGNED(send_timeout_ms, uint64_t, 1, kMaxMs)},
    {"storage_timeout_ms", "MS", "30000",
     "longest wait of a queued write for the writer (then 503 outcome unknown); a writer without progress "
     "for this long makes /readyz 503",
     false, true, KINGX_UNSIGNED(storage_timeout_ms, uint64_t, 100, kMaxMs)},
    {"backup_max_ms", "MS", "21600000",
     "longest time one online backup (GET /admin/backup) may keep its cut's segment files from compaction; "
     "a backup still streaming then is cut off (short archive, logged)",
     false, true, KINGX_UNSIGNED(backup_max_ms, uint64_t, 1000, kMaxMs)},
    {"write_queue_bytes", "SIZE", "64M",
     "shared write queue size (workers -> writer); a value over an eighth of it, or over 1M, takes the "
     "large-value path (staged in a file of its own)",
     false, true,
     KINGX_SIZE(write_queue_bytes, 1 << 20, 16ull << 30)},
    {"body_buffer_bytes", "SIZE", "64M",
     "request body bytes one worker holds in memory, all connections together; an upload that finds it "
     "used up waits, unread (backpressure), and gets 503 after --body-timeout-ms", false, true,
     KINGX_SIZE(body_buffer_bytes, 1 << 20, 1ull << 40)},
    {"body_spill_bytes", "SIZE", "1G",
     "request body bytes one worker may move from memory to scratch files in the data directory, all "
     "connections together (an upload idle for a second, or any while --body-buffer-bytes is short); "
     "0 = never", false, true, KINGX_SIZE(body_spill_bytes, 0, 1ull << 50)},
    {"response_buffer_bytes", "SIZE", "32M",
     "decoded bytes of compressed values one worker holds for responses being sent, all connections "
     "together; a response that finds it used up waits for room", false, true,
     KINGX_SIZE(response_buffer_bytes, 1 << 20, 1ull << 40)},
    {"staging_bytes", "SIZE", "1G",
     "disk bytes that large uploads in progress may stage, all together; an upload that would pass it "
     "gets 503", false, true, KINGX_SIZE(staging_bytes, 1 << 20, 1ull << 50)},
    {"send_lowat_bytes", "SIZE", "16K",
     "unsent response bytes the kernel queues per connection (TCP_NOTSENT_LOWAT): bounds the kernel "
     "memory slow readers hold; 0 = the kernel's default (unbounded)", false, true,
     KINGX_SIZE(send_lowat_bytes, 0, 1ull << 30)},
    {"access_log", "FILE|off", "off", "access log file, buffered per process", false, true,
     [](Config* c, std::string_view v) {
       if (v.empty()) return Status::InvalidArgument("expected a file or 'off', got ''");
       c->access_log = v == "off" ? std::string() : std::string(v);
       return Status::OK();
     },
     kNoRange},
    {"access_log_format", "combined|json", "combined", "access log line format", false, true,
     [](Config* c, std::string_view v) {
       if (v == "combined") c->access_log_format = AccessLogFormat::kCombined;
       else if (v == "json") c->access_log_format = AccessLogFormat::kJson;
       else return Status::InvalidArgument("expected 'combined' or 'json', got '" + std::string(v) + "'");
       return Status::OK();
     },
     kNoRange},
    {"error_log", "FILE", "stderr", "error log file", false, true,
     [](Config* c, std::string_view v) {
       if (v.empty()) return Status::InvalidArgument("expected a file or 'stderr', got ''");
       c->error_log = v == "stderr" ? std::string() : std::string(v);
       return Status::OK();
     },
     kNoRange},
    {"log_level", "debug|info|warn|error", "info", "lowest error log level written", false, true,
     [](Config* c, std::string_view v) {
       if (v == "debug") c->log_level = LogLevel::kDebug;
       else if (v == "info") c->log_level = LogLevel::kInfo;
       else if (v == "warn") c->log_level = LogLevel::kWarn;
       else if (v == "error") c->log_level = LogLevel::kError;
       else return Status::InvalidArgument("expected debug, info, warn or error, got '" + std::string(v) + "'");
       return Status::OK();
     },
     kNoRange},
    {"trusted_proxy", "ADDR[/BITS]", "none",
     "peer whose X-Forwarded-For is believed for the access log; repeatable", true, true,
     [](Config* c, std::string_view v) {
       auto p = ParseTrustedProxy(v);
       if (!p.ok()) return p.status();
       c->trusted_proxies.push_back(*p);
       return Status::OK();
     },
     kNoRange},
    {"pid", "FILE|none", "none", "pid file, written at start and removed at exit", false, true,
     [](Config* c, std::string_view v) {
       if (v.empty()) return Status::InvalidArgument("expected a file or 'none', got ''");
       c->pid_file = v == "none" || v == "off" ? std::string() : std::string(v);
       return Status::OK();
     },
     kNoRange},
};

#undef KINGX_UNSIGNED
#undef KINGX_SIZE

// A bound as --help writes it: a size with the largest K/M/G suffix that
// divides it (ParseSize reads it back), anything else in decimal.
std::string BoundText(uint64_t v, Range::Kind kind) {
  if (kind == Range::Kind::kSize && v != 0) {
    for (const auto& [shift, suffix] : {std::pair{30, "G"}, std::pair{20, "M"}, std::pair{10, "K"}}) {
      if (v % (uint64_t{1} << shift) == 0) return std::to_string(v >> shift) + suffix;
    }
  }
  return std::to_string(v);
}

// "N in [1, 256]", "MS in [1, 4294967295]" (after "interval:"), "RATIO in
// (0, 1]": the numeric part of the setting's argument and its bounds.
std::string RangeText(const Setting& s) {
  std::string_view arg = s.arg;
  std::string_view token = arg;
  for (size_t start = 0; start <= arg.size();) {
    size_t end = arg.find('|', start);
    if (end == std::string_view::npos) end = arg.size();
    std::string_view piece = arg.substr(start, end - start);
    if (const size_t colon = piece.rfind(':'); colon != std::string_view::npos) piece.remove_prefix(colon + 1);
    if (piece == "N" || piece == "MS" || piece == "US" || piece == "SIZE" || piece == "RATIO") {
      token = piece;
      break;
    }
    start = end + 1;
  }
  const char open = s.range.kind == Range::Kind::kRatio ? '(' : '[';
  return std::string(token) + " in " + open + BoundText(s.range.lo, s.range.kind) + ", " +
         BoundText(s.range.hi, s.range.kind) + "]";
}

std::string FlagName(const Setting& s) {
  std::string f = std::string("--") + s.name;
  for (char& ch : f) if (ch == '_') ch = '-';
  return f;
}

const Setting* FindByFlag(std::string_view flag) {
  for (const Setting& s : kSettings) if (FlagName(s) == flag) return &s;
  return nullptr;
}

const Setting* FindByKey(std::string_view key) {
  for (const Setting& s : kSettings) if (key == s.name) return &s;
  return nullptr;
}

// Clears a repeatable setting's list (the first flag of a repeatable setting
// replaces the file's values instead of adding to them).
void ClearList(Config* c, const Setting& s) {
  if (std::string_view(s.name) == "listen") c->listen.clear();
  if (std::string_view(s.name) == "trusted_proxy") c->trusted_proxies.clear();
}

// A JSON scalar as the text a flag would carry.
Result<std::string> JsonScalarText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number_unsigned() || v.is_number_integer()) return v.dump();
  if (v.is_number_float()) {
    std::ostringstream os;
    os << v.get<double>();
    return os.str();
  }
  return Status::InvalidArgument("expected a string, number or boolean, got " + std::string(v.type_name()));
}

Status ApplyFile(const std::string& path, Config* c) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("config file " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  // A key given twice would silently keep the last value: refuse it, as any
  // other ambiguous setting.
  std::vector<std::vector<std::string>> keys;  // per open object
  std::string duplicate;
  std::string last_key;  // the setting whose value is being read, for a number out of range
  auto note_keys = [&keys, &duplicate, &last_key](int, nlohmann::json::parse_event_t event,
                                                  nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) keys.emplace_back();
    if (event == Event::object_end && !keys.empty()) keys.pop_back();
    if (event == Event::key && !keys.empty()) {
      const std::string key = parsed.get<std::string>();
      last_key = key;
      std::vector<std::string>& seen = keys.back();
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        if (duplicate.empty()) duplicate = key;
      } else {
        seen.push_back(key);
      }
    }
    return true;
  };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.str(), note_keys);
  } catch (const nlohmann::json::parse_error& e) {
    return Status::InvalidArgument("config file " + path + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    // Not only syntax: a number beyond a double's range (1e400) throws
    // out_of_range while it is read, before the setting sees it. Every
    // exception of the parser ends here, so a reload (HUP) with such a file
    // keeps the running configuration instead of ending the master.
    const std::string setting = last_key.empty() ? "" : last_key + ": ";
    return Status::InvalidArgument("config file " + path + ": " + setting + e.what());
  }
  if (!duplicate.empty()) {
    return Status::InvalidArgument("config file " + path + ": setting '" + duplicate + "' is given more than once");
  }
  if (!doc.is_object()) return Status::InvalidArgument("config file " + path + ": expected a JSON object");
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    // A key that starts with "//" is a comment (JSON has none): its value is
    // never read, so no setting is mistaken for one.
    if (std::string_view(it.key()).starts_with("//")) continue;
    const Setting* s = FindByKey(it.key());
    if (s == nullptr) {
      return Status::InvalidArgument("config file " + path + ": unknown setting '" + it.key() + "'");
    }
    const std::string where = "config file " + path + ": " + s->name;
    if (s->repeatable && it.value().is_array()) {
      // An empty list of a setting whose default is not "none" (listen)
      // would silently stand for that default.
      if (it.value().empty() && std::string_view(s->default_text) != "none") {
        return Invalid(where, "expected at least one value (default: " + std::string(s->default_text) + ")");
      }
      ClearList(c, *s);
      for (const auto& el : it.value()) {
        auto v = JsonScalarText(el);
        if (!v.ok()) return Invalid(where, v.status().message());
        Status st = s->apply(c, *v);
        if (!st.ok()) return Invalid(where, st.message());
      }
      continue;
    }
    auto v = JsonScalarText(it.value());
    if (!v.ok()) return Invalid(where, v.status().message());
    if (s->repeatable) ClearList(c, *s);
    Status st = s->apply(c, *v);
    if (!st.ok()) return Invalid(where, st.message());
  }
  return Status::OK();
}

// Applies every --workers=auto style default that depends on the machine.
void ResolveDefaults(Config* c) {
  if (c->workers_auto) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = n > 0 ? static_cast<uint32_t>(std::min<long>(n, 256)) : 1;
  }
  if (c->listen.empty()) c->listen.push_back(ListenAddress{"127.0.0.1", 8080});
  if (c->segment_bytes_auto) {
    // The data directory may not exist yet: its nearest existing ancestor
    // tells the disk. If nothing can be measured, the large default.
    auto fs_bytes = engine::FileSystemBytes(engine::PosixEnv(), c->data_dir);
    c->segment_bytes = fs_bytes.ok() ? engine::AutoSegmentBytes(fs_bytes.value()) : (256ull << 20);
  }
  if (c->disk_reserve_auto) c->disk_reserve_bytes = engine::AutoDiskReserveBytes(c->segment_bytes);
}

}  // namespace

engine::Options Config::EngineOptions() const {
  engine::Options o;
  o.segment_bytes = segment_bytes;
  o.compression_level = compression_level;
  o.sync = sync;
  o.sync_interval_ms = sync_interval_ms;
  o.sync_depth = sync_depth;
  // The configured key and value limits are enforced at the HTTP edge
  // (414/413, see serve_options.cc); the engine gets the format's own limits,
  // so a reload that changes them needs no writer restart and values stored
  // under a larger limit stay readable after the limit is lowered.
  o.max_key_bytes = engine::kLargestKeyBytes;
  o.max_value_bytes = engine::kLargestValueBytes;
  o.compaction_dead_ratio = compaction_dead_ratio;
  o.disk_reserve_bytes = disk_reserve_bytes;
  o.take_lock = true;
  o.read_only = read_only;
  return o;
}

bool WriterSettingsDiffer(const Config& running, const Config& next) {
  const engine::Options a = running.EngineOptions(), b = next.EngineOptions();
  return a.segment_bytes != b.segment_bytes || a.disk_reserve_bytes != b.disk_reserve_bytes || a.sync != b.sync ||
         a.sync_interval_ms != b.sync_interval_ms || a.sync_depth != b.sync_depth ||
         a.compaction_dead_ratio != b.compaction_dead_ratio ||
         running.compaction != next.compaction || running.staging_bytes != next.staging_bytes ||
         running.backup_max_ms != next.backup_max_ms || running.storage_timeout_ms != next.storage_timeout_ms ||
         running.commit_delay_us != next.commit_delay_us;
}

Result<ParsedCommandLine> ParseCommandLine(int argc, const char* const* argv) {
  ParsedCommandLine out;
  // Pass 1: the commands and --config (the file is applied before any flag).
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      out.command = Command::kHelp;
      return out;
    }
    if (a == "--version" || a == "-v") out.command = Command::kVersion;
  }
  if (out.command == Command::kVersion) return out;

  Config& c = out.config;
  std::vector<std::pair<const Setting*, std::string>> flags;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-t") {
      out.command = Command::kTest;
      continue;
    }
    std::string_view name = a;
    std::optional<std::string_view> value;
    if (size_t eq = a.find('='); a.substr(0, 2) == "--" && eq != std::string_view::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    }
    if (name == "--config") {
      if (!c.config_file.empty()) return Invalid("--config", "given more than once");
      if (!value) {
        if (i + 1 >= argc) return Invalid("--config", "missing value");
        value = argv[++i];
      }
      c.config_file = std::string(*value);
      continue;
    }
    const Setting* s = FindByFlag(name);
    if (s == nullptr) return Status::InvalidArgument("unknown flag '" + std::string(name) + "' (see --help)");
    // As nginx refuses a duplicate directive: the last of two values would
    // win silently (a wrapper's flag and the operator's, say).
    if (!s->repeatable && std::any_of(flags.begin(), flags.end(), [s](const auto& f) { return f.first == s; })) {
      return Invalid(FlagName(*s), "given more than once (only a repeatable setting may be)");
    }
    if (!s->takes_value) {
      flags.emplace_back(s, value ? std::string(*value) : std::string("true"));
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) return Invalid(FlagName(*s), "missing value");
      value = argv[++i];
    }
    flags.emplace_back(s, std::string(*value));
  }

  if (!c.config_file.empty()) {
    Status st = ApplyFile(c.config_file, &c);
    if (!st.ok()) return st;
  }
  std::vector<const Setting*> cleared;
  for (const auto& [s, value] : flags) {
    if (s->repeatable && std::find(cleared.begin(), cleared.end(), s) == cleared.end()) {
      ClearList(&c, *s);
      cleared.push_back(s);
    }
    Status st = s->apply(&c, value);
    if (!st.ok()) return Invalid(FlagName(*s), st.message());
  }
  ResolveDefaults(&c);
  Status st = Validate(c);
  if (!st.ok()) return st;
  return out;
}

namespace {

// Whether the kernel would refuse to bind both listeners: the same port (not 0, which
// picks a free one) in the same family, and the same address however it is spelled
// ("[0::1]" is "[::1]"), or either one that family's wildcard, which takes the port on
// every address of the family. An IPv6 listener is IPv6-only, so "[::]" and "0.0.0.0"
// on one port do not overlap.
bool ListenersOverlap(const ListenAddress& a, const ListenAddress& b) {
  if (a.port == 0 || a.port != b.port) return false;
  const bool v6 = a.host.find(':') != std::string::npos;
  if (v6 != (b.host.find(':') != std::string::npos)) return false;
  const int family = v6 ? AF_INET6 : AF_INET;
  unsigned char x[16] = {}, y[16] = {};
  if (inet_pton(family, a.host.c_str(), x) != 1 || inet_pton(family, b.host.c_str(), y) != 1) return false;
  const size_t n = v6 ? 16 : 4;
  static const unsigned char kAny[16] = {};
  return std::memcmp(x, y, n) == 0 || std::memcmp(x, kAny, n) == 0 || std::memcmp(y, kAny, n) == 0;
}

std::string OverlapMessage(const ListenAddress& a, const ListenAddress& b) {
  if (a.ToString() == b.ToString()) return a.ToString() + " is given twice";
  return a.ToString() + " and " + b.ToString() +
         " overlap (the same address, or a wildcard address, which takes the port on every address of its family)";
}

}  // namespace

Status Validate(const Config& c) {
  if (c.listen.empty()) return Invalid("--listen", "at least one address is needed");
  for (size_t i = 0; i < c.listen.size(); ++i) {
    for (size_t j = i + 1; j < c.listen.size(); ++j) {
      if (ListenersOverlap(c.listen[i], c.listen[j])) return Invalid("--listen", OverlapMessage(c.listen[i], c.listen[j]));
    }
    if (c.admin_listen && ListenersOverlap(*c.admin_listen, c.listen[i])) {
      return Invalid("--admin-listen", "must differ from every --listen address: " +
                                           OverlapMessage(*c.admin_listen, c.listen[i]));
    }
  }
  if (c.workers < 1 || c.workers > 256) return Invalid("--workers", "must be in [1, 256]");
  if (c.max_key_bytes < 1 || c.max_key_bytes > engine::kLargestKeyBytes) {
    return Invalid("--max-key-bytes", "must be in [1, " + std::to_string(engine::kLargestKeyBytes) + "]");
  }
  if (c.max_value_bytes > engine::kLargestValueBytes) {
    return Invalid("--max-value-bytes", "must be at most " + std::to_string(engine::kLargestValueBytes));
  }
  // A large value's staging file holds its bytes after a prefix (the record's
  // headers, its key and its content type), all counted in --staging-bytes.
  const uint64_t largest_staged = c.max_value_bytes + StagingPrefixBytes(c.max_key_bytes, engine::kMaxMetaBytes);
  if (c.staging_bytes < largest_staged) {
    return Invalid("--staging-bytes", "must be at least " + std::to_string(largest_staged) +
                                          " (--max-value-bytes plus the staged prefix of the longest key and "
                                          "content type), or no value of the largest size could ever be stored");
  }
  if (c.body_spill_bytes != 0 && c.body_spill_bytes < (1u << 20)) {
    return Invalid("--body-spill-bytes", "must be 0 (bodies are never spilled) or at least 1M (one body part)");
  }
  if (c.max_request_line_bytes > c.max_header_bytes) {
    return Invalid("--max-request-line-bytes", "must not exceed --max-header-bytes (" +
                                                   std::to_string(c.max_header_bytes) + ")");
  }
  if (c.max_header_line_bytes > c.max_header_bytes) {
    return Invalid("--max-header-line-bytes", "must not exceed --max-header-bytes (" +
                                                  std::to_string(c.max_header_bytes) + ")");
  }
  if (c.max_header_fields < 2) {
    return Invalid("--max-header-fields", "must be at least 2: a PUT carries Host and Content-Length (or "
                                          "Transfer-Encoding), so with fewer no value could be stored");
  }
  // The writer loop beats at least four times per --storage-timeout-ms; a
  // commit delay as long would let a working writer look stalled (/readyz).
  if (uint64_t{c.commit_delay_us} * 4 > c.storage_timeout_ms * 1000) {
    return Invalid("--commit-delay-us", "must be at most a quarter of --storage-timeout-ms (" +
                                            std::to_string(c.storage_timeout_ms) +
                                            " ms), or a delayed commit would look like a stalled writer");
  }
  if (c.max_key_bytes + 16 > c.max_request_line_bytes) {
    return Invalid("--max-key-bytes", "a key this long does not fit in --max-request-line-bytes (" +
                                          std::to_string(c.max_request_line_bytes) + ")");
  }
  Status st = engine::ValidateOptions(c.EngineOptions());
  if (!st.ok()) return Status::InvalidArgument(std::string("engine settings: ") + std::string(st.message()));
  return Status::OK();
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("expected ADDR:PORT with a numeric address (127.0.0.1:8080, [::1]:8080), got '" +
                                   std::string(text) + "'");
  };
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return bad();
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1) return bad();
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad();
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    in_addr a4;
    if (inet_pton(AF_INET, std::string(host).c_str(), &a4) != 1) return bad();
  }
  auto p = ParseUnsigned<uint16_t>(port, 0, 65535);
  if (!p.ok()) return bad();
  return ListenAddress{std::string(host), *p};
}

std::string ListenAddress::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<TrustedProxy> ParseTrustedProxy(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("expected a numeric address or CIDR block (10.0.0.1, 10.0.0.0/8, ::1), got '" +
                                   std::string(text) + "'");
  };
  TrustedProxy p;
  p.text = std::string(text);
  std::string_view addr = text;
  std::optional<std::string_view> bits;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    bits = text.substr(slash + 1);
  }
  std::string a(addr);
  if (inet_pton(AF_INET, a.c_str(), p.bytes) == 1) {
    p.ipv6 = false;
    p.prefix_bits = 32;
  } else if (inet_pton(AF_INET6, a.c_str(), p.bytes) == 1) {
    p.ipv6 = true;
    p.prefix_bits = 128;
  } else {
    return bad();
  }
  if (bits) {
    auto b = ParseUnsigned<uint8_t>(*bits, 0, p.prefix_bits);
    if (!b.ok()) return bad();
    p.prefix_bits = *b;
  }
  return p;
}

std::string HelpText() {
  std::string out =
      "usage: kingx [flags]\n"
      "\n"
      "An HTTP/1.1 key-value service built like nginx: a master process, a writer\n"
      "process and worker processes (GET/HEAD/PUT/DELETE /v1/kv/{key}).\n"
      "\n"
      "Every setting can also be given in a JSON file (--config) under the key\n"
      "shown in brackets; flags override the file. Sizes take K, M or G suffixes.\n"
      "\n";
  for (const Setting& s : kSettings) {
    std::string line = "  " + FlagName(s);
    if (s.takes_value) line += std::string(" ") + s.arg;
    out += line + "\n      " + s.help + "\n";
    if (s.range.kind != Range::Kind::kNone) out += "      " + RangeText(s) + "\n";
    out += std::string("      [") + s.name + "] default: " + s.default_text + "\n";
  }
  out +=
      "  --config FILE\n      JSON configuration file read before the flags\n"
      "  -t\n      check the configuration and exit (0 if valid, 1 if not)\n"
      "  --help\n      this text\n"
      "  --version\n      print the version and exit\n"
      "\n"
      "Signals to the master: TERM/INT fast stop, QUIT graceful stop, HUP reload\n"
      "the configuration, USR1 reopen log files; USR2 (nginx's binary upgrade) is\n"
      "ignored with a warning.\n";
  return out;
}

std::string VersionText() { return "kingx " KINGX_VERSION; }

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

}  // namespace kingx
