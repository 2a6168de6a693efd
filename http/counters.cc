// Counters arithmetic and the Prometheus text exposition (format 0.0.4).
#include "http/counters.h"

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "http/wire.h"

namespace kingx::http {

namespace {

// Status code -> its slot in responses_by_status (kTrackedStatusCount: not
// tracked), for every code of the five classes: one load instead of a search.
struct StatusSlots {
  uint8_t slot[600];
  constexpr StatusSlots() : slot() {
    for (uint8_t& s : slot) s = static_cast<uint8_t>(kTrackedStatusCount);
    for (size_t i = 0; i < kTrackedStatusCount; ++i) slot[kTrackedStatuses[i]] = static_cast<uint8_t>(i);
  }
};
static_assert(kTrackedStatusCount < 256);
constexpr StatusSlots kStatusSlots;

}  // namespace

void CountResponse(Counters& c, int status, uint64_t latency_us) {
  const int cls = status / 100;
  if (cls >= 1 && cls <= 5) {
    Bump(c.responses_by_class[cls]);
    const size_t slot = kStatusSlots.slot[status];
    if (slot < kTrackedStatusCount) Bump(c.responses_by_status[slot]);
  }
  if (cls == 1 || latency_us == kNoLatency) return;  // interim responses have no latency of their own
  // The first bucket whose bound is >= the latency (the last, +Inf, when none is).
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(std::begin(kLatencyBucketsUs), std::end(kLatencyBucketsUs), latency_us) -
      std::begin(kLatencyBucketsUs));
  Bump(c.latency_buckets[bucket]);
  Bump(c.latency_sum_us, latency_us);
}

void SettleDeadOwner(Counters& c) {
  __atomic_store_n(&c.connections_closed, Load(c.connections_opened), __ATOMIC_RELAXED);
  __atomic_store_n(&c.flood_unparked, Load(c.flood_parked), __ATOMIC_RELAXED);
}

void Accumulate(Counters& sum, const Counters& part) {
  static_assert(std::is_trivially_copyable_v<Counters>);
  auto* s = reinterpret_cast<uint64_t*>(&sum);
  const auto* p = reinterpret_cast<const uint64_t*>(&part);
  for (size_t i = 0; i < sizeof(Counters) / sizeof(uint64_t); ++i) s[i] += Load(p[i]);
}

namespace {

void Line(std::string* out, std::string_view name, std::string_view labels, uint64_t v) {
  out->append(name);
  if (!labels.empty()) {
    out->push_back('{');
    out->append(labels);
    out->push_back('}');
  }
  out->push_back(' ');
  AppendDecimal(out, v);
  out->push_back('\n');
}

void Meta(std::string* out, std::string_view name, std::string_view type, std::string_view help) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void RenderHistogram(std::string* out, const Histogram& h) {
  Meta(out, h.name, "histogram", h.help);
  const std::string bucket = h.name + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    cumulative += h.counts[i];
    const std::string_view le = i < h.le.size() ? std::string_view(h.le[i]) : std::string_view("+Inf");
    out->append(bucket).append("{le=\"").append(le).append("\"} ");
    AppendDecimal(out, cumulative);
    out->push_back('\n');
  }
  out->append(h.name).append("_sum ").append(h.sum).append("\n");
  out->append(h.name).append("_count ");
  AppendDecimal(out, cumulative);
  out->push_back('\n');
}

}  // namespace

std::string MicrosAsSeconds(uint64_t us) {
  std::string out;
  AppendDecimal(&out, us / 1000000);
  uint64_t frac = us % 1000000;
  if (frac == 0) return out;
  char digits[7];
  std::snprintf(digits, sizeof(digits), "%06" PRIu64, frac);
  size_t n = 6;
  while (digits[n - 1] == '0') --n;
  out.push_back('.');
  out.append(digits, n);
  return out;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

std::string RenderMetrics(const Counters& c, const std::vector<Gauge>& extra,
                          const std::vector<Histogram>& histograms) {
  std::string out;
  out.reserve(4096);
  Meta(&out, "kingx_http_requests_total", "counter", "HTTP requests received, by method.");
  for (size_t m = 0; m < kMethodCount; ++m) {
    std::string labels = std::string("method=\"") + MethodName(static_cast<Method>(m)) + "\"";
    Line(&out, "kingx_http_requests_total", labels, Load(c.requests_by_method[m]));
  }
  Meta(&out, "kingx_http_responses_total", "counter", "HTTP responses sent, by status class.");
  for (int cls = 1; cls <= 5; ++cls) {
    std::string labels = "class=\"" + std::to_string(cls) + "xx\"";
    Line(&out, "kingx_http_responses_total", labels, Load(c.responses_by_class[cls]));
  }
  Meta(&out, "kingx_http_responses_by_code_total", "counter", "HTTP responses sent, by status code.");
  for (size_t i = 0; i < kTrackedStatusCount; ++i) {
    std::string labels = "code=\"" + std::to_string(kTrackedStatuses[i]) + "\"";
    Line(&out, "kingx_http_responses_by_code_total", labels, Load(c.responses_by_status[i]));
  }
  Histogram latency;
  latency.name = "kingx_http_request_duration_seconds";
  latency.help = "Time from a complete request head to its response being queued.";
  for (size_t i = 0; i + 1 < kLatencyBucketCount; ++i) latency.le.push_back(MicrosAsSeconds(kLatencyBucketsUs[i]));
  for (size_t i = 0; i < kLatencyBucketCount; ++i) latency.counts.push_back(Load(c.latency_buckets[i]));
  latency.sum = MicrosAsSeconds(Load(c.latency_sum_us));
  RenderHistogram(&out, latency);
  Meta(&out, "kingx_http_received_bytes_total", "counter", "Bytes received from clients.");
  Line(&out, "kingx_http_received_bytes_total", "", Load(c.bytes_in));
  Meta(&out, "kingx_http_sent_bytes_total", "counter", "Bytes sent to clients.");
  Line(&out, "kingx_http_sent_bytes_total", "", Load(c.bytes_out));
  Meta(&out, "kingx_http_connections_opened_total", "counter", "Client connections opened.");
  Line(&out, "kingx_http_connections_opened_total", "", Load(c.connections_opened));
  uint64_t opened = Load(c.connections_opened), closed = Load(c.connections_closed);
  Meta(&out, "kingx_http_open_connections", "gauge", "Client connections open now.");
  Line(&out, "kingx_http_open_connections", "", opened >= closed ? opened - closed : 0);
  Meta(&out, "kingx_http_protocol_errors_total", "counter", "Requests refused by the protocol core.");
  Line(&out, "kingx_http_protocol_errors_total", "", Load(c.protocol_errors));
  Meta(&out, "kingx_http_timeouts_total", "counter", "Connections closed by a header, body, idle or send timeout.");
  Line(&out, "kingx_http_timeouts_total", "", Load(c.timeouts));
  Meta(&out, "kingx_http_linger_discarded_bytes_total", "counter",
       "Bytes read and dropped from clients after the server's last response (lingering close).");
  Line(&out, "kingx_http_linger_discarded_bytes_total", "", Load(c.linger_bytes));
  Meta(&out, "kingx_http_linger_cut_total", "counter",
       "Lingering closes ended early because the client kept sending past the byte bound.");
  Line(&out, "kingx_http_linger_cut_total", "", Load(c.linger_cut));
  Meta(&out, "kingx_http_writes_blocked_total", "counter",
       "Writes the event worker tried on a client socket that took no byte (the socket was full).");
  Line(&out, "kingx_http_writes_blocked_total", "", Load(c.writes_blocked));
  Meta(&out, "kingx_http_flood_parked_total", "counter",
       "Connections refused during a garbage flood and held open unread instead of closed (parked).");
  Line(&out, "kingx_http_flood_parked_total", "", Load(c.flood_parked));
  const uint64_t parked = Load(c.flood_parked), unparked = Load(c.flood_unparked);
  Meta(&out, "kingx_http_flood_parked", "gauge", "Parked connections held now.");
  Line(&out, "kingx_http_flood_parked", "", parked >= unparked ? parked - unparked : 0);

  for (size_t i = 0; i < extra.size(); ++i) {
    const Gauge& g = extra[i];
    if (i == 0 || extra[i - 1].name != g.name) Meta(&out, g.name, g.counter ? "counter" : "gauge", g.help);
    out.append(g.name);
    if (!g.labels.empty()) out.append("{").append(g.labels).append("}");
    out.append(" ").append(FormatMetricValue(g.value)).append("\n");
  }
  for (const Histogram& h : histograms) RenderHistogram(&out, h);
  return out;
}

}  // namespace kingx::http
