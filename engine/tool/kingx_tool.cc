// kingx-tool: put/get/delete/list/stat/verify on a stopped database or a
// backup, for humans and tests. Takes the data directory's lock
// (engine/data_dir_lock.h), so it refuses to run while a server (or another
// tool) holds it: the reading commands (get, list, stat, verify) take the
// shared read-only lock and open the database read-only, changing nothing
// in it; put, delete and compact take the exclusive one. A directory that
// holds no database (engine/data_dir_holds.h) is refused by every command
// but put, which creates one only in a missing or empty directory.
//
//   kingx-tool --data DIR [options] put KEY [FILE|-]   (value from FILE, or stdin)
//   kingx-tool --data DIR get KEY                       (value to stdout)
//   kingx-tool --data DIR delete KEY [KEY...]           (one open, group-committed batches)
//   kingx-tool --data DIR list [--prefix P] [--start-after K] [--limit N] [--encoding url]
//   kingx-tool --data DIR stat [--json]
//   kingx-tool --data DIR verify                        (checksum every record)
//   kingx-tool --data DIR compact [--all]               (compaction passes until nothing passes the threshold;
//                                                        --all: one pass over every segment holding dead bytes;
//                                                        the newest segment too: the next open appends to a fresh one)
//
// KEY, P and K are percent-decoded (%XX is the byte XX; every other byte
// stands for itself), so any binary key can be written, e.g. in the
// canonical spelling the API and `list --encoding url` use; --key-file FILE
// gives KEY's raw bytes instead.
//
// Exit status: 0 success; 1 not found (an absent KEY, said once as
// "kingx-tool: KEY: not found" by Absent, or a DIR that holds no database);
// 2 corruption found (verify); 64 usage
// (an unknown command or option, operands a command does not take, a number
// out of its option's range: found before the database is opened, so a
// usage error changes nothing); 70 any other error.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <filesystem>

#include "engine/compaction.h"
#include "engine/compress.h"
#include "engine/data_dir_holds.h"
#include "engine/disk_space.h"
#include "engine/env.h"
#include "engine/index.h"
#include "engine/key_lister.h"
#include "engine/keyspace_options.h"
#include "engine/keyspace_region.h"
#include "engine/options.h"
#include "engine/reader.h"
#include "engine/record.h"
#include "engine/verify.h"
#include "engine/writer.h"
#include "http/list_api.h"
#include "http/router.h"

namespace kingx::engine {
namespace {

constexpr int kExitOk = 0, kExitNotFound = 1, kExitCorrupt = 2, kExitUsage = 64, kExitError = 70;

int Usage() {
  std::fprintf(stderr,
               "usage: kingx-tool --data DIR [--segment-bytes SIZE|auto] [--disk-reserve-bytes SIZE|auto]\n"
               "                  [--compression-level N] [--max-key-bytes SIZE] [--max-value-bytes SIZE]\n"
               "                  [--key-file FILE] COMMAND\n"
               "  (SIZE: bytes, or with a K/M/G suffix (powers of 1024), as kingx's settings take it;\n"
               "   auto, the default, picks what the server picks for the data directory's disk;\n"
               "   each option at most once)\n"
               "  (--max-*-bytes bound what records may claim; the default, the format's largest,\n"
               "   is what the server uses: lower them only for a database written with lower ones)\n"
               "commands (get, list, stat and verify open DIR read-only and change nothing in it, so they\n"
               "work on a backup and beside read-only servers; every command refuses a directory a\n"
               "read-write server holds, and put, delete and compact one a read-only server holds;\n"
               "DIR must hold a database (a MANIFEST or a segment file): else every command but put exits 1\n"
               "naming it and creates nothing, and put creates one only in a missing or empty DIR):\n"
               "  put KEY [FILE|-]   store the bytes of FILE (default: stdin) under KEY\n"
               "  get KEY            write KEY's value to stdout\n"
               "  delete KEY [KEY...] delete each KEY, in batches under one open (\"deleted seq N\" per\n"
               "                     key; an absent one is said and the others are deleted)\n"
               "  list [--prefix P] [--start-after K] [--limit N] [--encoding url]\n"
               "                     keys in byte-wise order, one JSON object per line, as in the API's\n"
               "                     listing ({\"key\",\"etag\",\"size\",\"content_type\"}): a key that is not\n"
               "                     valid UTF-8 in its canonical percent-encoded spelling with\n"
               "                     \"key_encoding\":\"url\"; --encoding url: every key in that spelling\n"
               "  stat [--json]      keys, live/dead bytes, segments, corruptions (--json: per segment too,\n"
               "                     \"active\": the one the next open appends to)\n"
               "  verify             checksum every record of every segment (exit 2 on corruption)\n"
               "  compact [--all]    reclaim dead space: rewrite the segments whose dead fraction passes\n"
               "                     --compaction-dead-ratio R (default 0.5), or with --all every segment\n"
               "                     holding dead bytes whatever their share (one without is not copied),\n"
               "                     the newest too (the next open then appends to a fresh segment)\n"
               "exit status: 0 done; 1 a KEY is absent (get, delete: \"kingx-tool: KEY: not found\", KEY as\n"
               "  given, or --key-file's FILE) or DIR holds no database; 2 verify found damage; 64 usage;\n"
               "  70 any other error\n"
               "keys: KEY, P and K are percent-decoded (%%XX is the byte XX, a literal %% is %%25; every other\n"
               "  byte stands for itself): the canonical spelling of `list --encoding url` and of the API's\n"
               "  URLs works as it is. --key-file FILE: KEY is the raw bytes of FILE (then omit KEY).\n");
  return kExitUsage;
}

// A usage error: one line saying what is wrong (naming the option or the
// command), then exit 64. Nothing has been opened yet.
int UsageError(const std::string& what) {
  std::fprintf(stderr, "kingx-tool: %s\n", what.c_str());
  return kExitUsage;
}

// Parses text as a whole number in [min, max]: decimal digits only (no sign,
// no spaces, nothing after them).
bool ParseNumber(const char* text, uint64_t min, uint64_t max, uint64_t* out) {
  const char* end = text + std::strlen(text);
  auto [at, ec] = std::from_chars(text, end, *out);
  return ec == std::errc() && at == end && at != text && *out >= min && *out <= max;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "kingx-tool: %s\n", s.ToString().c_str());
  return s.Is(Code::kNotFound) ? kExitNotFound : (s.Is(Code::kCorruption) ? kExitCorrupt : kExitError);
}

// A key the database does not hold (get, delete): one line naming it as
// the user gave it (KEY as typed, or --key-file's FILE), exit 1.
int Absent(const std::string& name) {
  std::fprintf(stderr, "kingx-tool: %s: not found\n", name.c_str());
  return kExitNotFound;
}

// Deletes keys in order, kDeleteBatch per group commit. An absent key is
// reported on stderr and the rest go on (exit 1 at the end); any other error
// stops at once (keys of earlier batches, and of its own batch before it,
// stay deleted: each batch is applied as the server applies one).
constexpr size_t kDeleteBatch = 1024;

// names[i] is keys[i] as given on the command line, for messages.
int DeleteKeys(Writer& w, const std::vector<std::string>& keys, const std::vector<std::string>& names) {
  bool absent = false;
  for (size_t first = 0; first < keys.size(); first += kDeleteBatch) {
    const size_t n = std::min(kDeleteBatch, keys.size() - first);
    std::vector<WriteOp> ops(n);
    std::vector<WriteResult> results(n);
    for (size_t i = 0; i < n; ++i) {
      ops[i].type = OpType::kDelete;
      ops[i].key = keys[first + i];
    }
    w.Apply(ops, results);
    for (size_t i = 0; i < n; ++i) {
      const Status& st = results[i].status;
      if (st.Is(Code::kNotFound)) {
        Absent(names[first + i]);
        absent = true;
      } else if (!st.ok()) {
        return Fail(st);
      } else {
        std::printf("deleted seq %llu\n", static_cast<unsigned long long>(results[i].seq));
      }
    }
  }
  if (std::fflush(stdout) != 0) return kExitError;
  return absent ? kExitNotFound : kExitOk;
}

// An index region on anonymous memory: virtual size only, pages used as the table grows.
struct HeapIndex {
  void* base = nullptr;
  size_t bytes = 0;
  ~HeapIndex() {
    if (base != nullptr) ::munmap(base, bytes);
  }
};

Result<SharedIndex> MakeIndex(HeapIndex* region) {
  region->bytes = SharedIndex::RegionBytesFor(uint64_t{1} << 27);
  void* p = ::mmap(nullptr, region->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return Status::IOError("mmap of the index region failed");
  region->base = p;
  return SharedIndex::Create(p, region->bytes, SharedIndex::kMinCapacity);
}

Result<std::string> ReadInput(const std::string& path) {
  std::ostringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::IOError("cannot open " + path);
    ss << in.rdbuf();
  }
  return ss.str();
}

// A KEY, --prefix or --start-after argument: percent-decoded.
Result<std::string> DecodeKeyArg(const char* what, const std::string& text) {
  std::string out;
  if (!http::PercentDecode(text, &out))
    return Status::InvalidArgument(std::string(what) + " '" + text +
                                   "': invalid percent escape (write a literal '%' as %25)");
  return out;
}

// A scratch directory for the sorted key view of `list`, removed by the destructor.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

// `list`: the keys in the API's order and encoding, one JSON object per line,
// from a sorted view kept in a scratch directory outside the database (which
// is opened read-only): the database's keys/ read where it is when valid,
// the rest read back from the segments.
// The sorted key view's region, on anonymous memory. It must outlive the
// Writer whose keyspace uses it (declared before it).
struct ViewRegion {
  static constexpr uint32_t kTailEntries = 4096;
  static constexpr uint64_t kTailArenaBytes = 8ull << 20;
  void* base = nullptr;
  size_t bytes = 0;
  ~ViewRegion() {
    if (base != nullptr) ::munmap(base, bytes);
  }
  Result<KeyspaceRegion> Create() {
    bytes = KeyspaceRegion::RegionBytes(kTailEntries, kTailArenaBytes);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Status::IOError("mmap of the key view's region failed");
    base = p;
    return KeyspaceRegion::Create(base, bytes, kTailEntries, kTailArenaBytes);
  }
};

int List(Writer& w, ViewRegion& mem, ScratchDir& scratch, const std::string& dir, const Options& options,
         SharedIndex& index, const std::string& prefix, const std::string& start_after, uint64_t limit,
         bool url_encoding) {
  auto region = mem.Create();
  if (!region.ok()) return Fail(region.status());
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kingx-tool-keys-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return Fail(Status::IOError("cannot create a scratch directory " + pattern));
  scratch.path = pattern;
  KeyspaceOptions ko;
  ko.dir = scratch.path;
  ko.persist = false;
  ko.seed_dir = JoinPath(dir, "keys");
  ko.checkpoint_at_close = false;
  ko.log = options.log;
  if (Status s = w.StartKeyspace(region.value(), ko); !s.ok()) return Fail(s);
  constexpr uint64_t kViewTimeoutMs = 3'600'000;  // a build reads every segment once
  if (Status s = w.WaitKeyspaceReady(kViewTimeoutMs); !s.ok()) return Fail(s);
  KeyLister lister(PosixEnv(), dir, options, index, region.value());
  std::string after = start_after;
  uint64_t printed = 0;
  std::string line;
  for (;;) {
    ListRequest req;
    req.prefix = prefix;
    req.start_after = after;
    req.limit = static_cast<size_t>(limit == 0 ? 1000 : std::min<uint64_t>(1000, limit - printed));
    auto page = lister.List(req);
    if (!page.ok()) return Fail(page.status());
    for (const ListedKey& k : page->keys) {
      line.clear();
      http::AppendListedKeyJson(k, url_encoding, &line);
      line.push_back('\n');
      std::fwrite(line.data(), 1, line.size(), stdout);
    }
    printed += page->keys.size();
    if (page->complete || page->keys.empty() || (limit != 0 && printed >= limit)) break;
    after = page->keys.back().key;
  }
  return std::fflush(stdout) == 0 ? kExitOk : kExitError;
}

// engine/verify.h does the reading; exit 2 when anything is damaged or missing.
int Verify(const std::string& dir, const Options& options) {
  auto report = VerifyDatabase(PosixEnv(), dir, options,
                               [](const std::string& line) { std::printf("%s\n", line.c_str()); });
  if (!report.ok()) return Fail(report.status());
  std::printf("segments %llu records %llu corrupt %llu\n", static_cast<unsigned long long>(report->segments),
              static_cast<unsigned long long>(report->records), static_cast<unsigned long long>(report->damaged));
  return report->damaged > 0 ? kExitCorrupt : kExitOk;
}

int Run(int argc, char** argv) {
  Options options;
  // The server opens the engine with the largest limits the format holds (its
  // own limits apply at the HTTP edge), so records on disk may use them: a
  // smaller bound here would take long keys for corruption, and opening
  // would skip them or truncate the active segment at the first one.
  options.max_key_bytes = kLargestKeyBytes;
  options.max_value_bytes = kLargestValueBytes;
  std::string dir;
  bool json = false;
  bool compact_all = false;  // compact --all
  std::string key_file, prefix_arg, start_after_arg;
  uint64_t list_limit = 0;  // 0: every key
  bool url_encoding = false;
  bool auto_segment = true, auto_reserve = true;  // as the server: sizes from the data directory's disk
  std::vector<std::string> args;
  std::string bad;  // the first option whose value is wrong, said in a line of its own
  std::vector<std::string> given;  // options seen: each may come once (the last would win unseen)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      if (std::find(given.begin(), given.end(), a) == given.end()) given.push_back(a);
      else if (bad.empty()) bad = a + ": given more than once";
    }
    // The option's value as given: nullptr when it is missing (`bad` says so).
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        if (bad.empty()) bad = a + ": a value is missing";
        return nullptr;
      }
      return argv[++i];
    };
    // The option's value, a whole number in [min, max]: true when the option
    // is taken (a wrong or missing value sets `bad`).
    auto number = [&](uint64_t* out, uint64_t min = 0, uint64_t max = UINT64_MAX) {
      const char* text = value();
      if (text != nullptr && !ParseNumber(text, min, max, out) && bad.empty())
        bad = a + ": '" + text + "' is not a whole number from " + std::to_string(min) + " to " + std::to_string(max);
      return true;
    };
    // The option's value, a size as kingx's settings take one (bytes, or
    // with a K/M/G suffix) in [min, max].
    auto size = [&](uint64_t* out, uint64_t min = 0, uint64_t max = UINT64_MAX) {
      const char* text = value();
      if (text == nullptr) return;
      auto r = ParseSize(text, min, max);
      if (r.ok()) *out = r.value();
      else if (bad.empty()) bad = a + ": " + std::string(r.status().message());
    };
    // "auto" or a size.
    auto size_or_auto = [&](uint64_t* out, bool* is_auto) {
      if (i + 1 < argc && std::strcmp(argv[i + 1], "auto") == 0) {
        ++i;
        *is_auto = true;
        return;
      }
      *is_auto = false;
      size(out);
    };
    // An option taking a text: its value, or `bad` when it is missing.
    auto text = [&](std::string* out) {
      if (const char* t = value()) *out = t;
    };
    uint64_t v = 0;
    if (a == "--data") text(&dir);
    else if (a == "--json") json = true;
    else if (a == "--all") compact_all = true;
    else if (a == "--key-file") text(&key_file);
    else if (a == "--prefix") text(&prefix_arg);
    else if (a == "--start-after") text(&start_after_arg);
    else if (a == "--limit") number(&list_limit, 1);
    else if (a == "--encoding") {
      const char* t = value();
      if (t != nullptr && std::strcmp(t, "url") == 0) url_encoding = true;
      else if (t != nullptr && bad.empty()) bad = a + ": the only encoding is 'url', got '" + t + "'";
    }
    else if (a == "--compaction-dead-ratio") {
      const char* t = value();
      char* end = nullptr;
      if (t != nullptr) options.compaction_dead_ratio = std::strtod(t, &end);
      if (t != nullptr && (end == t || *end != '\0') && bad.empty()) bad = a + ": '" + t + "' is not a number";
    }
    else if (a == "--segment-bytes") size_or_auto(&options.segment_bytes, &auto_segment);
    else if (a == "--disk-reserve-bytes") size_or_auto(&options.disk_reserve_bytes, &auto_reserve);
    else if (a == "--compression-level") number(&v, 0, INT_MAX), options.compression_level = static_cast<int>(v);
    else if (a == "--max-key-bytes") size(&v, 0, UINT32_MAX), options.max_key_bytes = static_cast<uint32_t>(v);
    else if (a == "--max-value-bytes") size(&options.max_value_bytes);
    else if (a == "--help" || a == "-h") return Usage(), kExitOk;
    else if (a.size() > 2 && a.compare(0, 2, "--") == 0) return UsageError("unknown option " + a), Usage();
    else args.push_back(a);
  }
  if (!bad.empty()) return UsageError(bad);
  if (dir.empty() || args.empty()) return Usage();
  // The command and its operands are checked before anything is opened: a
  // mistyped command must not open the database (read-write, recovery would
  // run and could change it) only to print the usage.
  const std::string& cmd = args[0];
  // The key: KEY percent-decoded, or --key-file's raw bytes (then KEY is omitted).
  const bool keyed = cmd == "get" || cmd == "put" || cmd == "delete";
  const size_t key_args = keyed && key_file.empty() ? 1 : 0;  // arguments after the command taken by KEY
  if (args.size() < 1 + key_args) return UsageError("'" + cmd + "' needs a KEY (or --key-file)"), Usage();
  const size_t rest = args.size() - 1 - key_args;  // arguments after the command and KEY
  const bool known = cmd == "put" || cmd == "get" || cmd == "delete" || cmd == "list" || cmd == "stat" ||
                     cmd == "verify" || cmd == "compact";
  if (!known) return UsageError("unknown command '" + cmd + "'"), Usage();
  const bool operands_ok = cmd == "put"      ? rest <= 1
                           : cmd == "delete" ? rest == 0 || key_file.empty()
                                             : rest == 0;
  if (!operands_ok) return UsageError("too many operands for '" + cmd + "'"), Usage();
  if (auto_segment) {
    auto fs_bytes = FileSystemBytes(PosixEnv(), dir);
    options.segment_bytes = fs_bytes.ok() ? AutoSegmentBytes(fs_bytes.value()) : (256ull << 20);
  }
  if (auto_reserve) options.disk_reserve_bytes = AutoDiskReserveBytes(options.segment_bytes);
  Status vs = ValidateOptions(options);
  if (!vs.ok()) return Fail(vs);
  options.log = [](const std::string& line) { std::fprintf(stderr, "kingx-tool: %s\n", line.c_str()); };
  if (cmd == "verify") return Verify(dir, options);
  // A typo in --data must not become a new database: only put creates one,
  // and only where nothing else lives.
  Status here = cmd == "put" ? RequireDatabaseOrRoom(PosixEnv(), dir) : RequireDatabase(PosixEnv(), dir);
  if (!here.ok()) return Fail(here);
  // The reading commands change nothing in the directory (a backup stays as it was).
  options.read_only = cmd == "get" || cmd == "list" || cmd == "stat";
  std::string key;
  if (keyed && !key_file.empty()) {
    auto bytes = ReadInput(key_file);
    if (!bytes.ok()) return Fail(bytes.status());
    key = std::move(bytes.value());
  } else if (keyed) {
    auto k = DecodeKeyArg("KEY", args[1]);
    if (!k.ok()) return std::fprintf(stderr, "kingx-tool: %s\n", k.status().ToString().c_str()), kExitUsage;
    key = std::move(k.value());
  }
  if (keyed && key.empty()) return Fail(Status::InvalidArgument("the key is empty"));
  const std::string key_name = !keyed ? std::string() : key_file.empty() ? args[1] : key_file;  // for messages
  std::string prefix, start_after;
  for (auto [what, text, out] : {std::tuple{"--prefix", &prefix_arg, &prefix},
                                 std::tuple{"--start-after", &start_after_arg, &start_after}}) {
    auto v = DecodeKeyArg(what, *text);
    if (!v.ok()) return std::fprintf(stderr, "kingx-tool: %s\n", v.status().ToString().c_str()), kExitUsage;
    *out = std::move(v.value());
  }

  HeapIndex region;
  ViewRegion view_region;  // `list`: outlives the Writer (its keyspace thread reads it)
  ScratchDir view_scratch;
  auto index = MakeIndex(&region);
  if (!index.ok()) return Fail(index.status());
  auto writer = Writer::Open(PosixEnv(), dir, options, index.value());
  if (!writer.ok()) return Fail(writer.status());
  Writer& w = *writer.value();

  if (cmd == "put") {
    auto value = ReadInput(rest == 1 ? args.back() : "-");
    if (!value.ok()) return Fail(value.status());
    std::string compressed;
    WriteOp op;
    op.key = key;
    op.codec = EncodeValue(value.value(), options.compression_level, options.compress_min_bytes, &compressed);
    op.stored = op.codec == Codec::kZstd ? std::string_view(compressed) : std::string_view(value.value());
    op.raw_len = value->size();
    op.content_type = "application/octet-stream";
    WriteResult r;
    w.Apply({&op, 1}, {&r, 1});
    if (!r.status.ok()) return Fail(r.status);
    std::printf("%s seq %llu\n", r.existed ? "updated" : "created", static_cast<unsigned long long>(r.seq));
    return kExitOk;
  }
  if (cmd == "delete") {
    std::vector<std::string> keys{key};
    std::vector<std::string> names{key_name};
    for (size_t i = 1 + key_args; i < args.size(); ++i) {
      auto k = DecodeKeyArg("KEY", args[i]);
      if (!k.ok()) return std::fprintf(stderr, "kingx-tool: %s\n", k.status().ToString().c_str()), kExitUsage;
      if (k->empty()) return Fail(Status::InvalidArgument("the key is empty"));
      keys.push_back(std::move(k.value()));
      names.push_back(args[i]);
    }
    return DeleteKeys(w, keys, names);
  }
  if (cmd == "list")
    return List(w, view_region, view_scratch, dir, options, index.value(), prefix, start_after, list_limit,
                url_encoding);
  if (cmd == "get") {
    Reader reader(PosixEnv(), dir, options, index.value());
    auto v = reader.Get(key);
    if (v.status().Is(Code::kNotFound)) return Absent(key_name);
    if (!v.ok()) return Fail(v.status());
    std::fwrite(v->data.data(), 1, v->data.size(), stdout);
    return std::fflush(stdout) == 0 ? kExitOk : kExitError;
  }
  if (cmd == "compact") {
    // Unthrottled passes until one finds nothing to do (bounded: each pass
    // deletes what it picked, so the count of candidates shrinks).
    CompactionOptions co;
    co.rate_bytes_per_sec = 0;
    co.pick_reclaimable = compact_all;
    co.offline = true;  // the LOCK is ours: nothing appends after the passes
    co.log = options.log;
    Compactor compactor(w, co);
    const uint64_t before = w.Stats().live_bytes + w.Stats().dead_bytes;
    for (int pass = 0; pass < 1000; ++pass) {
      PassReport report;
      Status s = compactor.RunOnce(&report);
      if (!s.ok()) return Fail(s);
      if (report.inputs == 0 || compact_all || report.deleted == 0) break;
    }
    const CompactionStats cs = compactor.stats();
    const uint64_t after = w.Stats().live_bytes + w.Stats().dead_bytes;
    std::printf("compacted %llu segment(s) into %llu, record bytes %llu -> %llu\n",
                static_cast<unsigned long long>(cs.segments_compacted),
                static_cast<unsigned long long>(cs.segments_written), static_cast<unsigned long long>(before),
                static_cast<unsigned long long>(after));
    return kExitOk;
  }
  if (cmd == "stat") {
    WriterStats s = w.Stats();
    if (json) {
      std::printf("{\"keys\":%llu,\"live_bytes\":%llu,\"dead_bytes\":%llu,\"segments\":%llu,\"corruptions\":%llu,"
                  "\"next_seq\":%llu,\"per_segment\":[",
                  static_cast<unsigned long long>(s.keys), static_cast<unsigned long long>(s.live_bytes),
                  static_cast<unsigned long long>(s.dead_bytes), static_cast<unsigned long long>(s.segments),
                  static_cast<unsigned long long>(s.corruptions), static_cast<unsigned long long>(s.next_seq));
      for (size_t i = 0; i < s.per_segment.size(); ++i) {
        const SegmentStats& g = s.per_segment[i];
        std::printf("%s{\"id\":%u,\"bytes\":%llu,\"live_bytes\":%llu,\"dead_bytes\":%llu,\"active\":%s}",
                    i ? "," : "", g.id, static_cast<unsigned long long>(g.bytes),
                    static_cast<unsigned long long>(g.live_bytes), static_cast<unsigned long long>(g.dead_bytes),
                    g.active ? "true" : "false");
      }
      std::printf("]}\n");
    } else {
      std::printf("keys %llu\nlive_bytes %llu\ndead_bytes %llu\nsegments %llu\ncorruptions %llu\n",
                  static_cast<unsigned long long>(s.keys), static_cast<unsigned long long>(s.live_bytes),
                  static_cast<unsigned long long>(s.dead_bytes), static_cast<unsigned long long>(s.segments),
                  static_cast<unsigned long long>(s.corruptions));
    }
    return kExitOk;
  }
  return Usage();
}

}  // namespace
}  // namespace kingx::engine

int main(int argc, char** argv) { return kingx::engine::Run(argc, argv); }
