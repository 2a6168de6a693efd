// Counters: the HTTP layer's metrics, and their Prometheus text rendering.
//
// Counters is a POD of plain uint64_t fields so that it can live in shared
// memory (one instance per counting thread of a worker, in the master's
// mapping: SharedMemory::counters) and be summed by whoever renders /metrics.
// Ownership rule: each instance is WRITTEN by one thread of one process only
// (an event worker's loop thread; a thread-pool worker's pool thread,
// acceptor or main thread), and after that process died by the master
// (SettleDeadOwner) before the next one takes it over. Writers and readers use relaxed
// atomic loads/stores on each field (Bump / Load below), so a reader in
// another process sees each field untorn but the set of fields is not one
// consistent snapshot (a request may be counted in requests_by_method before
// its status is). That is the usual Prometheus contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "http/request.h"

namespace kingx::http {

// Upper bounds (in microseconds) of the latency histogram buckets; the last,
// implicit bucket is +Inf. Latency = from the clock reading of the I/O
// layer's event that completed the request head (http/clock.h,
// LatencyStartMicros: the bytes were being handled from then on) to its
// response being queued: a cached GET takes microseconds, a
// durable PUT an fdatasync (0.1 to 10 ms), a stalled one up to the timeouts.
inline constexpr uint64_t kLatencyBucketsUs[] = {25,    50,    100,    250,    500,    1000,   2500,
                                                 5000,  10000, 25000,  50000,  100000, 250000, 500000,
                                                 1000000, 2500000, 5000000, 10000000};
inline constexpr size_t kLatencyBucketCount = sizeof(kLatencyBucketsUs) / sizeof(kLatencyBucketsUs[0]) + 1;

// Status codes counted individually: every one with a reason phrase
// (http/wire.h), so that each status the server writes has its own series;
// any other code is counted in its class only (responses_by_class always
// counts every response).
inline constexpr int kTrackedStatuses[] = {100, 200, 201, 202, 204, 304, 308, 400, 401, 403, 404, 405, 408, 409, 411,
                                           412, 413, 414, 415, 417, 429, 431, 500, 501, 502, 503, 504, 505, 507};
inline constexpr size_t kTrackedStatusCount = sizeof(kTrackedStatuses) / sizeof(kTrackedStatuses[0]);

struct Counters {
  uint64_t requests_by_method[kMethodCount];       // indexed by Method, at dispatch or rejection
  uint64_t responses_by_class[6];                  // [1]=1xx .. [5]=5xx; [0] unused
  uint64_t responses_by_status[kTrackedStatusCount];  // parallel to kTrackedStatuses
  uint64_t latency_buckets[kLatencyBucketCount];   // non-cumulative counts per bucket
  uint64_t latency_sum_us;
  uint64_t bytes_in;             // bytes passed to Connection::Feed
  uint64_t bytes_out;            // bytes acknowledged by Connection::ConsumeOutput
  uint64_t connections_opened;   // Connection constructed
  uint64_t connections_closed;   // Connection destroyed; open = opened - closed
  uint64_t protocol_errors;      // requests rejected by the core (4xx/5xx it wrote itself)
  uint64_t timeouts;             // header/body 408s and idle/send timeouts
  // Bumped by the serving model's I/O code, not by the Connection:
  uint64_t linger_bytes;         // bytes read and dropped while lingering (after shutdown(SHUT_WR))
  uint64_t linger_cut;           // lingering closes ended by the byte bound: the peer kept sending
  uint64_t writes_blocked;       // event model: write attempts of the worker's own that took nothing (EAGAIN)
  uint64_t flood_parked;         // connections refused during a garbage flood and held unread (parked)
  uint64_t flood_unparked;       // parked connections closed; parked now = parked - unparked
};
static_assert(sizeof(Counters) % sizeof(uint64_t) == 0);

// Adds n to *field with a relaxed atomic load+store. Only the owner may call it.
inline void Bump(uint64_t& field, uint64_t n = 1) {
  __atomic_store_n(&field, __atomic_load_n(&field, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
// Reads one field written by another thread or process.
inline uint64_t Load(const uint64_t& field) { return __atomic_load_n(&field, __ATOMIC_RELAXED); }

// Records one response (status class, tracked code, latency in
// microseconds; kNoLatency for a response that answers no complete request
// head, which the latency histogram leaves out). Called by the Connection;
// exposed for the I/O layers that answer without one (e.g. 503 when over the
// connection limit). Owner only.
inline constexpr uint64_t kNoLatency = UINT64_MAX;
void CountResponse(Counters& counters, int status, uint64_t latency_us);

// The owner of `c` died (killed, say): the kernel closed its connections,
// so every connection it opened is counted closed and every one it parked
// unparked (the open and parked gauges lose them). Only once no thread
// writes c any more and before a new owner takes it over.
void SettleDeadOwner(Counters& c);

// *sum += part, field by field (part read with Load). sum is the caller's
// private copy (e.g. zero-initialised on the stack by the /metrics handler).
void Accumulate(Counters& sum, const Counters& part);

// One extra sample the server adds to /metrics (engine, writer, queue...).
// Samples with the same name must be adjacent in the vector: they share one
// HELP/TYPE block and differ by labels.
struct Gauge {
  std::string name;    // e.g. "kingx_engine_keys"; [a-zA-Z_:][a-zA-Z0-9_:]*
  std::string help;    // one line, no newline
  std::string labels;  // "" or e.g. R"(segment="3")" (without braces)
  double value = 0;
  bool counter = false;  // TYPE counter instead of gauge
};

// One histogram the server adds to /metrics, rendered as a Prometheus
// histogram: name_bucket{le="..."} (cumulative), name_sum, name_count.
struct Histogram {
  std::string name;             // the base name, e.g. "kingx_writer_fsync_seconds"
  std::string help;             // one line, no newline
  std::vector<std::string> le;  // upper bounds as printed, ascending, without "+Inf"
  std::vector<uint64_t> counts;  // per bucket, NOT cumulative: le.size() + 1 entries (the last: above every bound)
  std::string sum;              // the sum of the observations, as printed
};

// `us` microseconds as an exact decimal number of seconds, without trailing
// zeros: 25 -> "0.000025", 1000000 -> "1", 2500000 -> "2.5".
std::string MicrosAsSeconds(uint64_t us);
// A double in the shortest form that reads back as the same value ("0.005",
// "1e+21", "NaN", "+Inf").
std::string FormatMetricValue(double v);

// Prometheus text format 0.0.4 of `sum` (metric names prefixed "kingx_http_")
// followed by `extra` and `histograms`. Pure function; any thread.
std::string RenderMetrics(const Counters& sum, const std::vector<Gauge>& extra,
                          const std::vector<Histogram>& histograms = {});

}  // namespace kingx::http
