// The thread-pool model (see worker_threads.h): KingServer's shape with our
// HTTP core and storage path.
//
// Threads and what they own:
//   main        signals (sigtimedwait), housekeeping once a second (access
//               log flush, unmapping segments compaction
//               deleted, closing parked connections whose time is up),
//               stop orchestration, joins; while the access log holds
//               lines for a full pipe, a poll for room in it instead of the
//               sleep (signals then wait at most kLogRoomPollMs)
//   acceptor    poll(listen fds + stop eventfd), wait for room in the
//               bounded queue and, during a garbage flood, for a FloodGuard
//               token; accept4, TCP_NODELAY (on the listener when accepted
//               sockets inherit it), push into the queue, ring the pool
//               thread that went idle last (if one is idle)
//   pool[i]     pops one socket and serves it until it closes: blocking
//               recv/send(msg) (an idle connection's next request is waited
//               for in the recv, SO_RCVTIMEO capping it at kIdleLookMs), poll()
//               for the Connection's other waits and deadlines, its own
//               KvService (token prefix i) and its own http::Counters stripe; idle,
//               sleeps on its Doorbell
//
// Mail for writes a pool thread's connections left in flight (answered
// "outcome unknown", or whose client left) is taken when it comes, whatever
// the thread does but send: idle, it is woken by the dispatcher's ring;
// serving, its waits for the socket (and a lingering close's) watch its
// Doorbell too while any of its writes is in flight (Doorbell::Poll).
//   dispatcher  poll(completion eventfd), drains the slot's completion ring
//               and hands each completion to the pool thread whose prefix
//               the token carries (its inbox under its mutex, then its
//               Doorbell: no spinning, a system call only to wake a sleeper)
//
// A pool thread whose GET of a compressed value waits for room in the
// response budget (unanswered: src/kv/value_stream.h) sleeps on its
// Doorbell until a release by another pool thread makes room for
// it (RoomWaiters rings it), mail, a stop or the wait's give-up: it does not
// watch its socket meanwhile. One whose
// upload waits for the body budget with its body paused sleeps the same way
// until a release of the body budgets (any: the write exchanges' rules
// decide whose room it is), mail, a stop or its give-up. An upload waiting
// for room while its short body still arrives (its socket is read meanwhile)
// polls its socket and its Doorbell, which those releases ring
// (PollForRoom): it looks again when its bytes come or room may have.
//
// Counters: each pool thread counts in its own stripe of the slot's shared
// counters (SharedMemory::counters), the acceptor and the main thread in one
// each: every count is in shared memory when it is made (a kill -9 loses
// none), and no two threads write one cache line. Each marks its stripe
// before its first count (a pool thread when it takes its first client), so
// a scrape reads only the stripes of threads that counted.
#include "src/worker/worker_threads.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "http/connection.h"
#include "src/conf/log.h"
#include "src/kv/kv_backend.h"
#include "src/kv/kv_service.h"
#include "src/kv/token_table.h"
#include "src/worker/doorbell.h"
#include "src/worker/flood_guard.h"
#include "src/worker/master_signals.h"
#include "src/worker/room_waiters.h"
#include "src/worker/serve_options.h"
#include "src/worker/socket_send.h"
#include "src/worker/worker_context.h"

namespace kingx {
namespace {

constexpr int kAcceptBurst = 64;
constexpr int kAcceptPauseMs = 200;
constexpr int kStoppingPollMs = 100;  // poll cap once the stop eventfd is no longer watched
constexpr int kLogRoomPollMs = 100;   // the main thread's wait for room in a full access-log pipe
// An idle connection's look at clients waiting for a thread (and at a stop,
// a deadline, the yield): the cap of its wait for the next request.
constexpr int kIdleLookMs = static_cast<int>(kDrainIdleAfterMs / 4);
constexpr uint32_t kMaxThreads = 4096;  // token prefixes are 12 bits
// The slot's counter stripes (SharedMemory::counters): the main thread's,
// the acceptor's, then one per pool thread.
constexpr uint32_t kMainStripe = 0;
constexpr uint32_t kAcceptorStripe = 1;
constexpr uint32_t kPoolStripe0 = 2;
constexpr size_t kFloodFirstReadBytes = 4096;  // a new connection's first read during a garbage flood
constexpr size_t kParkScratchBytes = 16 * 1024;  // a buffer that sizes discards of parked sockets' junk

enum class Mode : int { kRun = 0, kGraceful = 1, kFast = 2 };

// A connection refused during a garbage flood, held unread until until_ms
// (kFloodParkMs, serve_options.h).
struct ParkedFd {
  int fd = -1;
  uint64_t until_ms = 0;
};

struct Accepted {
  int fd = -1;
  sockaddr_storage peer{};
  bool admin = false;
};

struct PoolThread {
  std::thread thread;
  std::unique_ptr<KvService> service;
  http::Counters* counters = nullptr;  // its stripe of the slot's shared counters
  uint32_t stripe = 0;                 // that stripe's number
  bool stripe_marked = false;          // the thread's own: MarkCounterStripe done
  // Completions routed here by the dispatcher (under mu), then a ring.
  std::mutex mu;
  Doorbell bell;  // mail, room (room_rung), a stop: the thread looks again
  std::vector<Completion> inbox;
  // The pool thread's own: the inbox it last took, emptied, swapped in by
  // the next TakeMail, so that both keep their capacity (no allocation per
  // completion once they have grown).
  std::vector<Completion> taken;
  std::atomic<bool> has_mail{false};
  std::atomic<int> active_fd{-1};  // the socket being served (fast stop shuts it down)
  size_t slot = 0;          // index in the pool: its RoomWaiters slot
  bool room_rung = false;   // under mu: a release made room for what it waits for
  bool idle_listed = false;  // under the worker's q_mu: in ThreadWorker::idle
};

struct ThreadWorker {
  explicit ThreadWorker(WorkerContext& c)
      : ctx(c), limits(LimitsFor(c.config)), backend(c), budgets(c.config) {}

  void AcceptLoop();
  void DispatchLoop();
  void PoolLoop(PoolThread* t);
  // How a served connection ended.
  struct Ended {
    bool yielded = false;  // closed idle to take a queued client
    bool garbage = false;  // http::Connection::RefusedBeforeAnyRequest
  };
  Ended Serve(PoolThread* t, const Accepted& a);
  // Requests the pool answered so far (the latency histograms' counts).
  uint64_t RequestsAnswered() const;
  // Blocks the acceptor until the FloodGuard allows one more accept (or a
  // stop begins); returns false on a stop. *metered: the accept that follows
  // spends a token (call SpendAcceptToken once it succeeded).
  bool WaitForAcceptToken(bool* metered);
  void SpendAcceptToken();
  // n connections ended (a pool thread's; parked ones closed: refused).
  void NoteConnectionEnd(bool garbage, size_t n = 1);
  bool ClaimQueuedClient();
  // Holds a refused connection's descriptor unread (a pool thread, during a
  // flood); closes the oldest parked one for room. counters: the caller's.
  // A parked connection's close is one more refused connection's end for
  // the FloodGuard: the flood is still on when its client comes back.
  // scratch: the caller's buffer (QuietParkedSocket).
  void Park(int fd, http::Counters& counters, std::span<char> scratch);
  // Closes parked descriptors whose time is up (all with all). Any thread
  // but under no lock of this worker; stripe: the caller's counter stripe.
  void ExpireParked(uint64_t now_ms, bool all, uint32_t stripe);
  // Sends everything conn has to send; *now_ms: the time after its last
  // send (left as it was when there was nothing to send). False when the
  // connection failed or the send timed out.
  bool FlushOutput(PoolThread* t, http::Connection& conn, int fd, uint64_t* now_ms);
  void Linger(PoolThread* t, int fd);
  // Hands t's mail to its service; returns the time it read for that, or 0
  // (no clock read) when there was none.
  uint64_t TakeMail(PoolThread* t);
  // now_ms: the caller's time, when the wait begins.
  bool WaitForMail(PoolThread* t, uint64_t now_ms, int timeout_ms);
  // Sleeps while t's compressed response waits for response budget room
  // (body == null), or the upload of *body waits for body budget room
  // (KvService::AwaitsBodyBudget), that no release made yet (RoomWaiters),
  // until a release rings t, mail arrives, a stop begins or timeout_ms
  // passes (from now_ms, the caller's time).
  void WaitForRoom(PoolThread* t, const KvConnState* body, uint64_t now_ms, int timeout_ms);
  // poll(fds, n, timeout_ms) for an upload of *body that waits for body
  // budget room while its short body still arrives (its socket is among
  // fds): a release of the budgets ends the poll too (it rings t's
  // Doorbell, which the poll watches). fds must have room for n + 1
  // entries. Returns what Doorbell::Poll returns (0 also when room was there
  // before it began).
  int PollForRoom(PoolThread* t, const KvConnState& body, pollfd* fds, nfds_t n, int timeout_ms);
  // The RoomWaiters a wait of t joins (see WaitForRoom), begun; returns how
  // many of out[0..3) it filled, for EndRoomWait.
  size_t BeginRoomWait(PoolThread* t, const KvConnState* body, RoomWaiters** out);
  static void EndRoomWait(PoolThread* t, RoomWaiters* const* begun, size_t n);
  static void RingRoom(void* worker, size_t slot);
  Mode mode() const { return static_cast<Mode>(mode_.load(std::memory_order_acquire)); }
  void SetMode(Mode m);

  WorkerContext& ctx;
  http::Limits limits;
  ShmKvBackend backend;
  WorkerBudgets budgets;  // shared by the pool threads' services
  std::atomic<int> mode_{0};
  uint64_t drain_start_ms = 0;  // written before mode_ turns kGraceful (release)
  int stop_efd = -1;            // readable once a stop began
  int exit_efd = -1;            // tells the dispatcher to exit
  std::vector<int> listen_fds;  // parallel to admin flags; closed by the acceptor when it stops
  std::vector<bool> listen_admin;
  std::vector<bool> listen_tuned;  // accepted sockets inherit the TCP options (TuneListenSocket)

  std::mutex q_mu;
  std::condition_variable q_not_full;
  std::deque<Accepted> queue;
  // Pool threads waiting for a client on their Doorbells (under q_mu), the
  // most recent last: the acceptor rings that one for each client it
  // queues, and takes it off the list.
  std::vector<PoolThread*> idle;
  size_t queue_cap = 0;
  std::atomic<size_t> queued{0};  // queue.size(), read without the lock by serving threads
  std::atomic<size_t> yielding{0};  // threads that gave an idle connection up for a queued client
  // Parked connections (under q_mu), oldest first: they count against the
  // queue's room, so that threads + queue + parked stay within the cap, and
  // the acceptor closes the oldest when it needs room for a client.
  std::deque<ParkedFd> parked;
  std::atomic<size_t> parked_count{0};  // parked.size(), read without the lock by serving threads
  size_t park_max = 0;  // kFloodParkMax, at most an eighth of the cap and half the queue's room

  // The garbage-flood meter (flood_guard.h), shared: pool threads report
  // connection endings, the acceptor asks for tokens. Keep-alive requests
  // are noted in last_keepalive_ms without the lock (one relaxed store per
  // millisecond at most) and handed to the guard by the acceptor.
  // flooding: the guard's Flooding() as of its last use under the lock (each
  // connection end and each accept while it was true), read without the
  // lock: pool threads size a first read and skip a linger by it, and the
  // acceptor leaves the guard alone while it is false (only a connection end
  // can start a flood).
  std::mutex flood_mu;
  FloodGuard flood;
  std::atomic<uint64_t> last_keepalive_ms{0};
  std::atomic<bool> flooding{false};

  std::vector<std::unique_ptr<PoolThread>> pool;
  // Pool threads waiting for room (after pool: they ring it): responses for
  // budgets.response; uploads for budgets.body, its whole share, and its
  // arrived share.
  std::unique_ptr<RoomWaiters> response_room, body_room, whole_room, arrived_room;
  std::atomic<size_t> pool_running{0};
};

void ThreadWorker::SetMode(Mode m) {
  int cur = mode_.load();
  while (static_cast<int>(m) > cur && !mode_.compare_exchange_weak(cur, static_cast<int>(m))) {
  }
  const uint64_t one = 1;
  (void)!write(stop_efd, &one, sizeof one);
  {
    std::lock_guard<std::mutex> lock(q_mu);
  }
  q_not_full.notify_all();
  for (auto& t : pool) {
    t->bell.Ring();  // after the mode's store: a waiter that missed it is rung
    if (m == Mode::kFast) {
      const int fd = t->active_fd.load();
      if (fd >= 0) shutdown(fd, SHUT_RDWR);  // wakes a blocked recv/send/poll
    }
  }
}

// ---------------------------------------------------------------- flood guard

void ThreadWorker::NoteConnectionEnd(bool garbage, size_t n) {
  std::lock_guard<std::mutex> lock(flood_mu);
  const uint64_t now = MonotonicMs();
  for (size_t i = 0; i < n; ++i) flood.OnConnectionEnd(garbage, now);
  flooding.store(flood.Flooding(now), std::memory_order_relaxed);
}

void ThreadWorker::SpendAcceptToken() {
  std::lock_guard<std::mutex> lock(flood_mu);
  flood.OnAccepted();
}

uint64_t ThreadWorker::RequestsAnswered() const {
  // The slot's marked stripes: the pool threads that counted (the acceptor's
  // and main thread's stripes hold no latency), and any an earlier occupant
  // left, which do not move.
  uint64_t n = 0;
  ctx.shm->ForEachCounterStripe(ctx.slot, [&](uint32_t s) {
    for (const uint64_t& b : ctx.Counters<http::Counters>(s)->latency_buckets) n += http::Load(b);
  });
  return n;
}

bool ThreadWorker::WaitForAcceptToken(bool* metered) {
  *metered = false;
  for (;;) {
    // No flood at the last look: nothing to meter. (The guard's tokens are
    // counted afresh, kBurst at most, when it is next asked.)
    if (!flooding.load(std::memory_order_relaxed)) return true;
    uint64_t wait_ms = 0;
    {
      std::lock_guard<std::mutex> lock(flood_mu);
      const uint64_t now = MonotonicMs();
      if (const uint64_t ka = last_keepalive_ms.load(std::memory_order_relaxed); ka != 0) {
        flood.OnKeepAliveRequest(ka);
      }
      const bool on = flood.Flooding(now);
      flooding.store(on, std::memory_order_relaxed);
      // The pool's request count only matters while a flood is on.
      const uint32_t allowed = flood.AcceptsAllowed(now, on ? RequestsAnswered() : 0);
      if (allowed > 0) {
        *metered = allowed != FloodGuard::kUnmetered;
        return true;
      }
      wait_ms = flood.MsUntilNextAccept(now);
    }
    // Out of tokens: the flood (and any client behind it) waits in the
    // kernel backlog; a stop ends the wait.
    pollfd stop{stop_efd, POLLIN, 0};
    if (poll(&stop, 1, static_cast<int>(wait_ms)) > 0 || mode() != Mode::kRun) return false;
  }
}

// ---------------------------------------------------------------- acceptor

void ThreadWorker::AcceptLoop() {
  char scratch[kParkScratchBytes];  // sizes CloseParkedSocket's discards
  std::vector<pollfd> fds;
  for (int fd : listen_fds) fds.push_back(pollfd{fd, POLLIN, 0});
  fds.push_back(pollfd{stop_efd, POLLIN, 0});
  while (mode() == Mode::kRun) {
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      KINGX_LOG_ERROR("acceptor: poll: %s", strerror(errno));
      break;
    }
    if (fds.back().revents != 0) break;
    for (size_t i = 0; i + 1 < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      for (int n = 0; n < kAcceptBurst && mode() == Mode::kRun; ++n) {
        {
          // Room in the queue before the accept, not after: a client accepted
          // and held here while the queue is full would be one connection
          // beyond ConnectionCap. Only this thread pushes, so the room stays.
          // While every thread is busy and the queue is full, clients wait in
          // the kernel backlog.
          std::unique_lock<std::mutex> lock(q_mu);
          // Parked connections give their room to clients first.
          int unparked[kAcceptBurst];
          size_t n_unparked = 0;
          while (queue.size() + parked.size() >= queue_cap && !parked.empty() && n_unparked < kAcceptBurst) {
            unparked[n_unparked++] = parked.front().fd;
            parked.pop_front();
          }
          parked_count.store(parked.size(), std::memory_order_relaxed);
          if (n_unparked > 0) {
            lock.unlock();
            for (size_t k = 0; k < n_unparked; ++k) CloseParkedSocket(unparked[k], scratch);
            ctx.MarkCounterStripe(kAcceptorStripe);
            http::Bump(ctx.Counters<http::Counters>(kAcceptorStripe)->flood_unparked, n_unparked);
            NoteConnectionEnd(true, n_unparked);
            lock.lock();
          }
          q_not_full.wait(lock, [this] { return queue.size() + parked.size() < queue_cap || mode() != Mode::kRun; });
        }
        bool metered = false;
        if (mode() != Mode::kRun || !WaitForAcceptToken(&metered)) break;
        Accepted a;
        socklen_t len = sizeof a.peer;
        a.fd = accept4(fds[i].fd, reinterpret_cast<sockaddr*>(&a.peer), &len, SOCK_CLOEXEC);
        if (a.fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            KINGX_LOG_WARN("accept: %s; pausing accepts for %d ms", strerror(errno), kAcceptPauseMs);
            pollfd stop{stop_efd, POLLIN, 0};
            (void)poll(&stop, 1, kAcceptPauseMs);
            break;
          }
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
          continue;  // ECONNABORTED...: that client is gone
        }
        if (metered) SpendAcceptToken();
        a.admin = listen_admin[i];
        if (!listen_tuned[i]) TuneClientSocket(a.fd, ctx.config);
        std::unique_lock<std::mutex> lock(q_mu);
        queue.push_back(a);
        queued.store(queue.size(), std::memory_order_relaxed);
        PoolThread* wake = nullptr;
        if (!idle.empty()) {
          wake = idle.back();
          idle.pop_back();
          wake->idle_listed = false;
        }
        lock.unlock();
        if (wake != nullptr) wake->bell.Ring();
      }
    }
  }
  // No more accepts: the listeners close now, not once the pool has drained,
  // so that a new client is refused (as by the event model) instead of
  // waiting in the backlog of a socket nobody accepts from.
  for (int fd : listen_fds) close(fd);
  listen_fds.clear();
}

// ---------------------------------------------------------------- dispatcher

void ThreadWorker::DispatchLoop() {
  pollfd fds[2] = {{ctx.completion_fd, POLLIN, 0}, {exit_efd, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      KINGX_LOG_ERROR("completion dispatcher: poll: %s", strerror(errno));
      return;
    }
    if (fds[0].revents != 0) {
      uint64_t counter;  // one read resets it (not a semaphore eventfd)
      (void)!read(ctx.completion_fd, &counter, sizeof counter);
      ctx.DrainCompletions([this](const Completion& c) {
        const uint32_t prefix = TokenPrefix(c.token);
        if (prefix >= pool.size()) return;
        PoolThread* t = pool[prefix].get();
        {
          std::lock_guard<std::mutex> lock(t->mu);
          t->inbox.push_back(c);
          t->has_mail.store(true, std::memory_order_release);
        }
        t->bell.Ring();
      });
    }
    if (fds[1].revents != 0) return;
  }
}

// ---------------------------------------------------------------- pool

uint64_t ThreadWorker::TakeMail(PoolThread* t) {
  if (!t->has_mail.load(std::memory_order_acquire)) return 0;
  {
    std::lock_guard<std::mutex> lock(t->mu);
    t->taken.swap(t->inbox);
    t->has_mail.store(false, std::memory_order_relaxed);
  }
  const uint64_t now = MonotonicMs();
  for (const Completion& c : t->taken) t->service->OnCompletion(c, now);
  t->taken.clear();
  return now;
}

// Sleeps on t's doorbell until done() (asked before each sleep and after
// each ring: a ring may be one meant for an earlier wait) or timeout_ms
// passes from now_ms (the caller's time: the clock is read only after a
// sleep that did not end the wait).
template <typename Done>
void WaitForBell(PoolThread* t, uint64_t now_ms, int timeout_ms, Done done) {
  if (done()) return;
  const uint64_t until = now_ms + static_cast<uint64_t>(std::max(timeout_ms, 0));
  for (uint64_t now = now_ms; now < until; now = MonotonicMs()) {
    if (t->bell.Wait(static_cast<int>(until - now)) && done()) return;
  }
}

// Sleeps until a completion arrives for this thread, a stop begins, or
// timeout_ms passes. Returns true when mail is waiting.
bool ThreadWorker::WaitForMail(PoolThread* t, uint64_t now_ms, int timeout_ms) {
  const Mode start = mode();
  WaitForBell(t, now_ms, timeout_ms,
              [&] { return t->has_mail.load(std::memory_order_acquire) || mode() != start; });
  return t->has_mail.load(std::memory_order_acquire);
}

size_t ThreadWorker::BeginRoomWait(PoolThread* t, const KvConnState* body, RoomWaiters** out) {
  size_t n = 0;
  if (body == nullptr) {
    out[n++] = response_room.get();
    response_room->Begin(t->slot, t->service->ResponseBudgetNeed());
    return n;
  }
  out[n++] = body_room.get();
  out[n++] = whole_room.get();
  if (t->service->AwaitsArrivedRoom(*body)) out[n++] = arrived_room.get();
  for (size_t i = 0; i < n; ++i) out[i]->Begin(t->slot, RoomWaiters::kAnyRelease);
  return n;
}

void ThreadWorker::EndRoomWait(PoolThread* t, RoomWaiters* const* begun, size_t n) {
  for (size_t i = 0; i < n; ++i) begun[i]->End(t->slot);
}

void ThreadWorker::WaitForRoom(PoolThread* t, const KvConnState* body, uint64_t now_ms, int timeout_ms) {
  {
    std::lock_guard<std::mutex> lock(t->mu);
    t->room_rung = false;  // a ring for an earlier wait
  }
  RoomWaiters* begun[3] = {};
  const size_t n = BeginRoomWait(t, body, begun);
  // The check after Begin (RoomWaiters' order): room released before it is
  // seen here, room released after it rings this thread.
  if (t->service->NextRetryMs() == 0) {
    const Mode start = mode();
    WaitForBell(t, now_ms, timeout_ms, [&] {
      std::lock_guard<std::mutex> lock(t->mu);
      return t->room_rung || !t->inbox.empty() || mode() != start;
    });
  }
  EndRoomWait(t, begun, n);
}

int ThreadWorker::PollForRoom(PoolThread* t, const KvConnState& body, pollfd* fds, nfds_t n, int timeout_ms) {
  RoomWaiters* begun[3] = {};
  const size_t k = BeginRoomWait(t, &body, begun);
  int r = 0;
  // The check after Begin, as in WaitForRoom.
  if (t->service->NextRetryMs() == 0) r = t->bell.Poll(fds, n, timeout_ms);
  EndRoomWait(t, begun, k);
  return r;
}

// A ring may come for a wait that just ended: it only ends a sleep.
void ThreadWorker::RingRoom(void* worker, size_t slot) {
  PoolThread* t = static_cast<ThreadWorker*>(worker)->pool[slot].get();
  {
    std::lock_guard<std::mutex> lock(t->mu);
    t->room_rung = true;
  }
  t->bell.Ring();
}

// Sends everything the Connection has to send: one SendGathered per gather
// list (the socket is blocking; SO_SNDTIMEO bounds a peer that does not read,
// and its expiry counts as the send timeout it is).
bool ThreadWorker::FlushOutput(PoolThread* t, http::Connection& conn, int fd, uint64_t* now_ms) {
  iovec iov[kMaxIov];
  while (conn.HasOutput()) {
    const size_t n = conn.GatherOutput(iov, kMaxIov);
    const ssize_t r = SendGathered(fd, iov, n, false);
    if (r < 0) {  // -EAGAIN = send timeout, -EPIPE, -ECONNRESET
      if (r == -EAGAIN || r == -EWOULDBLOCK) http::Bump(t->counters->timeouts);
      return false;
    }
    *now_ms = MonotonicMs();
    conn.ConsumeOutput(static_cast<size_t>(r), *now_ms);
  }
  return true;
}

// The lingering close of serve_options.h: FIN, then drop what the client
// sends until its EOF, kLingerMs or kLingerMaxBytes (the caller's close then
// resets the connection). Mail that comes meanwhile (writes in flight) is
// taken at once. fd: the socket t serves.
void ThreadWorker::Linger(PoolThread* t, int fd) {
  if (shutdown(fd, SHUT_WR) != 0) return;
  http::Counters& counters = *t->counters;
  char buf[4096];
  uint32_t dropped = 0;
  const uint64_t deadline = MonotonicMs() + kLingerMs;
  for (uint64_t now = MonotonicMs(); now < deadline && mode() != Mode::kFast; now = MonotonicMs()) {
    TakeMail(t);
    pollfd p[2] = {{fd, POLLIN, 0}, {}};
    const int wait_ms = static_cast<int>(std::min<uint64_t>(deadline - now, kStoppingPollMs));
    if ((t->service->InFlight() != 0 ? t->bell.Poll(p, 1, wait_ms) : poll(p, 1, wait_ms)) < 0 && errno != EINTR) {
      return;
    }
    if (p[0].revents == 0) continue;
    // One byte past the bound is enough to know the client is still sending.
    const size_t want = std::min<size_t>(sizeof buf, kLingerMaxBytes - dropped + 1);
    const ssize_t n = recv(fd, buf, want, 0);
    if (n <= 0) return;
    dropped += static_cast<uint32_t>(n);
    http::Bump(counters.linger_bytes, static_cast<uint64_t>(n));
    if (dropped > kLingerMaxBytes) {
      http::Bump(counters.linger_cut);
      return;
    }
  }
}

ThreadWorker::Ended ThreadWorker::Serve(PoolThread* t, const Accepted& a) {
  KvConnState state;
  state.admin = a.admin;
  state.SetPeer(reinterpret_cast<const sockaddr*>(&a.peer));
  http::Connection conn(*t->service, limits, t->counters, MonotonicMs());
  conn.SetListener(a.admin ? http::Listener::kAdmin : http::Listener::kMain);
  conn.set_user_data(&state);
  t->active_fd.store(a.fd);
  if (mode() == Mode::kFast) shutdown(a.fd, SHUT_RDWR);  // raced with SetMode
  {
    timeval tv{static_cast<time_t>(limits.send_timeout_ms / 1000),
               static_cast<suseconds_t>((limits.send_timeout_ms % 1000) * 1000)};
    setsockopt(a.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    // The blocking recv that waits for an idle connection's next request
    // ends after kIdleLookMs (EAGAIN) for the next look.
    const timeval idle_look{0, static_cast<suseconds_t>(kIdleLookMs) * 1000};
    setsockopt(a.fd, SOL_SOCKET, SO_RCVTIMEO, &idle_look, sizeof idle_look);
  }
  char buf[kReadBufferBytes];
  uint64_t served_at_last_feed = 0;
  uint64_t last_input_ms = MonotonicMs();
  bool fed = false;
  bool linger = false;
  bool yielded = false;
  for (;;) {
    // The pass's time: read once, by the first step that needs it.
    uint64_t now = TakeMail(t);
    if (!FlushOutput(t, conn, a.fd, &now)) break;
    if (conn.ShouldClose()) {
      linger = true;
      break;
    }
    const Mode m = mode();
    if (now == 0) now = MonotonicMs();
    if (m == Mode::kFast) break;
    if (m == Mode::kGraceful) {
      t->service->SetDraining();
      const bool idle = state.exchange == nullptr && !conn.Streaming() &&
                        (!fed || conn.requests_served() > served_at_last_feed);
      if (now >= drain_start_ms + kDrainHardMs) break;
      if (idle && now >= drain_start_ms + kDrainGraceMs) {
        linger = true;  // FIN first: a request racing with the close is not reset
        break;
      }
    }
    if (t->service->AwaitsStorage(state)) {
      // Writes waiting for queue or staging room ask again every
      // kBusyRetryMs; an upload waiting for body budget room sleeps until a
      // release rings it or its give-up (NextExpiryMs) is due.
      const bool retrying = t->service->NextRetryMs() != 0;
      const bool body_wait = !retrying && t->service->AwaitsBodyBudget(state);
      uint64_t wait_ms = retrying ? kBusyRetryMs : body_wait ? 60'000 : kStoppingPollMs * 10;
      if (body_wait && m != Mode::kRun) wait_ms = kStoppingPollMs;  // watch the drain's deadline
      if (const uint64_t expiry = t->service->NextExpiryMs(); expiry != 0) {
        wait_ms = std::min<uint64_t>(wait_ms, expiry > now ? expiry - now : 0);
      }
      if (body_wait) {
        WaitForRoom(t, &state, now, static_cast<int>(wait_ms));
        t->service->Poke(MonotonicMs());
      } else if (!WaitForMail(t, now, static_cast<int>(wait_ms))) {
        t->service->Poke(MonotonicMs());
      }
      continue;
    }
    // Writes waiting for queue room, and a compressed response once room
    // for it was released (NextRetryMs asks for both). An upload waiting
    // for body budget room while its short body arrives (it reads on
    // meanwhile): each pass (input, or a release that rang PollForRoom)
    // asks. A response answered has output: it is sent first (the poll
    // below watches input only).
    const bool body_wait = t->service->AwaitsBodyBudget(state);
    if (t->service->NextRetryMs() != 0 || body_wait) {
      t->service->Poke(now);
      if (conn.HasOutput()) continue;
    }
    // Something falls due at a time of its own (an upload idle long enough
    // to spill its body, a give-up): Poke then, also while reading.
    const uint64_t expiry = t->service->NextExpiryMs();
    if (expiry != 0 && expiry <= now) {
      t->service->Poke(now);
      if (conn.HasOutput()) continue;
    }
    // A keep-alive connection idle for a while gives its thread up to a
    // client waiting in the queue (the thread model's connection slots are
    // its threads; nginx drains idle connections the same way).
    const bool idle = state.exchange == nullptr && !conn.Streaming() && !conn.HasOutput() &&
                      (!fed || conn.requests_served() > served_at_last_feed);
    if (idle && now >= last_input_ms + kDrainIdleAfterMs && ClaimQueuedClient()) {
      yielded = true;  // nothing in flight: a plain close, no linger
      break;
    }
    const uint64_t deadline = conn.DeadlineMs();
    if (deadline != 0 && deadline <= now) {
      conn.OnTimer(now);
      continue;
    }
    int timeout = deadline != 0 ? static_cast<int>(std::min<uint64_t>(deadline - now, 60'000)) : 60'000;
    pollfd fds[3] = {{a.fd, static_cast<short>(conn.WantsRead() ? POLLIN : 0), 0}, {stop_efd, POLLIN, 0}, {}};
    nfds_t nfds = 2;
    if (m != Mode::kRun) {
      nfds = 1;  // the stop eventfd stays readable: watch the clock instead
      timeout = std::min(timeout, kStoppingPollMs);
    }
    if (!conn.WantsRead()) timeout = std::min(timeout, kStoppingPollMs);
    if (expiry > now) timeout = std::min<int>(timeout, static_cast<int>(std::min<uint64_t>(expiry - now, 60'000)));
    if (idle) timeout = std::min(timeout, kIdleLookMs);  // notice waiting clients
    const bool retrying = t->service->NextRetryMs() != 0;
    if (retrying) {
      timeout = std::min(timeout, static_cast<int>(kBusyRetryMs));  // queue room: soon again
    } else if (t->service->AwaitsResponseBudget()) {
      // Until a release makes room, its give-up (NextExpiryMs), the
      // connection's deadline or a stop.
      int room_ms = deadline != 0 ? static_cast<int>(std::min<uint64_t>(deadline - now, 60'000)) : 60'000;
      if (expiry > now) room_ms = std::min<int>(room_ms, static_cast<int>(std::min<uint64_t>(expiry - now, 60'000)));
      if (m != Mode::kRun) room_ms = std::min(room_ms, kStoppingPollMs);
      WaitForRoom(t, nullptr, now, room_ms);
      continue;
    }
    // An idle connection of a running worker with nothing else to wait for
    // and no deadline before the next look: the recv below waits for its
    // next request alone (SO_RCVTIMEO ends it after kIdleLookMs; a fast
    // stop's shutdown at once; a graceful stop's idle close waits for
    // kDrainGraceMs anyway), with no poll before it.
    const bool recv_waits = idle && m == Mode::kRun && conn.WantsRead() && !retrying && !body_wait &&
                            timeout >= kIdleLookMs && t->service->InFlight() == 0;
    if (!recv_waits) {
      // Its body's bytes, or a release of the body budgets; while writes are
      // in flight (one answered "outcome unknown" holds its room until its
      // completion is taken), mail too.
      int r;
      if (body_wait && !retrying) {
        r = PollForRoom(t, state, fds, nfds, timeout);
      } else if (t->service->InFlight() != 0) {
        r = t->bell.Poll(fds, nfds, timeout);
      } else {
        r = poll(fds, nfds, timeout);
      }
      if (r < 0 && errno != EINTR) break;
      if (r <= 0 || fds[0].revents == 0) continue;  // timeout, or a stop began: re-check at the top
    }
    size_t want = std::min(sizeof buf, t->service->ReadBytesHint(state));
    // During a garbage flood, a new connection's first read is small: a flood
    // connection that waited in the backlog holds tens of KiB of junk, and
    // the parser refuses it within its first bytes.
    if (!fed && flooding.load(std::memory_order_relaxed)) want = std::min(want, kFloodFirstReadBytes);
    const ssize_t n = recv(a.fd, buf, want, 0);
    now = MonotonicMs();
    if (n > 0) {
      fed = true;
      last_input_ms = now;
      served_at_last_feed = conn.requests_served();
      if (served_at_last_feed > 0 && last_keepalive_ms.load(std::memory_order_relaxed) != now) {
        last_keepalive_ms.store(now, std::memory_order_relaxed);
      }
      conn.Feed(std::span<const char>(buf, static_cast<size_t>(n)), now);
      t->service->OnInput(conn, now);
    } else if (n == 0) {
      conn.FeedEof(now);
    } else if (errno != EINTR && errno != EAGAIN) {
      break;
    }
  }
  const bool garbage = conn.RefusedBeforeAnyRequest();
  // During a garbage flood, and while connections refused in one are parked
  // (their clients come back as they expire, whatever other connections
  // ended meanwhile), a connection refused before any request is parked
  // (held unread, kFloodParkMs): lingering would hold a pool thread on bytes
  // nobody wants, and closing it would let it reconnect.
  const bool park = linger && garbage && mode() == Mode::kRun &&
                    (flooding.load(std::memory_order_relaxed) || parked_count.load(std::memory_order_relaxed) > 0);
  if (linger && !park && mode() != Mode::kFast) Linger(t, a.fd);
  t->active_fd.store(-1);
  if (park) {
    Park(a.fd, *t->counters, buf);
  } else {
    close(a.fd);
  }
  // ~Connection (on return): OnAbort for an unanswered request (its write is orphaned).
  return Ended{yielded, garbage};
}

void ThreadWorker::Park(int fd, http::Counters& counters, std::span<char> scratch) {
  QuietParkedSocket(fd, scratch);
  int oldest = -1;
  {
    std::lock_guard<std::mutex> lock(q_mu);
    if (park_max == 0 || (parked.empty() && queue.size() >= queue_cap)) {
      oldest = fd;  // no room to hold it: closed like any refusal
    } else {
      if (parked.size() >= park_max || queue.size() + parked.size() >= queue_cap) {
        oldest = parked.front().fd;
        parked.pop_front();
      }
      parked.push_back(ParkedFd{fd, MonotonicMs() + kFloodParkMs});
      parked_count.store(parked.size(), std::memory_order_relaxed);
      http::Bump(counters.flood_parked);
    }
  }
  if (oldest >= 0) {
    CloseParkedSocket(oldest, scratch);
    if (oldest != fd) {
      http::Bump(counters.flood_unparked);
      NoteConnectionEnd(true);
    }
  }
}

void ThreadWorker::ExpireParked(uint64_t now_ms, bool all, uint32_t stripe) {
  std::vector<int> due;
  {
    std::lock_guard<std::mutex> lock(q_mu);
    while (!parked.empty() && (all || parked.front().until_ms <= now_ms)) {
      due.push_back(parked.front().fd);
      parked.pop_front();
    }
    parked_count.store(parked.size(), std::memory_order_relaxed);
  }
  char scratch[kParkScratchBytes];
  for (int fd : due) CloseParkedSocket(fd, scratch);
  if (!due.empty()) {
    ctx.MarkCounterStripe(stripe);
    http::Bump(ctx.Counters<http::Counters>(stripe)->flood_unparked, due.size());
    NoteConnectionEnd(true, due.size());
    q_not_full.notify_one();  // room for the acceptor
  }
}

// Claims one queued client for this thread to take after it closes its idle
// connection: at most as many threads yield as clients wait.
bool ThreadWorker::ClaimQueuedClient() {
  size_t y = yielding.load(std::memory_order_relaxed);
  for (;;) {
    if (y >= queued.load(std::memory_order_relaxed)) return false;
    if (yielding.compare_exchange_weak(y, y + 1, std::memory_order_relaxed)) return true;
  }
}

void ThreadWorker::PoolLoop(PoolThread* t) {
  bool yielded = false;
  for (;;) {
    Accepted a;
    {
      std::unique_lock<std::mutex> lock(q_mu);
      // Waits for a client on its doorbell, listed in `idle` for the
      // acceptor to ring. Writes the thread's connections left in flight
      // (answered "outcome unknown" after --storage-timeout-ms, or whose
      // client left) hold their staging and body room until their
      // completions are taken, and those come to this thread's inbox: the
      // dispatcher's ring for one wakes the thread, which takes it and waits
      // on. A stop rings every thread.
      while (queue.empty() && mode() == Mode::kRun) {
        if (!t->idle_listed) {
          idle.push_back(t);
          t->idle_listed = true;
        }
        lock.unlock();
        TakeMail(t);
        (void)t->bell.Wait(-1);
        lock.lock();
      }
      if (t->idle_listed) {  // woken by mail or a stop, or found a client first
        idle.erase(std::find(idle.begin(), idle.end(), t));
        t->idle_listed = false;
      }
      if (queue.empty() || mode() == Mode::kFast) break;
      a = queue.front();
      queue.pop_front();
      queued.store(queue.size(), std::memory_order_relaxed);
    }
    if (yielded) yielding.fetch_sub(1, std::memory_order_relaxed);  // took the client it yielded for
    q_not_full.notify_one();
    if (!t->stripe_marked) {
      ctx.MarkCounterStripe(t->stripe);
      t->stripe_marked = true;
    }
    const Ended ended = Serve(t, a);
    yielded = ended.yielded;
    NoteConnectionEnd(ended.garbage);
  }
  // Orphaned writes still in the table are forgotten with the service.
  pool_running.fetch_sub(1);
}

}  // namespace

int RunThreadWorker(WorkerContext& ctx) {
  if (ctx.completion_fd < 0 || ctx.queue == nullptr || ctx.reader == nullptr || ctx.shm == nullptr) {
    KINGX_LOG_ERROR("worker %u: incomplete worker context", ctx.worker_index);
    return 2;
  }
  auto w = std::make_unique<ThreadWorker>(ctx);
  w->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  w->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->stop_efd < 0 || w->exit_efd < 0) {
    KINGX_LOG_ERROR("worker %u: eventfd: %s", ctx.worker_index, strerror(errno));
    return 2;
  }
  for (int fd : ctx.listen_fds) {
    w->listen_fds.push_back(fd);
    w->listen_admin.push_back(false);
    w->listen_tuned.push_back(TuneListenSocket(fd, ctx.config));
  }
  if (ctx.admin_listen_fd >= 0) {
    w->listen_fds.push_back(ctx.admin_listen_fd);
    w->listen_admin.push_back(true);
    w->listen_tuned.push_back(TuneListenSocket(ctx.admin_listen_fd, ctx.config));
  }
  // Connections held: one per pool thread plus the accepted ones waiting
  // in the queue; together within ConnectionCap. So at most cap - 1
  // threads (the queue keeps room for a client an idle connection yields
  // to), and at most PoolDoorbellShare: each may keep a doorbell eventfd.
  const size_t cap = ConnectionCap(ctx.config);
  const uint32_t wanted = std::clamp<uint32_t>(ctx.config.threads, 1, kMaxThreads);
  const uint64_t doorbells = PoolDoorbellShare(ctx.config);
  const uint32_t threads =
      static_cast<uint32_t>(std::clamp<size_t>(std::min<uint64_t>(cap - 1, doorbells), 1, wanted));
  if (threads < wanted) {
    // Name the bound that took effect: the doorbells' share of the descriptor
    // limit, or the connection cap (the operator's --max-connections, or what
    // the descriptor limit leaves).
    if (doorbells < cap - 1) {
      KINGX_LOG_WARN("worker %u: %u pool threads (--threads %u: each keeps a doorbell eventfd, and half of what the "
                     "descriptor limit, RLIMIT_NOFILE, leaves beside the storage is %llu)",
                     ctx.worker_index, threads, wanted, static_cast<unsigned long long>(doorbells));
    } else {
      KINGX_LOG_WARN("worker %u: %u pool threads (--threads %u: each holds a connection, and %s allows at most %zu "
                     "connections, one of them kept for a waiting client)",
                     ctx.worker_index, threads, wanted,
                     cap == ctx.config.max_connections
                         ? "--max-connections"
                         : "the descriptor limit, RLIMIT_NOFILE, with room kept for the storage,",
                     cap);
    }
  }
  w->queue_cap = cap > threads ? cap - threads : 1;
  w->park_max = std::min({kFloodParkMax, cap / 8, w->queue_cap / 2});
  // Counter stripes: kMainStripe, kAcceptorStripe, then kPoolStripe0 + i
  // pool thread i's (what an earlier occupant of the slot counted stays in
  // them), each marked when its thread first counts.
  static_assert(kPoolStripe0 + kMaxThreads <= kCounterStripes);

  // Signals are taken by this thread only: block them before any thread
  // starts so that every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGQUIT, SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, s);
  for (int s : kMasterOnlySignals) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  for (uint32_t i = 0; i < threads; ++i) {
    auto t = std::make_unique<PoolThread>();
    t->service = std::make_unique<KvService>(w->backend, ctx.access_log, ServiceOptionsFor(ctx, i, w->budgets),
                                             nullptr, nullptr);
    t->slot = i;
    t->stripe = kPoolStripe0 + i;
    t->counters = ctx.Counters<http::Counters>(t->stripe);
    w->pool.push_back(std::move(t));
  }
  for (auto [waiters, budget] : {std::pair{&w->response_room, &w->budgets.response},
                                 std::pair{&w->body_room, &w->budgets.body},
                                 std::pair{&w->whole_room, &w->budgets.body_whole},
                                 std::pair{&w->arrived_room, &w->budgets.body_arrived}}) {
    *waiters = std::make_unique<RoomWaiters>(*budget, w->pool.size(), &ThreadWorker::RingRoom, w.get());
  }
  ThreadWorker* tw = w.get();
  std::thread dispatcher;
  std::thread acceptor;
  try {
    dispatcher = std::thread([tw] { tw->DispatchLoop(); });
    for (auto& t : w->pool) {
      PoolThread* pt = t.get();
      w->pool_running.fetch_add(1);
      t->thread = std::thread([tw, pt] { tw->PoolLoop(pt); });
    }
    acceptor = std::thread([tw] { tw->AcceptLoop(); });
  } catch (const std::system_error& e) {
    // Thread creation failed (EAGAIN: limits): stop what started, report.
    KINGX_LOG_ERROR("worker %u: starting threads: %s", ctx.worker_index, e.what());
    w->SetMode(Mode::kFast);
    const uint64_t one = 1;
    (void)!write(w->exit_efd, &one, sizeof one);
    for (auto& t : w->pool) {
      if (t->thread.joinable()) t->thread.join();
    }
    if (dispatcher.joinable()) dispatcher.join();
    if (acceptor.joinable()) acceptor.join();
    close(w->stop_efd);
    close(w->exit_efd);
    return 2;
  }
  KINGX_LOG_INFO("worker %u (slot %u) serving on %zu listener(s), thread pool of %u", ctx.worker_index, ctx.slot,
                 w->listen_fds.size(), threads);

  uint64_t graceful_since = 0;
  while (w->pool_running.load() > 0) {
    timespec tick{1, 0};
    if (w->mode() != Mode::kRun) tick = timespec{0, 100'000'000};
    siginfo_t info;
    int sig;
    if (const int room_fd = ctx.access_log != nullptr ? ctx.access_log->RoomWaitFd() : -1; room_fd >= 0) {
      // Lines held for a full access-log pipe: wait for room in it instead
      // (signals are then taken within kLogRoomPollMs), and write them as
      // soon as the reader takes some.
      // Room, or an error (POLLERR: the reader left): either way the write
      // ends the wait (written, or dropped and reported), so a poll that
      // keeps returning at once is never looped on.
      pollfd room{room_fd, POLLOUT, 0};
      if (poll(&room, 1, kLogRoomPollMs) == 1) ctx.access_log->Flush();
      const timespec now{0, 0};
      sig = sigtimedwait(&set, &info, &now);
    } else {
      sig = sigtimedwait(&set, &info, &tick);
    }
    if (sig == SIGQUIT && w->mode() == Mode::kRun) {
      KINGX_LOG_INFO("worker %u: graceful stop", ctx.worker_index);
      w->drain_start_ms = MonotonicMs();
      graceful_since = w->drain_start_ms;
      w->SetMode(Mode::kGraceful);
    } else if (sig == SIGTERM || sig == SIGINT) {
      KINGX_LOG_INFO("worker %u: fast stop", ctx.worker_index);
      w->SetMode(Mode::kFast);
    } else if (sig == SIGUSR1) {
      if (ctx.access_log != nullptr) {
        engine::Status st = ctx.access_log->Reopen();
        if (!st.ok()) KINGX_LOG_ERROR("reopening the access log: %s", st.ToString().c_str());
      }
      engine::Status st = ReopenErrorLog();
      if (!st.ok()) KINGX_LOG_ERROR("reopening the error log: %s", st.ToString().c_str());
    } else if (sig == SIGHUP || sig == SIGUSR2) {
      OnMasterOnlySignal(ctx.config, sig);
    }
    if (w->mode() == Mode::kGraceful && MonotonicMs() >= graceful_since + kDrainHardMs + 1000) {
      w->SetMode(Mode::kFast);  // a pool thread is stuck in a blocking call
    }
    if (ctx.access_log != nullptr) ctx.access_log->FlushIfDue();
    // Segments compaction deleted: unmap them without waiting for a read.
    if (ctx.reader != nullptr) ctx.reader->ReleaseDeletedSegments();
    // Parked connections whose time is up; all of them once a stop began.
    w->ExpireParked(MonotonicMs(), w->mode() != Mode::kRun, kMainStripe);
  }
  for (auto& t : w->pool) t->thread.join();
  acceptor.join();
  const uint64_t one = 1;
  (void)!write(w->exit_efd, &one, sizeof one);
  dispatcher.join();
  for (int fd : w->listen_fds) close(fd);
  {
    std::lock_guard<std::mutex> lock(w->q_mu);
    for (const Accepted& a : w->queue) close(a.fd);
    w->queue.clear();
    char scratch[kParkScratchBytes];
    for (const ParkedFd& p : w->parked) CloseParkedSocket(p.fd, scratch);
    w->parked.clear();
  }
  close(w->stop_efd);
  close(w->exit_efd);
  if (ctx.access_log != nullptr) ctx.access_log->Flush();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  KINGX_LOG_INFO("worker %u: stopped", ctx.worker_index);
  return 0;
}

}  // namespace kingx
