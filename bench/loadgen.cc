// loadgen: the HTTP/1.1 load generator behind bench/compare's fairness and open-loop runs.
//
// It measures what wrk and h2load do not: what every single connection got.
//  - Closed loop (default): N keep-alive connections, each sending its next request as soon as
//    the previous answer is in (as wrk and h2load do). Per connection it records the answers it
//    got and the time its requests waited, so the report can say how many connections got no
//    answer at all and how long they waited.
//  - Open loop (--rate R): requests are due on a fixed schedule, R per second in total, spread
//    evenly over the connections (connection c owns requests c, c+N, c+2N...; request k is due at
//    start + k/R). A connection still busy when its next request falls due sends it as soon as
//    the answer arrives, and that request's latency is counted from the time it was due, not
//    from the time it was sent, so a slow server cannot hide its backlog (coordinated omission).
//
// Censoring: a request still unanswered when the run ends (or never sent because its connection
// was busy) is counted at its age then, as a lower bound, and flagged as censored. A connection
// that got no answer at all therefore shows as having waited for the whole run, not as absent.
//
// Only 2xx answers count as served; other statuses, resets and connect failures are counted
// apart. A connection the server closes is reopened at once (after 10 ms if connecting fails).
// One thread, epoll, no allocation per request. Linux only.
//
// Output: one line "LOADGEN {json}" on stdout (see bench/README.md for the fields); errors in
// the arguments go to stderr with exit status 2. The window's edges are reported as
// CLOCK_MONOTONIC readings (clock_ns: the warm-up's start, the window's start and end), so a
// test's server on the same machine can place its own events in or out of the window.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int conns = 10;
  double duration_s = 5;
  double rate = 0;  // 0 = closed loop
  std::string path = "/";
  std::string suffix;
  uint64_t keys = 0;  // 0 = the path as given, else path + uniform key in [0, keys) + suffix
  std::string method = "GET";
  size_t body_bytes = 0;
  uint64_t seed = 1;
  // Before the clock starts: connect every connection (up to connect_timeout_s), then run
  // the load for warmup_s and forget its figures.
  double connect_timeout_s = 10;
  double warmup_s = 0;
};

// Latency histogram in microseconds: 64 sub-buckets per power of two (relative error < 1.6%).
class Histogram {
 public:
  static constexpr int kSub = 64;
  Histogram() : counts_(64 * kSub, 0) {}
  void Add(uint64_t us) {
    ++counts_[Index(us)];
    ++total_;
  }
  uint64_t total() const { return total_; }
  // Value (upper edge of its bucket) at quantile q in [0, 1].
  uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = uint64_t(std::ceil(q * double(total_)));
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return Upper(i);
    }
    return Upper(counts_.size() - 1);
  }
  // Non-empty buckets as "[upper_us,count],..." (for the CDF plots).
  std::string Json() const {
    std::string out;
    char buf[64];
    for (size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i] == 0) continue;
      snprintf(buf, sizeof buf, "%s[%" PRIu64 ",%" PRIu64 "]", out.empty() ? "" : ",", Upper(i),
               counts_[i]);
      out += buf;
    }
    return out;
  }

 private:
  static size_t Index(uint64_t v) {
    if (v < kSub) return size_t(v);
    int log2 = 63 - __builtin_clzll(v);  // >= 6
    int shift = log2 - 6;
    size_t idx = size_t(shift + 1) * kSub + size_t((v >> shift) - kSub);
    return std::min(idx, size_t(64 * kSub - 1));
  }
  static uint64_t Upper(size_t idx) {
    if (idx < kSub) return idx;
    int shift = int(idx / kSub) - 1;
    uint64_t base = uint64_t(kSub + idx % kSub) << shift;
    return base + (uint64_t(1) << shift) - 1;
  }
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

enum class State { kConnecting, kIdle, kBusy, kBackoff };

struct Conn {
  int fd = -1;
  State state = State::kBackoff;
  uint64_t retry_at_ns = 0;
  // The request on the wire: its bytes, how many are written, when it was due (open loop) or
  // sent (closed loop).
  std::string out;
  size_t out_off = 0;
  uint64_t req_start_ns = 0;
  // Response parsing: header bytes until the blank line, then body bytes to skip.
  std::string head;
  uint64_t body_left = 0;
  bool in_body = false;
  int status = 0;
  bool close_after = false;
  // Open loop: how many of this connection's scheduled requests were sent.
  uint64_t sent = 0;
  // Per-connection figures.
  uint64_t ok = 0;          // 2xx answers
  uint64_t other = 0;       // non-2xx answers
  uint64_t errors = 0;      // resets, unexpected closes, connect failures, bad responses
  uint64_t lat_sum_us = 0;  // over the 2xx answers
  uint64_t lat_max_us = 0;
  uint64_t first_ok_ns = 0;
};

class Load {
 public:
  explicit Load(const Options& o)
      : o_(o), conns_(size_t(o.conns)), rng_(o.seed | 1), backoff_(size_t(o.conns)) {}

  int Run();

 private:
  enum class Phase { kConnect, kLoad };
  // Runs the event loop until `until` (kConnect: or until every connection is connected,
  // sending nothing).
  void Loop(Phase phase, uint64_t until);
  // Starts the measured window at `now`: forgets every figure gathered so far.
  void StartClock(uint64_t now);
  void Open(size_t i, uint64_t now);
  void Close(size_t i, bool error, uint64_t now);
  void StartRequest(size_t i, uint64_t start_ns);
  void Flush(size_t i, uint64_t now);
  void OnReadable(size_t i, uint64_t now);
  void Consume(size_t i, const char* p, size_t n, uint64_t now);
  void Answered(size_t i, uint64_t now);
  void DispatchDue(uint64_t now);
  void TrySendDue(size_t i, uint64_t now, bool after_answer);
  uint64_t DueAt(size_t i, uint64_t j) const {  // open loop: due time of conn i's j-th request
    return t0_ + uint64_t(double(i + j * conns_.size()) * 1e9 / o_.rate);
  }
  void Report(uint64_t end);
  uint64_t NextRand() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  Options o_;
  std::vector<Conn> conns_;
  uint64_t rng_;
  int ep_ = -1;
  sockaddr_in addr_{};
  uint64_t t0_ = 0;
  uint64_t end_ = 0;
  uint64_t warmup_at_ = 0;  // when the warm-up began (the window's start if there is none)
  uint64_t next_k_ = 0;  // open loop: first scheduled request not yet handed to its connection
  Histogram hist_;       // every 2xx answer, plus censored requests at their age at the end
  Histogram lag_;        // open loop: send time minus due time for requests sent on an idle conn
  uint64_t censored_ = 0;
  size_t backoff_;  // connections in State::kBackoff (all of them before the start)
  uint64_t connects_ = 0, connect_errors_ = 0, closes_ = 0, bytes_in_ = 0;
  size_t connecting_ = 0;  // connections in State::kConnecting
  double connect_phase_s_ = 0;
  size_t connected_at_start_ = 0;  // connections open (kIdle/kBusy) when the clock started
  std::vector<char> rbuf_ = std::vector<char>(64 * 1024);
};

void Load::Open(size_t i, uint64_t now) {
  Conn& c = conns_[i];
  --backoff_;
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    perror("loadgen: socket");
    exit(1);
  }
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ++connects_;
  int rc = connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_);
  if (rc != 0 && errno != EINPROGRESS) {
    ++connect_errors_;
    ++c.errors;
    close(c.fd);
    c.fd = -1;
    c.state = State::kBackoff;
    ++backoff_;
    c.retry_at_ns = now + 10000000;
    return;
  }
  c.state = State::kConnecting;
  ++connecting_;
  epoll_event ev{};
  // Edge-triggered: reads drain the socket, writes go until EAGAIN and resume on EPOLLOUT.
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = i;
  epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
}

void Load::Close(size_t i, bool error, uint64_t now) {
  Conn& c = conns_[i];
  if (c.fd >= 0) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
  }
  if (error) ++c.errors;
  ++closes_;
  bool was_connecting = c.state == State::kConnecting;
  if (was_connecting) --connecting_;
  c.fd = -1;
  c.head.clear();
  c.in_body = false;
  c.out_off = 0;
  // A request cut off by the close is sent again on the new connection, with its original
  // start time: the client is still waiting for that answer.
  bool pending = c.state == State::kBusy || (c.state == State::kConnecting && !c.out.empty());
  if (!pending) c.out.clear();
  if (was_connecting) ++connect_errors_;
  c.state = State::kBackoff;
  ++backoff_;
  c.retry_at_ns = was_connecting ? now + 10000000 : now;
}

void Load::StartRequest(size_t i, uint64_t start_ns) {
  Conn& c = conns_[i];
  c.out.clear();
  c.out_off = 0;
  c.out += o_.method;
  c.out += ' ';
  c.out += o_.path;
  if (o_.keys) {
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRIu64, NextRand() % o_.keys);
    c.out.append(num, size_t(n));
    c.out += o_.suffix;
  }
  c.out += " HTTP/1.1\r\nHost: ";
  c.out += o_.host;
  if (o_.body_bytes) {
    char len[48];
    snprintf(len, sizeof len, "\r\nContent-Length: %zu", o_.body_bytes);
    c.out += len;
  }
  c.out += "\r\n\r\n";
  if (o_.body_bytes) c.out.append(o_.body_bytes, 'v');
  c.req_start_ns = start_ns;
  c.status = 0;
  c.close_after = false;
}

void Load::Flush(size_t i, uint64_t now) {
  Conn& c = conns_[i];
  while (c.out_off < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += size_t(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      return;  // EPOLLOUT stays armed: the rest goes when the socket drains
    } else {
      Close(i, true, now);
      return;
    }
  }
}

void Load::TrySendDue(size_t i, uint64_t now, bool after_answer) {
  Conn& c = conns_[i];
  if (c.state != State::kIdle) return;
  if (!c.out.empty()) {  // a request cut off by a close: resend it
    c.state = State::kBusy;
    c.out_off = 0;
    Flush(i, now);
    return;
  }
  if (o_.rate <= 0) {
    StartRequest(i, now);
  } else {
    uint64_t due = DueAt(i, c.sent);
    if (due > now || due >= end_) return;
    // Sent late because the connection was busy: that wait is the server's, and counts in
    // the latency. Sent late with the connection idle: the generator was late; report it.
    if (!after_answer) lag_.Add((now - due) / 1000);
    ++c.sent;
    StartRequest(i, due);
  }
  c.state = State::kBusy;
  Flush(i, now);
}

void Load::DispatchDue(uint64_t now) {
  // Hand every request due by now to its connection (request k belongs to k mod N).
  double elapsed = double(std::min(now, end_) - t0_) * 1e-9;
  uint64_t due_k = uint64_t(elapsed * o_.rate);
  size_t n = conns_.size();
  if (due_k > next_k_ + n) next_k_ = due_k - n;  // every connection gets visited at least once
  for (; next_k_ <= due_k; ++next_k_) TrySendDue(size_t(next_k_ % n), now, false);
}

void Load::Answered(size_t i, uint64_t now) {
  Conn& c = conns_[i];
  uint64_t lat_us = (now - c.req_start_ns) / 1000;
  if (c.status >= 200 && c.status < 300) {
    ++c.ok;
    c.lat_sum_us += lat_us;
    c.lat_max_us = std::max(c.lat_max_us, lat_us);
    if (!c.first_ok_ns) c.first_ok_ns = now;
    hist_.Add(lat_us);
  } else {
    ++c.other;
  }
  c.out.clear();
  c.state = State::kIdle;
  if (c.close_after) {
    Close(i, false, now);
    return;
  }
  if (now < end_) TrySendDue(i, now, true);
}

void Load::Consume(size_t i, const char* p, size_t n, uint64_t now) {
  Conn& c = conns_[i];
  while (n > 0) {
    if (c.state != State::kBusy) {  // bytes nobody asked for
      Close(i, true, now);
      return;
    }
    if (c.in_body) {
      size_t take = size_t(std::min<uint64_t>(c.body_left, n));
      c.body_left -= take;
      p += take;
      n -= take;
      if (c.body_left == 0) {
        c.in_body = false;
        Answered(i, now);
        if (c.fd < 0) return;
      }
      continue;
    }
    size_t old = c.head.size();
    c.head.append(p, n);
    size_t end = c.head.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
    if (end == std::string::npos) {
      if (c.head.size() > 65536) Close(i, true, now);
      return;
    }
    size_t used = end + 4 - old;
    p += used;
    n -= used;
    std::string_view h(c.head.data(), end + 2);
    c.status = (h.size() > 12 && h.substr(0, 5) == "HTTP/") ? atoi(h.data() + 9) : 0;
    uint64_t len = 0;
    bool chunked = false;
    size_t pos = h.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < h.size()) {
      size_t eol = h.find("\r\n", pos + 2);
      std::string_view line = h.substr(pos + 2, eol - pos - 2);
      size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        for (char& ch : name) ch = char(tolower(static_cast<unsigned char>(ch)));
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (name == "content-length") len = strtoull(std::string(value).c_str(), nullptr, 10);
        if (name == "transfer-encoding") chunked = true;
        if (name == "connection" && (value.starts_with("close") || value.starts_with("Close")))
          c.close_after = true;
      }
      pos = eol;
    }
    c.head.clear();
    if (c.status == 0 || chunked) {  // not a response this tool can frame
      Close(i, true, now);
      return;
    }
    if (o_.method == "HEAD" || c.status == 204 || c.status == 304) len = 0;
    c.body_left = len;
    c.in_body = len > 0;
    if (!c.in_body) {
      Answered(i, now);
      if (c.fd < 0) return;
    }
  }
}

void Load::OnReadable(size_t i, uint64_t now) {
  for (;;) {
    Conn& c = conns_[i];
    ssize_t n = recv(c.fd, rbuf_.data(), rbuf_.size(), 0);
    if (n > 0) {
      bytes_in_ += uint64_t(n);
      Consume(i, rbuf_.data(), size_t(n), now);
      if (conns_[i].fd < 0 || size_t(n) < rbuf_.size()) return;
    } else if (n == 0) {
      // An orderly close after a complete answer is the server ending keep-alive.
      Close(i, c.state == State::kBusy, now);
      return;
    } else {
      if (errno == EAGAIN || errno == EINTR) return;
      Close(i, true, now);
      return;
    }
  }
}

int Load::Run() {
  addr_.sin_family = AF_INET;
  addr_.sin_port = htons(uint16_t(o_.port));
  if (inet_pton(AF_INET, o_.host.c_str(), &addr_.sin_addr) != 1) {
    fprintf(stderr, "loadgen: --host must be an IPv4 address\n");
    return 2;
  }
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  const uint64_t begin = NowNs();
  t0_ = begin;
  end_ = begin + uint64_t((o_.connect_timeout_s + o_.warmup_s) * 1e9);
  for (size_t i = 0; i < conns_.size(); ++i) Open(i, begin);
  // Connection setup (SYN retries of a full accept queue included) stays out of the window.
  if (o_.connect_timeout_s > 0) Loop(Phase::kConnect, begin + uint64_t(o_.connect_timeout_s * 1e9));
  uint64_t now = NowNs();
  connect_phase_s_ = double(now - begin) * 1e-9;
  if (o_.warmup_s > 0) {
    t0_ = now;
    end_ = now + uint64_t(o_.warmup_s * 1e9);
    for (size_t i = 0; i < conns_.size(); ++i) TrySendDue(i, now, false);
    Loop(Phase::kLoad, end_);
  }
  const uint64_t start = NowNs();
  warmup_at_ = o_.warmup_s > 0 ? t0_ : start;
  StartClock(start);
  Loop(Phase::kLoad, end_);
  Report(NowNs());
  return 0;
}

void Load::StartClock(uint64_t now) {
  t0_ = now;
  end_ = now + uint64_t(o_.duration_s * 1e9);
  connected_at_start_ = 0;
  for (Conn& c : conns_) {
    if (c.state == State::kIdle || c.state == State::kBusy) ++connected_at_start_;
    c.sent = 0;
    c.ok = c.other = c.errors = 0;
    c.lat_sum_us = c.lat_max_us = 0;
    c.first_ok_ns = 0;
  }
  hist_ = Histogram();
  lag_ = Histogram();
  censored_ = 0;
  next_k_ = 0;
  connects_ = connect_errors_ = closes_ = bytes_in_ = 0;
  // Idle connections start now (open loop: when their first request falls due); a request
  // in flight from the warm-up is answered in the window and timed from when it was sent.
  for (size_t i = 0; i < conns_.size(); ++i) TrySendDue(i, now, false);
}

void Load::Loop(Phase phase, uint64_t until) {
  std::vector<epoll_event> evs(1024);
  for (;;) {
    uint64_t now = NowNs();
    if (now >= until) break;
    if (phase == Phase::kConnect && connecting_ == 0 && backoff_ == 0) break;
    // Sleep until the next event, the next due request (open loop), a retry, or the end.
    uint64_t wake = until;
    if (phase == Phase::kLoad && o_.rate > 0) {
      wake = std::min(wake, t0_ + uint64_t(double(next_k_) * 1e9 / o_.rate));
    }
    for (size_t i = 0; backoff_ > 0 && i < conns_.size(); ++i) {  // only after closes
      Conn& c = conns_[i];
      if (c.state != State::kBackoff) continue;
      if (c.retry_at_ns <= now) {
        Open(i, now);
      } else {
        wake = std::min(wake, c.retry_at_ns);
      }
    }
    timespec ts{};
    if (wake > now) {
      ts.tv_sec = time_t((wake - now) / 1000000000u);
      ts.tv_nsec = long((wake - now) % 1000000000u);
    }
    int n = epoll_pwait2(ep_, evs.data(), int(evs.size()), &ts, nullptr);
    if (n < 0 && errno == ENOSYS) {
      n = epoll_wait(ep_, evs.data(), int(evs.size()), int((wake - std::min(wake, now)) / 1000000));
    }
    now = NowNs();
    for (int e = 0; e < n; ++e) {
      size_t i = size_t(evs[size_t(e)].data.u64);
      Conn& c = conns_[i];
      if (c.fd < 0) continue;
      uint32_t ev = evs[size_t(e)].events;
      if (c.state == State::kConnecting) {
        if (ev & (EPOLLERR | EPOLLHUP)) {
          Close(i, true, now);
          continue;
        }
        if (!(ev & EPOLLOUT)) continue;
        c.state = State::kIdle;
        --connecting_;
        if (phase == Phase::kLoad) TrySendDue(i, now, false);
        continue;
      }
      if (phase == Phase::kConnect) {
        // Connected and not asked anything: only a close (or unexpected bytes) can come.
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) Close(i, true, now);
        continue;
      }
      if (ev & EPOLLIN) OnReadable(i, now);
      if (c.fd >= 0 && (ev & EPOLLOUT) && c.state == State::kBusy) Flush(i, now);
      if (c.fd >= 0 && (ev & (EPOLLERR | EPOLLHUP))) Close(i, c.state == State::kBusy, now);
    }
    if (phase == Phase::kLoad && o_.rate > 0) DispatchDue(now);
  }
}

void Load::Report(uint64_t end) {
  double secs = double(end - t0_) * 1e-9;
  size_t n = conns_.size();
  uint64_t ok = 0, other = 0, errors = 0, zero = 0, never_connected = 0;
  std::vector<double> rates(n);
  std::string per_ok, per_mean, per_max;
  per_ok.reserve(n * 6);
  char buf[96];
  for (size_t i = 0; i < n; ++i) {
    Conn& c = conns_[i];
    ok += c.ok;
    other += c.other;
    errors += c.errors;
    if (c.ok == 0) ++zero;
    if (c.ok == 0 && c.other == 0 && c.state == State::kConnecting) ++never_connected;
    rates[i] = double(c.ok) / secs;
    // Censored: what this connection is still waiting for. In the closed loop, the request on
    // the wire (or the one it could not send); in the open loop, every request due and not
    // answered, each at its age.
    uint64_t waits = 0, wait_sum_us = 0, wait_max_us = 0;
    auto censor = [&](uint64_t since_ns) {
      uint64_t age = (end - std::min(end, since_ns)) / 1000;
      hist_.Add(age);
      ++censored_;
      ++waits;
      wait_sum_us += age;
      wait_max_us = std::max(wait_max_us, age);
    };
    if (o_.rate <= 0) {
      if (c.state == State::kBusy || !c.out.empty()) {
        censor(c.req_start_ns);
      } else if (c.ok == 0) {
        censor(t0_);  // never got to send: it waited for the whole run all the same
      }
    } else {
      if (c.state == State::kBusy || !c.out.empty()) censor(c.req_start_ns);
      for (uint64_t j = c.sent; DueAt(i, j) < end; ++j) censor(DueAt(i, j));
    }
    uint64_t count = c.ok + waits;
    uint64_t mean_us = count ? (c.lat_sum_us + wait_sum_us) / count : 0;
    uint64_t max_us = std::max(c.lat_max_us, wait_max_us);
    snprintf(buf, sizeof buf, "%s%" PRIu64, i ? "," : "", c.ok);
    per_ok += buf;
    snprintf(buf, sizeof buf, "%s%" PRIu64, i ? "," : "", mean_us);
    per_mean += buf;
    snprintf(buf, sizeof buf, "%s%" PRIu64, i ? "," : "", max_us);
    per_max += buf;
  }
  std::vector<double> sorted = rates;
  std::sort(sorted.begin(), sorted.end());
  double mean = 0;
  for (double r : rates) mean += r;
  mean /= double(n);
  double var = 0;
  for (double r : rates) var += (r - mean) * (r - mean);
  double sd = std::sqrt(var / double(n));
  auto q = [&](double p) { return sorted[std::min(n - 1, size_t(p * double(n - 1) + 0.5))]; };
  printf("LOADGEN {\"mode\":\"%s\",\"conns\":%zu,\"duration_s\":%.3f,\"target_rate\":%.1f,"
         "\"requests_ok\":%" PRIu64 ",\"responses_other\":%" PRIu64 ",\"errors\":%" PRIu64 ","
         "\"connects\":%" PRIu64 ",\"connect_errors\":%" PRIu64 ",\"closes\":%" PRIu64 ","
         "\"bytes_in\":%" PRIu64 ",\"rps\":%.1f,\"connect_phase_s\":%.3f,"
         "\"connected_at_start\":%zu,\"warmup_s\":%.3f,"
         "\"clock_ns\":{\"warmup\":%" PRIu64 ",\"start\":%" PRIu64 ",\"end\":%" PRIu64 "},",
         o_.rate > 0 ? "open" : "closed", n, secs, o_.rate, ok, other, errors, connects_,
         connect_errors_, closes_, bytes_in_, double(ok) / secs, connect_phase_s_,
         connected_at_start_, o_.warmup_s, warmup_at_, t0_, end);
  printf("\"client_rps\":{\"min\":%.3f,\"p10\":%.3f,\"median\":%.3f,\"p90\":%.3f,\"max\":%.3f,"
         "\"mean\":%.3f,\"sd\":%.3f},\"clients_zero\":%" PRIu64 ",\"clients_never_connected\":%"
         PRIu64 ",",
         sorted.front(), q(0.1), q(0.5), q(0.9), sorted.back(), mean, sd, zero, never_connected);
  printf("\"latency_us\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
         ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 ",\"samples\":%" PRIu64 ",\"censored\":%"
         PRIu64 "},",
         hist_.Quantile(0.5), hist_.Quantile(0.9), hist_.Quantile(0.99), hist_.Quantile(0.999),
         hist_.Quantile(1.0), hist_.total(), censored_);
  printf("\"send_lag_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "},",
         lag_.Quantile(0.5), lag_.Quantile(0.99), lag_.Quantile(1.0));
  printf("\"latency_hist\":[%s],\"client_ok\":[%s],\"client_mean_us\":[%s],"
         "\"client_max_us\":[%s]}\n",
         hist_.Json().c_str(), per_ok.c_str(), per_mean.c_str(), per_max.c_str());
}

[[noreturn]] void Usage(const char* msg) {
  fprintf(stderr,
          "loadgen: %s\n"
          "usage: loadgen --port P [--host 127.0.0.1] [--conns N] [--duration S] [--rate R]\n"
          "               [--path /prefix] [--keys N] [--suffix S] [--method GET|PUT]\n"
          "               [--body-bytes B] [--seed N] [--connect-timeout S] [--warmup S]\n",
          msg);
  exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
    const char* v = argv[++i];
    if (a == "--host") o.host = v;
    else if (a == "--port") o.port = atoi(v);
    else if (a == "--conns") o.conns = atoi(v);
    else if (a == "--duration") o.duration_s = atof(v);
    else if (a == "--rate") o.rate = atof(v);
    else if (a == "--path") o.path = v;
    else if (a == "--suffix") o.suffix = v;
    else if (a == "--keys") o.keys = strtoull(v, nullptr, 10);
    else if (a == "--method") o.method = v;
    else if (a == "--body-bytes") o.body_bytes = size_t(strtoull(v, nullptr, 10));
    else if (a == "--seed") o.seed = strtoull(v, nullptr, 10);
    else if (a == "--connect-timeout") o.connect_timeout_s = atof(v);
    else if (a == "--warmup") o.warmup_s = atof(v);
    else Usage(("unknown option " + a).c_str());
  }
  if (o.port <= 0 || o.port > 65535) Usage("--port must be 1..65535");
  if (o.conns <= 0) Usage("--conns must be positive");
  if (!(o.duration_s > 0)) Usage("--duration must be positive");
  if (o.rate < 0) Usage("--rate must not be negative");
  if (o.connect_timeout_s < 0) Usage("--connect-timeout must not be negative");
  if (o.warmup_s < 0) Usage("--warmup must not be negative");
  if (o.method != "GET" && o.method != "PUT" && o.method != "HEAD") Usage("--method GET|PUT|HEAD");
  Load load(o);
  return load.Run();
}
