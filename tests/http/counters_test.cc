// Counters: response accounting, summing, Prometheus rendering.
#include "http/counters.h"
#include "http/wire.h"

#include <catch2/catch.hpp>

#include <string>

namespace kingx::http {
namespace {

TEST_CASE("CountResponse fills class, tracked code and latency bucket", "[http][metrics]") {
  Counters c{};
  CountResponse(c, 200, 0);
  CountResponse(c, 404, 30);          // 30 us: the 50 us bucket
  CountResponse(c, 418, 20'000'000);  // untracked code, beyond the last bucket
  CountResponse(c, 100, 0);           // interim: no latency
  CountResponse(c, 400, kNoLatency);  // a refusal without a request: no latency
  CHECK(c.responses_by_class[2] == 1);
  CHECK(c.responses_by_class[4] == 3);
  CHECK(c.responses_by_class[1] == 1);
  CHECK(c.latency_sum_us == 20'000'030);
  CHECK(c.latency_buckets[0] == 1);
  CHECK(c.latency_buckets[1] == 1);
  CHECK(c.latency_buckets[kLatencyBucketCount - 1] == 1);
  uint64_t observed = 0;
  for (uint64_t n : c.latency_buckets) observed += n;
  CHECK(observed == 3);
  size_t i404 = 0;
  while (kTrackedStatuses[i404] != 404) ++i404;
  CHECK(c.responses_by_status[i404] == 1);
}

TEST_CASE("a 200 is counted alike at every latency, at and past the first bucket's bound", "[http][metrics]") {
  Counters c{};
  CountResponse(c, 200, kLatencyBucketsUs[0]);      // the first bucket's bound: in it
  CountResponse(c, 200, kLatencyBucketsUs[0] + 1);  // just past: the next
  CountResponse(c, 200, kNoLatency);                // answers no request head: no latency
  CHECK(c.responses_by_class[2] == 3);
  CHECK(c.responses_by_status[1] == 3);
  CHECK(kTrackedStatuses[1] == 200);
  CHECK(c.latency_buckets[0] == 1);
  CHECK(c.latency_buckets[1] == 1);
  CHECK(c.latency_sum_us == 2 * kLatencyBucketsUs[0] + 1);
}

TEST_CASE("every status code and every bucket bound is counted in its own slot", "[http][metrics]") {
  for (int status = 0; status < 700; ++status) {
    Counters c{};
    CountResponse(c, status, kNoLatency);
    const int cls = status / 100;
    for (int k = 1; k <= 5; ++k) CHECK(c.responses_by_class[k] == (k == cls ? 1u : 0u));
    for (size_t i = 0; i < kTrackedStatusCount; ++i) {
      CHECK(c.responses_by_status[i] == (kTrackedStatuses[i] == status ? 1u : 0u));
    }
  }
  for (size_t b = 0; b + 1 < kLatencyBucketCount; ++b) {
    for (uint64_t latency : {kLatencyBucketsUs[b] - 1, kLatencyBucketsUs[b], kLatencyBucketsUs[b] + 1}) {
      Counters c{};
      CountResponse(c, 204, latency);
      size_t want = kLatencyBucketCount - 1;  // the first bound at or above the latency
      for (size_t i = 0; i + 1 < kLatencyBucketCount; ++i) {
        if (latency <= kLatencyBucketsUs[i]) {
          want = i;
          break;
        }
      }
      for (size_t i = 0; i < kLatencyBucketCount; ++i) CHECK(c.latency_buckets[i] == (i == want ? 1u : 0u));
      CHECK(c.latency_sum_us == latency);
    }
  }
}

TEST_CASE("every status the server can write is counted by its own code", "[http][metrics]") {
  // wire.h's reason phrases are the statuses a response can carry: a 308 (a
  // key's other spelling), 202 (compaction requested), 409 or 415 counted in
  // its class alone could not be told apart from /metrics.
  for (int status = 100; status < 600; ++status) {
    if (ReasonPhrase(status) == "Unknown") continue;
    bool tracked = false;
    for (int t : kTrackedStatuses) tracked = tracked || t == status;
    INFO("status " << status);
    CHECK(tracked);
  }
}

TEST_CASE("Accumulate sums every field", "[http][metrics]") {
  Counters a{}, b{}, sum{};
  a.bytes_in = 5;
  b.bytes_in = 7;
  a.requests_by_method[1] = 2;
  b.timeouts = 1;
  Accumulate(sum, a);
  Accumulate(sum, b);
  CHECK(sum.bytes_in == 12);
  CHECK(sum.requests_by_method[1] == 2);
  CHECK(sum.timeouts == 1);
}

TEST_CASE("RenderMetrics writes Prometheus text with a cumulative histogram and the extra gauges",
          "[http][metrics]") {
  Counters c{};
  CountResponse(c, 200, 1000);
  CountResponse(c, 200, 7000);
  c.requests_by_method[static_cast<size_t>(Method::kPut)] = 3;
  c.connections_opened = 10;
  c.connections_closed = 4;
  std::vector<Gauge> extra = {{"kingx_engine_keys", "Live keys.", "", 42, false},
                              {"kingx_writer_batches_total", "Batches.", "sync=\"always\"", 3, true},
                              {"kingx_writer_batches_total", "Batches.", "sync=\"none\"", 1, true}};
  std::string text = RenderMetrics(c, extra);
  CHECK(text.find("kingx_http_requests_total{method=\"PUT\"} 3\n") != std::string::npos);
  CHECK(text.find("kingx_http_request_duration_seconds_bucket{le=\"0.001\"} 1\n") != std::string::npos);
  CHECK(text.find("kingx_http_request_duration_seconds_bucket{le=\"0.01\"} 2\n") != std::string::npos);
  CHECK(text.find("kingx_http_request_duration_seconds_bucket{le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(text.find("kingx_http_request_duration_seconds_count 2\n") != std::string::npos);
  CHECK(text.find("kingx_http_request_duration_seconds_sum 0.008\n") != std::string::npos);
  CHECK(text.find("kingx_http_request_duration_seconds_bucket{le=\"0.000025\"} 0\n") != std::string::npos);
  CHECK(text.find("kingx_http_open_connections 6\n") != std::string::npos);
  CHECK(text.find("# TYPE kingx_engine_keys gauge\nkingx_engine_keys 42\n") != std::string::npos);
  // One HELP/TYPE block for two samples of the same name.
  size_t first = text.find("# TYPE kingx_writer_batches_total counter");
  REQUIRE(first != std::string::npos);
  CHECK(text.find("# TYPE kingx_writer_batches_total", first + 1) == std::string::npos);
  CHECK(text.find("kingx_writer_batches_total{sync=\"none\"} 1\n") != std::string::npos);
  // Every line is a comment or "name[{labels}] value".
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    REQUIRE(end != std::string::npos);
    std::string line = text.substr(pos, end - pos);
    INFO(line);
    CHECK((line.rfind("# ", 0) == 0 || line.find(' ') != std::string::npos));
    pos = end + 1;
  }
}

TEST_CASE("le labels and sums print as exact decimals", "[http][metrics]") {
  CHECK(MicrosAsSeconds(0) == "0");
  CHECK(MicrosAsSeconds(25) == "0.000025");
  CHECK(MicrosAsSeconds(5000) == "0.005");
  CHECK(MicrosAsSeconds(1000000) == "1");
  CHECK(MicrosAsSeconds(2500000) == "2.5");
  CHECK(MicrosAsSeconds(12345678) == "12.345678");
  for (uint64_t bound : kLatencyBucketsUs) {
    const std::string le = MicrosAsSeconds(bound);
    CHECK(le.size() <= 8);  // never "0.0050000000000000001"
    CHECK(static_cast<uint64_t>(std::stod(le) * 1e6 + 0.5) == bound);
  }
  CHECK(FormatMetricValue(0.005) == "0.005");
  CHECK(FormatMetricValue(42) == "42");
  CHECK(FormatMetricValue(1.0 / 0.0) == "+Inf");
}

TEST_CASE("extra histograms render as Prometheus histograms", "[http][metrics]") {
  Histogram h;
  h.name = "kingx_test_seconds";
  h.help = "A test.";
  h.le = {"0.001", "0.01"};
  h.counts = {2, 0, 1};
  h.sum = "0.5";
  std::string text = RenderMetrics(Counters{}, {}, {h});
  CHECK(text.find("# TYPE kingx_test_seconds histogram\n"
                  "kingx_test_seconds_bucket{le=\"0.001\"} 2\n"
                  "kingx_test_seconds_bucket{le=\"0.01\"} 2\n"
                  "kingx_test_seconds_bucket{le=\"+Inf\"} 3\n"
                  "kingx_test_seconds_sum 0.5\n"
                  "kingx_test_seconds_count 3\n") != std::string::npos);
}

}  // namespace
}  // namespace kingx::http
