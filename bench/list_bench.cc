// list_bench: what listing costs, through the engine (KeyLister) and over HTTP.
// bench/list_bench.py drives it; it can be run by hand too.
//
//   list_bench fill DIR KEYS
//       Writes KEYS keys (100-byte values, not durable until the final sync)
//       through the engine into the empty DIR, closes, then opens DIR again
//       with the sorted key view started: the view is built from the segments
//       (no keys/ yet), left to settle (no run written for 4 s) and checkpointed
//       at close, as a server leaves it. Reports the fill rate, the view's build
//       time, and what the view costs per key on disk (keys/) and in RAM.
//   list_bench overwrite DIR KEYS ROUNDS
//       Opens DIR (made by `fill DIR KEYS`) with the sorted key view running
//       and overwrites every one of its KEYS keys ROUNDS times (each round in
//       a new random order, batches of 1,000, 100-byte values), then closes
//       at once (the view checkpointed as it stands, no settling): a database
//       whose keys were all overwritten since the view last merged them.
//   list_bench puts DIR PUTS [KEYS]
//       PUTS single-put batches into DIR with the view running (for
//       callgrind: what the keyspace thread costs per put): new keys into an
//       empty DIR, or overwrites of KEYS keys (see Puts).
//   list_bench engine PAGES DIR...
//       Opens every DIR (a view that exists is reused, as a server restart
//       does), then times PAGES rounds; each round asks every DIR in turn for
//       the first 1,000 keys under a random bucket prefix and for 1,000 keys
//       after a random key of that bucket (interleaved, so a load change hits
//       every DIR alike). Then one full listing of each DIR in pages of 1,000.
//   list_bench http PAGES PORT:KEYS...
//       The same pages and full listings through running kingx servers on
//       127.0.0.1:PORT (one keep-alive connection each; the full listing
//       follows the API's cursor).
//
// Keys are "b<bucket, 6 digits>/k<index, 9 digits>" with KEYS/10,000 buckets
// (at least 1), so a prefix "b<bucket>/" selects 10,000 keys whatever the
// size of the database: the same page at every size.
// Output: one "name value unit" line per figure on stdout (name carries the
// database's key count); progress and errors on stderr. Exit 0, or 1 when a
// page came back wrong (fewer keys than expected, a listing that missed keys).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/env.h"
#include "engine/index.h"
#include "engine/key_lister.h"
#include "engine/keyspace_options.h"
#include "engine/keyspace_region.h"
#include "engine/options.h"
#include "engine/writer.h"

namespace {

using namespace kingx::engine;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kBucketKeys = 10000;
constexpr size_t kPage = 1000;
// The server's tail sizes (src/ipc/shm.h).
constexpr uint32_t kTailEntries = 4096;
constexpr uint64_t kTailArenaBytes = 8ull << 20;

uint64_t BucketsFor(uint64_t keys) { return std::max<uint64_t>(1, keys / kBucketKeys); }

std::string Key(uint64_t i, uint64_t buckets) {
  char k[40];
  std::snprintf(k, sizeof k, "b%06llu/k%09llu", static_cast<unsigned long long>(i % buckets),
                static_cast<unsigned long long>(i));
  return k;
}

std::string Prefix(uint64_t bucket) {
  char p[32];
  std::snprintf(p, sizeof p, "b%06llu/", static_cast<unsigned long long>(bucket));
  return p;
}

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

void Report(const std::string& name, double value, const char* unit) {
  std::printf("%s %.3f %s\n", name.c_str(), value, unit);
  std::fflush(stdout);
}

void ReportTimes(const std::string& name, std::vector<double> us) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  Report(name + "_p50", us[us.size() / 2], "us");
  Report(name + "_p90", us[us.size() * 9 / 10], "us");
  Report(name + "_mean", std::accumulate(us.begin(), us.end(), 0.0) / double(us.size()), "us");
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) n += e.file_size(ec);
  return n;
}

double MaxRssBytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) * 1024.0;
}

// One database opened as the writer process opens it, with its sorted view.
struct Db {
  std::string dir;
  void* index_mem = MAP_FAILED;
  size_t index_bytes = 0;
  void* ks_mem = MAP_FAILED;
  size_t ks_bytes = 0;
  std::unique_ptr<SharedIndex> index;
  std::unique_ptr<KeyspaceRegion> region;
  std::unique_ptr<Writer> writer;
  std::unique_ptr<KeyLister> lister;
  Options options;

  ~Db() {
    lister.reset();
    writer.reset();  // checkpoints the view
    if (index_mem != MAP_FAILED) munmap(index_mem, index_bytes);
    if (ks_mem != MAP_FAILED) munmap(ks_mem, ks_bytes);
  }

  Status Open(const std::string& d, uint64_t max_keys, bool with_view) {
    dir = d;
    index_bytes = SharedIndex::RegionBytesFor(max_keys);
    index_mem = mmap(nullptr, index_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ks_bytes = KeyspaceRegion::RegionBytes(kTailEntries, kTailArenaBytes);
    ks_mem = mmap(nullptr, ks_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (index_mem == MAP_FAILED || ks_mem == MAP_FAILED) return Status::IOError("mmap");
    auto idx = SharedIndex::Create(index_mem, index_bytes, SharedIndex::kMinCapacity);
    if (!idx.ok()) return idx.status();
    index = std::make_unique<SharedIndex>(std::move(idx.value()));
    auto ks = KeyspaceRegion::Create(ks_mem, ks_bytes, kTailEntries, kTailArenaBytes);
    if (!ks.ok()) return ks.status();
    region = std::make_unique<KeyspaceRegion>(ks.value());
    options.sync = SyncMode::kNone;
    auto w = Writer::Open(PosixEnv(), dir, options, *index);
    if (!w.ok()) return w.status();
    writer = std::move(w.value());
    if (!with_view) return Status::OK();
    KeyspaceOptions ko;
    ko.dir = JoinPath(dir, "keys");
    ko.log = [](const std::string& l) { std::fprintf(stderr, "engine: %s\n", l.c_str()); };
    if (Status s = writer->StartKeyspace(*region, ko); !s.ok()) return s;
    lister = std::make_unique<KeyLister>(PosixEnv(), dir, options, *index, *region);
    return Status::OK();
  }

  uint64_t keys() const { return index->counters().keys.load(); }

  // Runs in the published view.
  size_t Runs() const {
    KeyspaceSnapshot snap;
    return region->Snapshot("", "", &snap).ok() ? snap.run_ids.size() : ~size_t{0};
  }

  // Waits for the view, then for its idle merges to end, as on a server at
  // rest: at most two runs, and for 4 s no run written and no stale entry
  // repointed (a long merge writes its run only at its end; bounded: 1 h).
  // Returns the seconds until the view was ready.
  double Settle() {
    const auto t0 = Clock::now();
    if (!writer->WaitKeyspaceReady(3600 * 1000).ok()) std::fprintf(stderr, "list_bench: view not ready\n");
    const double ready_s = Us(Clock::now() - t0) / 1e6;
    uint64_t last = ~uint64_t{0};
    for (int quiet = 0; quiet < 8 && Clock::now() - t0 < std::chrono::hours(1);) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      const uint64_t now = region->counters().runs_written.load() + region->counters().entries_repaired.load();
      quiet = now == last && Runs() <= 2 ? quiet + 1 : 0;
      last = now;
    }
    std::fprintf(stderr, "list_bench: %s settled in %.1f s with %zu runs\n", dir.c_str(), Us(Clock::now() - t0) / 1e6,
                 Runs());
    return ready_s;
  }
};

// Puts each of the `keys` keys once, in an order shuffled by `seed`, in
// batches of kPage (100-byte values), then syncs. false (said on stderr) when
// a put or the sync fails.
bool PutEveryKey(Db& db, uint64_t keys, uint64_t seed) {
  const uint64_t buckets = BucketsFor(keys);
  std::vector<uint64_t> order(keys);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  const std::string value(100, 'v');
  std::vector<std::string> names(kPage);
  std::vector<WriteOp> ops(kPage);
  std::vector<WriteResult> results(kPage);
  for (uint64_t start = 0; start < keys; start += kPage) {
    const size_t m = static_cast<size_t>(std::min<uint64_t>(kPage, keys - start));
    for (size_t j = 0; j < m; ++j) {
      names[j] = Key(order[start + j], buckets);
      ops[j] = WriteOp{};
      ops[j].key = names[j];
      ops[j].content_type = "application/octet-stream";
      ops[j].stored = value;
      ops[j].raw_len = value.size();
    }
    db.writer->Apply({ops.data(), m}, {results.data(), m});
    for (size_t j = 0; j < m; ++j)
      if (!results[j].status.ok()) {
        std::fprintf(stderr, "list_bench: put %s: %s\n", names[j].c_str(), results[j].status.ToString().c_str());
        return false;
      }
  }
  if (Status s = db.writer->Sync(); !s.ok()) {
    std::fprintf(stderr, "list_bench: sync: %s\n", s.ToString().c_str());
    return false;
  }
  return true;
}

int Fill(const std::string& dir, uint64_t keys) {
  const std::string n = std::to_string(keys);
  {
    Db db;
    if (Status s = db.Open(dir, keys + 1000, false); !s.ok()) {
      std::fprintf(stderr, "list_bench: open %s: %s\n", dir.c_str(), s.ToString().c_str());
      return 1;
    }
    const auto t0 = Clock::now();
    if (!PutEveryKey(db, keys, 1)) return 1;
    Report("fill_keys_per_s_" + n, double(keys) / (Us(Clock::now() - t0) / 1e6), "keys/s");
    Report("index_table_bytes_per_key_" + n, double(db.index->TableBytes()) / double(keys), "B");
  }
  {
    Db db;
    if (Status s = db.Open(dir, keys + 1000, true); !s.ok()) {
      std::fprintf(stderr, "list_bench: reopen %s: %s\n", dir.c_str(), s.ToString().c_str());
      return 1;
    }
    Report("view_build_from_segments_s_" + n, db.Settle(), "s");
    Report("view_region_bytes", double(db.ks_bytes), "B");
    Report("view_runs_" + n, double(db.Runs()), "runs");
  }  // the last checkpoint deletes the runs merges replaced
  Report("view_keys_dir_bytes_per_key_" + n, double(DirBytes(JoinPath(dir, "keys"))) / double(keys), "B");
  return 0;
}

// ---- HTTP client: one keep-alive connection, Content-Length bodies only.
struct Http {
  int fd = -1;
  std::string buf;
  ~Http() {
    if (fd >= 0) close(fd);
  }
  bool Connect(int port) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  // GET target; returns the status (-1 on a transport error), body in *body.
  int Get(const std::string& target, std::string* body) {
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) return -1;
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos)
      if (!Fill()) return -1;
    const int status = std::atoi(buf.c_str() + 9);
    const size_t cl_pos = buf.find("Content-Length: ");
    if (cl_pos == std::string::npos || cl_pos > head_end) return -1;
    const size_t cl = std::strtoull(buf.c_str() + cl_pos + 16, nullptr, 10);
    while (buf.size() < head_end + 4 + cl)
      if (!Fill()) return -1;
    body->assign(buf, head_end + 4, cl);
    buf.erase(0, head_end + 4 + cl);
    return status;
  }
  bool Fill() {
    char tmp[1 << 16];
    const ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  }
};

size_t CountKeys(const std::string& body) {
  size_t n = 0;
  for (size_t p = body.find("{\"key\":"); p != std::string::npos; p = body.find("{\"key\":", p + 7)) ++n;
  return n;
}

std::string CursorOf(const std::string& body) {
  const size_t p = body.find("\"cursor\":\"");
  if (p == std::string::npos) return {};
  return body.substr(p + 10, body.find('"', p + 10) - p - 10);
}

// A random key of bucket b in a database of `keys` keys (buckets of BucketsFor(keys)).
std::string KeyOfBucket(std::mt19937_64& rng, uint64_t b, uint64_t keys) {
  const uint64_t buckets = BucketsFor(keys);
  const uint64_t per = keys / buckets;
  return Key(b + buckets * (rng() % per), buckets);
}

// Overwrites every key of a `fill DIR keys` database `rounds` times with the
// view running (see the file comment), then closes without settling.
int Overwrite(const std::string& dir, uint64_t keys, uint64_t rounds) {
  Db db;
  if (Status s = db.Open(dir, keys + 1000, true); !s.ok()) {
    std::fprintf(stderr, "list_bench: open %s: %s\n", dir.c_str(), s.ToString().c_str());
    return 1;
  }
  if (!db.writer->WaitKeyspaceReady(3600 * 1000).ok()) return 1;
  const KeyspaceCounters& kc = db.region->counters();
  const uint64_t unrecorded0 = kc.overwrites_unrecorded.load();
  const auto t0 = Clock::now();
  for (uint64_t r = 0; r < rounds; ++r)
    if (!PutEveryKey(db, keys, 100 + r)) return 1;
  const std::string n = std::to_string(keys);
  Report("overwrite_puts_per_s_" + n, double(keys * rounds) / (Us(Clock::now() - t0) / 1e6), "puts/s");
  Report("overwrite_unrecorded_" + n, double(kc.overwrites_unrecorded.load() - unrecorded0), "puts");
  Report("view_runs_" + n, double(db.Runs()), "runs");
  return 0;
}

// What keeping the sorted view costs per put: PUTS single-put batches (as a
// group commit of one durable PUT; not synced here) into DIR with the view
// running. Meant to run under `valgrind --tool=callgrind
// --separate-threads=yes`: the keyspace thread's instructions divided by
// PUTS. Content type "application/octet-stream", 100-byte values.
//  - without KEYS: into an empty DIR, random new keys ("k" and 16 lowercase
//    hex digits), then the view settled and checkpointed;
//  - with KEYS: each put overwrites one of KEYS keys drawn at random, named
//    as `fill DIR KEYS` names them (DIR may be such a database, or empty:
//    the first puts of each key then insert it); no settling (the steady
//    state of an overwrite load), the view checkpointed at close.
// Reports the keyspace's counters, among them the bytes written to keys/.
int Puts(const std::string& dir, uint64_t puts, uint64_t keys) {
  Db db;
  if (Status s = db.Open(dir, std::max(puts, keys) + 1000, true); !s.ok()) {
    std::fprintf(stderr, "list_bench: open %s: %s\n", dir.c_str(), s.ToString().c_str());
    return 1;
  }
  if (!db.writer->WaitKeyspaceReady(3600 * 1000).ok()) return 1;
  const KeyspaceCounters& kc = db.region->counters();
  const uint64_t bytes0 = kc.run_bytes_written.load(), runs0 = kc.runs_written.load(), merges0 = kc.merges.load();
  const uint64_t merged0 = kc.entries_merged.load(), repaired0 = kc.entries_repaired.load();
  std::mt19937_64 rng(3);
  const std::string value(100, 'v');
  const uint64_t buckets = BucketsFor(keys);
  for (uint64_t i = 0; i < puts; ++i) {
    std::string k;
    if (keys == 0) {
      char name[24];
      std::snprintf(name, sizeof name, "k%016llx", static_cast<unsigned long long>(rng()));
      k = name;
    } else {
      k = Key(rng() % keys, buckets);
    }
    WriteOp op;
    op.key = k;
    op.content_type = "application/octet-stream";
    op.stored = value;
    op.raw_len = value.size();
    WriteResult r;
    db.writer->Apply(std::span<const WriteOp>(&op, 1), std::span<WriteResult>(&r, 1));
    if (!r.status.ok()) return 1;
  }
  if (keys == 0) db.Settle();
  const double n = double(puts);
  Report("puts", n, "puts");
  Report("keyspace_runs_written", double(kc.runs_written.load() - runs0), "runs");
  Report("keyspace_merges", double(kc.merges.load() - merges0), "merges");
  Report("keyspace_entries_merged_per_put", double(kc.entries_merged.load() - merged0) / n, "entries");
  Report("keyspace_entries_repaired_per_put", double(kc.entries_repaired.load() - repaired0) / n, "entries");
  Report("keyspace_run_bytes_written_per_put", double(kc.run_bytes_written.load() - bytes0) / n, "B");
  Report("keyspace_runs_published", double(db.Runs()), "runs");
  return 0;
}

int EngineBench(int pages, const std::vector<std::string>& dirs) {
  std::vector<std::unique_ptr<Db>> dbs;
  for (const auto& d : dirs) {
    auto db = std::make_unique<Db>();
    const auto t0 = Clock::now();
    // The index region holds up to 16M keys; MAP_NORESERVE: only what is used costs RAM.
    if (Status s = db->Open(d, 16ull << 20, true); !s.ok()) {
      std::fprintf(stderr, "list_bench: open %s: %s\n", d.c_str(), s.ToString().c_str());
      return 1;
    }
    const double open_s = Us(Clock::now() - t0) / 1e6;
    const double ready_s = db->Settle();
    const std::string n = std::to_string(db->keys());
    Report("engine_open_s_" + n, open_s, "s");
    Report("engine_view_ready_after_open_s_" + n, ready_s, "s");
    Report("index_table_bytes_per_key_" + n, double(db->index->TableBytes()) / double(db->keys()), "B");
    Report("view_runs_" + n, double(db->Runs()), "runs");
    // What the view did between the open and the end of Settle: a merge
    // that repointed stale entries shows here.
    Report("view_merges_at_open_" + n, double(db->region->counters().merges.load()), "merges");
    Report("view_entries_repaired_at_open_" + n, double(db->region->counters().entries_repaired.load()), "entries");
    dbs.push_back(std::move(db));
  }
  std::mt19937_64 rng(7);
  std::vector<std::vector<double>> first(dbs.size()), after(dbs.size());
  for (int i = 0; i < pages; ++i) {
    for (size_t d = 0; d < dbs.size(); ++d) {
      const uint64_t keys = dbs[d]->keys();
      const uint64_t b = rng() % BucketsFor(keys);
      const std::string prefix = Prefix(b);
      const std::string start = KeyOfBucket(rng, b, keys);
      ListRequest req;
      req.prefix = prefix;
      req.limit = kPage;
      auto t = Clock::now();
      auto page = dbs[d]->lister->List(req);
      first[d].push_back(Us(Clock::now() - t));
      if (!page.ok() || page->keys.size() != kPage) {
        std::fprintf(stderr, "list_bench: first page under %s: %s\n", prefix.c_str(),
                     page.ok() ? "short" : page.status().ToString().c_str());
        return 1;
      }
      req.start_after = start;
      t = Clock::now();
      page = dbs[d]->lister->List(req);
      after[d].push_back(Us(Clock::now() - t));
      if (!page.ok()) return 1;
    }
  }
  for (size_t d = 0; d < dbs.size(); ++d) {
    const std::string n = std::to_string(dbs[d]->keys());
    ReportTimes("engine_prefix_page_" + n, first[d]);
    ReportTimes("engine_prefix_page_after_" + n, after[d]);
  }
  for (auto& db : dbs) {
    const std::string n = std::to_string(db->keys());
    const auto t0 = Clock::now();
    uint64_t listed = 0;
    std::string last;
    for (;;) {
      ListRequest req;
      req.start_after = last;
      req.limit = kPage;
      auto page = db->lister->List(req);
      if (!page.ok()) {
        std::fprintf(stderr, "list_bench: full listing: %s\n", page.status().ToString().c_str());
        return 1;
      }
      listed += page->keys.size();
      if (page->complete || page->keys.empty()) break;
      last = page->keys.back().key;
    }
    const double s = Us(Clock::now() - t0) / 1e6;
    Report("engine_full_listing_keys_per_s_" + n, double(listed) / s, "keys/s");
    if (listed != db->keys()) {
      std::fprintf(stderr, "list_bench: full listing gave %llu keys of %s\n", static_cast<unsigned long long>(listed),
                   n.c_str());
      return 1;
    }
  }
  Report("engine_process_max_rss", MaxRssBytes(), "B");
  return 0;
}

int HttpBench(int pages, const std::vector<std::pair<int, uint64_t>>& servers) {
  std::vector<std::unique_ptr<Http>> conns;
  for (const auto& [port, keys] : servers) {
    conns.push_back(std::make_unique<Http>());
    if (!conns.back()->Connect(port)) {
      std::fprintf(stderr, "list_bench: connect %d failed\n", port);
      return 1;
    }
  }
  std::string body;
  std::mt19937_64 rng(7);
  std::vector<std::vector<double>> first(servers.size()), after(servers.size());
  for (int i = 0; i < pages; ++i) {
    for (size_t d = 0; d < servers.size(); ++d) {
      const uint64_t keys = servers[d].second;
      const uint64_t b = rng() % BucketsFor(keys);
      const std::string base = "/v1/kv/?limit=1000&prefix=" + Prefix(b);
      const std::string start = KeyOfBucket(rng, b, keys);
      auto t = Clock::now();
      int st = conns[d]->Get(base, &body);
      first[d].push_back(Us(Clock::now() - t));
      if (st != 200 || CountKeys(body) != kPage) {
        std::fprintf(stderr, "list_bench: http page: status %d, %zu keys\n", st, CountKeys(body));
        return 1;
      }
      t = Clock::now();
      st = conns[d]->Get(base + "&start_after=" + start, &body);
      after[d].push_back(Us(Clock::now() - t));
      if (st != 200) return 1;
    }
  }
  for (size_t d = 0; d < servers.size(); ++d) {
    const std::string n = std::to_string(servers[d].second);
    ReportTimes("http_prefix_page_" + n, first[d]);
    ReportTimes("http_prefix_page_after_" + n, after[d]);
  }
  for (size_t d = 0; d < servers.size(); ++d) {
    const std::string n = std::to_string(servers[d].second);
    const auto t0 = Clock::now();
    uint64_t listed = 0, bytes = 0;
    std::string cursor;
    for (;;) {
      const int st = conns[d]->Get("/v1/kv/?limit=1000" + (cursor.empty() ? std::string() : "&cursor=" + cursor), &body);
      if (st != 200) {
        std::fprintf(stderr, "list_bench: http full listing: status %d\n", st);
        return 1;
      }
      listed += CountKeys(body);
      bytes += body.size();
      cursor = CursorOf(body);
      if (cursor.empty()) break;
    }
    const double s = Us(Clock::now() - t0) / 1e6;
    Report("http_full_listing_keys_per_s_" + n, double(listed) / s, "keys/s");
    Report("http_full_listing_body_bytes_per_key_" + n, double(bytes) / double(listed), "B");
    if (listed != servers[d].second) {
      std::fprintf(stderr, "list_bench: http full listing gave %llu keys of %s\n",
                   static_cast<unsigned long long>(listed), n.c_str());
      return 1;
    }
  }
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: list_bench fill DIR KEYS | overwrite DIR KEYS ROUNDS | puts DIR PUTS [KEYS] | engine PAGES DIR... | http PAGES PORT:KEYS...\n");
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return Usage();
  const std::string mode = argv[1];
  if (mode == "fill" && argc == 4) return Fill(argv[2], std::strtoull(argv[3], nullptr, 10));
  if (mode == "overwrite" && argc == 5)
    return Overwrite(argv[2], std::strtoull(argv[3], nullptr, 10), std::strtoull(argv[4], nullptr, 10));
  if (mode == "puts" && (argc == 4 || argc == 5))
    return Puts(argv[2], std::strtoull(argv[3], nullptr, 10), argc == 5 ? std::strtoull(argv[4], nullptr, 10) : 0);
  const int pages = std::atoi(argv[2]);
  if (pages <= 0) return Usage();
  if (mode == "engine") return EngineBench(pages, std::vector<std::string>(argv + 3, argv + argc));
  if (mode == "http") {
    std::vector<std::pair<int, uint64_t>> servers;
    for (int i = 3; i < argc; ++i) {
      const char* colon = std::strchr(argv[i], ':');
      if (colon == nullptr) return Usage();
      servers.emplace_back(std::atoi(argv[i]), std::strtoull(colon + 1, nullptr, 10));
    }
    return HttpBench(pages, servers);
  }
  return Usage();
}
