// kingx-tool: put/get/delete/stat/verify on a stopped database, for humans
// and tests. Takes the data directory's LOCK, so it refuses to run while a
// server (or another tool) holds it.
//
//   kingx-tool --data DIR [options] put KEY [FILE|-]   (value from FILE, or stdin)
//   kingx-tool --data DIR get KEY                       (value to stdout)
//   kingx-tool --data DIR delete KEY
//   kingx-tool --data DIR stat [--json]
//   kingx-tool --data DIR verify                        (checksum every record)
//   kingx-tool --data DIR compact [--all]               (compaction passes until nothing passes the threshold)
//
// Exit status: 0 success; 1 not found; 2 corruption found (verify) ; 64 usage;
// 70 any other error.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/compaction.h"
#include "engine/compress.h"
#include "engine/disk_space.h"
#include "engine/env.h"
#include "engine/index.h"
#include "engine/options.h"
#include "engine/reader.h"
#include "engine/record.h"
#include "engine/writer.h"

namespace kingx::engine {
namespace {

constexpr int kExitOk = 0, kExitNotFound = 1, kExitCorrupt = 2, kExitUsage = 64, kExitError = 70;

int Usage() {
  std::fprintf(stderr,
               "usage: kingx-tool --data DIR [--segment-bytes N|auto] [--disk-reserve-bytes N|auto]\n"
               "                  [--compression-level N] [--max-key-bytes N] [--max-value-bytes N] COMMAND\n"
               "  (auto, the default, picks what the server picks for the data directory's disk)\n"
               "  (--max-*-bytes bound what records may claim; the default, the format's largest,\n"
               "   is what the server uses: lower them only for a database written with lower ones)\n"
               "commands:\n"
               "  put KEY [FILE|-]   store the bytes of FILE (default: stdin) under KEY\n"
               "  get KEY            write KEY's value to stdout (exit 1 if absent)\n"
               "  delete KEY         delete KEY (exit 1 if absent)\n"
               "  stat [--json]      keys, live/dead bytes, segments, corruptions\n"
               "  verify             checksum every record of every segment (exit 2 on corruption)\n"
               "  compact [--all]    reclaim dead space: rewrite segments whose dead fraction passes\n"
               "                     --compaction-dead-ratio R (default 0.5), or every sealed segment with --all\n");
  return kExitUsage;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "kingx-tool: %s\n", s.ToString().c_str());
  return s.Is(Code::kNotFound) ? kExitNotFound : (s.Is(Code::kCorruption) ? kExitCorrupt : kExitError);
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

int Verify(const std::string& dir, const Options& options) {
  Env& env = PosixEnv();
  auto lock = env.LockFile(JoinPath(dir, "LOCK"));
  if (!lock.ok()) return Fail(lock.status());
  auto names = env.ListDir(dir);
  if (!names.ok()) return Fail(names.status());
  std::vector<uint32_t> ids;
  for (const auto& n : names.value()) {
    uint32_t id;
    if (ParseSegmentFileName(n, &id)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  const RecordLimits limits{options.max_key_bytes, options.max_value_bytes};
  uint64_t records = 0, corrupt = 0, torn_bytes = 0;
  // The newest appendable segment may end in a torn tail, which opening truncates: not corruption.
  uint32_t tail_id = 0;
  for (uint32_t id : ids) {
    auto m = env.MapReadOnly(JoinPath(dir, SegmentFileName(id)), 0);
    if (!m.ok()) return Fail(m.status());
    auto size = m.value()->FileSize();
    if (!size.ok()) return Fail(size.status());
    SegmentHeader h;
    if (DecodeSegmentHeader(m.value()->data(), size.value(), &h).ok() && !(h.flags & kSegmentFlagSealedAtBirth))
      tail_id = id;
  }
  std::string scratch;
  for (uint32_t id : ids) {
    auto m = env.MapReadOnly(JoinPath(dir, SegmentFileName(id)), 0);
    if (!m.ok()) return Fail(m.status());
    const uint64_t size = m.value()->FileSize().ok() ? m.value()->FileSize().value() : 0;
    const char* data = m.value()->data();
    SegmentHeader sh;
    Status s = DecodeSegmentHeader(data, size, &sh);
    if (!s.ok()) {
      std::printf("segment %u: bad header: %s\n", id, s.ToString().c_str());
      ++corrupt;
      continue;
    }
    uint64_t off = kSegmentHeaderBytes;
    while (off < size) {
      auto rec = DecodeRecord(data + off, size - off, limits);
      if (rec.ok() && rec->header.type == RecordType::kPut) {
        Status ds = DecodeValue(rec->header.codec, rec->stored, rec->header.raw_len, limits.max_value_bytes, &scratch);
        if (!ds.ok()) rec = ds;
      }
      if (rec.ok()) {
        ++records;
        off += rec->header.total_bytes();
        continue;
      }
      if (id == tail_id) {
        torn_bytes = size - off;
        std::printf("segment %u: torn tail at offset %llu (%llu bytes, truncated on open): %s\n", id,
                    static_cast<unsigned long long>(off), static_cast<unsigned long long>(torn_bytes),
                    rec.status().ToString().c_str());
        break;
      }
      ++corrupt;
      std::printf("segment %u: corrupt record at offset %llu: %s\n", id, static_cast<unsigned long long>(off),
                  rec.status().ToString().c_str());
      uint64_t next = off + 1;
      while (next + kRecordHeaderBytes <= size && !DecodeRecord(data + next, size - next, limits).ok()) ++next;
      off = next + kRecordHeaderBytes <= size ? next : size;
    }
  }
  std::printf("segments %zu records %llu corrupt %llu\n", ids.size(), static_cast<unsigned long long>(records),
              static_cast<unsigned long long>(corrupt));
  return corrupt > 0 ? kExitCorrupt : kExitOk;
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
  bool auto_segment = true, auto_reserve = true;  // as the server: sizes from the data directory's disk
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next_u64 = [&](uint64_t* out) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      *out = std::strtoull(argv[++i], &end, 10);
      return end != nullptr && *end == '\0';
    };
    // "auto" or a number of bytes.
    auto size_or_auto = [&](uint64_t* out, bool* is_auto) {
      if (i + 1 < argc && std::strcmp(argv[i + 1], "auto") == 0) {
        ++i;
        *is_auto = true;
        return true;
      }
      *is_auto = false;
      return next_u64(out);
    };
    uint64_t v = 0;
    if (a == "--data" && i + 1 < argc) dir = argv[++i];
    else if (a == "--json") json = true;
    else if (a == "--all") compact_all = true;
    else if (a == "--compaction-dead-ratio" && i + 1 < argc) options.compaction_dead_ratio = std::strtod(argv[++i], nullptr);
    else if (a == "--segment-bytes" && size_or_auto(&options.segment_bytes, &auto_segment)) continue;
    else if (a == "--disk-reserve-bytes" && size_or_auto(&options.disk_reserve_bytes, &auto_reserve)) continue;
    else if (a == "--compression-level" && next_u64(&v)) options.compression_level = static_cast<int>(v);
    else if (a == "--max-key-bytes" && next_u64(&v)) options.max_key_bytes = static_cast<uint32_t>(v);
    else if (a == "--max-value-bytes" && next_u64(&v)) options.max_value_bytes = v;
    else if (a == "--help" || a == "-h") return Usage(), kExitOk;
    else if (a.size() > 2 && a.compare(0, 2, "--") == 0) return Usage();
    else args.push_back(a);
  }
  if (dir.empty() || args.empty()) return Usage();
  if (auto_segment) {
    auto fs_bytes = FileSystemBytes(PosixEnv(), dir);
    options.segment_bytes = fs_bytes.ok() ? AutoSegmentBytes(fs_bytes.value()) : (256ull << 20);
  }
  if (auto_reserve) options.disk_reserve_bytes = AutoDiskReserveBytes(options.segment_bytes);
  Status vs = ValidateOptions(options);
  if (!vs.ok()) return Fail(vs);
  options.log = [](const std::string& line) { std::fprintf(stderr, "kingx-tool: %s\n", line.c_str()); };
  const std::string& cmd = args[0];
  if (cmd == "verify" && args.size() == 1) return Verify(dir, options);

  HeapIndex region;
  auto index = MakeIndex(&region);
  if (!index.ok()) return Fail(index.status());
  auto writer = Writer::Open(PosixEnv(), dir, options, index.value());
  if (!writer.ok()) return Fail(writer.status());
  Writer& w = *writer.value();

  if (cmd == "put" && (args.size() == 2 || args.size() == 3)) {
    auto value = ReadInput(args.size() == 3 ? args[2] : "-");
    if (!value.ok()) return Fail(value.status());
    std::string compressed;
    WriteOp op;
    op.key = args[1];
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
  if (cmd == "delete" && args.size() == 2) {
    WriteOp op;
    op.type = OpType::kDelete;
    op.key = args[1];
    WriteResult r;
    w.Apply({&op, 1}, {&r, 1});
    if (!r.status.ok()) return Fail(r.status);
    std::printf("deleted seq %llu\n", static_cast<unsigned long long>(r.seq));
    return kExitOk;
  }
  if (cmd == "get" && args.size() == 2) {
    Reader reader(PosixEnv(), dir, options, index.value());
    auto v = reader.Get(args[1]);
    if (!v.ok()) return Fail(v.status());
    std::fwrite(v->data.data(), 1, v->data.size(), stdout);
    return std::fflush(stdout) == 0 ? kExitOk : kExitError;
  }
  if (cmd == "compact" && args.size() == 1) {
    // Unthrottled passes until one finds nothing to do (bounded: each pass
    // deletes what it picked, so the count of candidates shrinks).
    CompactionOptions co;
    co.rate_bytes_per_sec = 0;
    co.pick_all = compact_all;
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
  if (cmd == "stat" && args.size() == 1) {
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
