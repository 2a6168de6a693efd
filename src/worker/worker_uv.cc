// The event-model worker (see worker_uv.h). The only includer of <uv.h>.
//
// One loop, single-threaded. Handles:
//   listeners     uv_poll on each listen fd; we accept4() ourselves so that
//                 accepting can pause (connection cap, EMFILE) without spinning
//   flood timer   resumes accepting metered by the FloodGuard (a garbage
//                 flood waits in the backlog, new clients come in at a pace)
//   parked        descriptors of connections refused during a flood, held
//                 unread (no handle) until the sweep closes them
//                 (kFloodParkMs, serve_options.h)
//   connections   uv_tcp per socket + http::Connection + KvConnState (UvConn)
//   completions   uv_poll on the slot's eventfd → KvService::OnCompletion
//   sweep timer   connections' deadlines that passed (a TimerWheel: idle
//                 connections not due are not visited), lingering closes,
//                 stalled writes, drain progress, access-log flush,
//                 unmapping segments that compaction deleted
//   retry timer   re-offers writes that found the queue full, and uploads
//                 waiting for the body budget once room was released
//                 (KvService::Poke; runs only while NextRetryMs asks)
//   thread pool   an online backup's file reads (UvOffload), one piece at a
//                 time per backup, handed back to the loop
//   signals       QUIT graceful stop, TERM/INT fast stop, USR1 reopen logs,
//                 HUP/USR2 the master's (master_signals.h)
//   check/prepare under --sync always, the writer's wake-up, deferred by
//                 this thread (WriteQueue::DeferWakes), is written after each
//                 poll phase and before the loop blocks: the writes read in
//                 one poll phase wake it once and go to it as one batch
//
// Memory per idle keep-alive connection is the UvConn alone (uv_tcp_t,
// Connection, KvConnState, its timer link: one 512-byte malloc chunk) plus
// libuv's pointer per descriptor: reads land in one per-loop buffer, the
// Connection copies only what it cannot parse yet and holds no parser,
// input buffer or output block between requests.
//
// Reads of one poll phase: a read of an idle connection that took fewer
// than ReadBatch::kSliceBytes (a socket is read again in the same phase
// only after a full buffer, so it was that connection's last) lands in a
// slice of the worker's ReadBatch (read_batch.h) and is held; every other
// read (a connection with a request, output, a write or a storage wait in
// progress, lingering, a slice filled) is fed at once. The held reads are
// served when the batch holds ReadBatch::kSlices of them, before any other
// read is fed, before a write completion, a storage completion or a signal
// is handled, and in the check phase right after the
// poll phase: a held read waits while at most kSlices - 1 later reads are
// taken from their sockets (and connections accepted), never while later
// reads are served, however long the poll phase runs. Serving: the key of
// each held read's first request (a GET or HEAD of a plain key,
// http::Parser::PeekKey) is hinted to the reader in one pass
// (Reader::PrefetchKeys: the index slots, then the records, so that their
// page walks and cache misses overlap), then each connection is fed in
// arrival order as any read is; its request's own key hints take the probe
// the batch found (KvService::OfferKeyProbe), so a key is hashed and probed
// once, and the read checks that the probe still holds (a write, growth or
// recovery since costs a fresh lookup). Pipelined requests after the first,
// PUT, DELETE, large values and errors are answered exactly as before. An
// EOF or error reported for a connection with a held read is handled after
// its bytes (the batch is served first). A connection with a held read is
// not idle (the drain at the cap and the graceful stop leave it); one
// closed by a fast stop before its read is served is skipped.
//
// Input: recv, not read. libuv reads a stream with read(2), whose file layer
// (the checks every read of any file takes) costs a socket more per call than
// recv(2), and it has no option for that; so each connection's I/O watcher
// (the uv_tcp_t's own, a structure <uv/unix.h> declares) calls OnConnIo,
// which reads readable events itself with recv exactly as libuv would (the
// same OnAlloc and OnRead, again after a read that filled its buffer, at
// most kReadsPerEvent times) and hands every other event (writability,
// errors) to libuv's own stream callback. Should libuv read anyway (an error
// event while reading), its read goes through the same OnAlloc and OnRead.
//
// Readiness: a reading connection is registered edge-triggered and for the
// peer's end (kReadEdge: EPOLLET | EPOLLRDHUP in its watcher's pevents, the
// mask libuv 1.x hands epoll_ctl as it is), as nginx registers its sockets:
// epoll then does not poll every socket it reported once more at its next
// wait to see whether it is still readable. That holds because every read
// path ends with the socket empty, at EOF, with reading stopped
// (StopReading; StartReading's registration change makes epoll check the
// socket again), or with ReadAgainLater. A read that did not fill its
// buffer means the socket is empty only while the peer has not ended: its
// FIN may already wait behind the bytes read, and no later arrival would
// announce it, so an event that reports the end (EPOLLRDHUP, or a hang-up or
// error) is read on until recv says so. The bits are cleared before every
// libuv call that stops reading or closes (libuv drops a watcher from its
// table only when no event is left in pevents). Writes need nothing: a
// write waits for POLLOUT only after the socket refused bytes.
//
// Output: one SendGathered (a send, or a sendmsg of the Connection's gather
// list: the socket calls, not libuv's write/writev) per flush; when the
// socket cannot take everything, one uv_write of the rest
// (zero-copy: the Connection keeps gathered bytes in place until
// ConsumeOutput). The send deadline is the Connection's.
#include "src/worker/worker_uv.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <iterator>
#include <cstddef>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/reader.h"
#include "http/connection.h"
#include "http/parser.h"
#include "src/conf/log.h"
#include "src/kv/kv_backend.h"
#include "src/kv/kv_service.h"
#include "src/kv/offload.h"
#include "src/worker/flood_guard.h"
#include "src/worker/master_signals.h"
#include "src/worker/read_batch.h"
#include "src/worker/serve_options.h"
#include "src/worker/socket_send.h"
#include "src/worker/timer_wheel.h"
#include "src/worker/worker_context.h"

namespace kingx {
namespace {

constexpr uint64_t kAcceptPauseMs = 200;     // after EMFILE / ENFILE
constexpr int kAcceptBurst = 64;             // accepts per readiness event
constexpr size_t kDrainBatch = 16;            // idle connections closed per burst of new clients (nginx: 32)
constexpr size_t kReadInWaitBytes = 4096;     // the one read taken while a request waits for the storage
constexpr size_t kFloodFirstReadBytes = 4096;  // a new connection's first read during a garbage flood
constexpr int kReadsPerEvent = 32;  // reads of one readable event while each fills its buffer (libuv's own bound)
// What a reading connection adds to its watcher's registration (see the top
// of this file), and the events after which a short read does not mean the
// socket is empty: the peer ended (its FIN or a reset) or the socket failed.
constexpr unsigned kReadEdge = EPOLLET | EPOLLRDHUP;
constexpr unsigned kPeerEnded = EPOLLRDHUP | POLLHUP | POLLERR;
// OnConnIo takes over the watcher of libuv 1.x's unix streams (<uv/unix.h>).
static_assert(UV_VERSION_MAJOR == 1, "OnConnIo relies on libuv 1.x's uv_stream_t io_watcher");
static_assert(ReadBatch::kSlices <= engine::Reader::kMaxPrefetchKeys, "a batch's keys are hinted in one pass");
// Bytes one Flush writes synchronously before it leaves the rest to an
// asynchronous write, whose completion comes on a later loop turn: a fast
// reader of a large (or streamed, decoded piece by piece) value then shares
// the loop with everyone else instead of holding it until the value is sent.
constexpr size_t kFlushBurstBytes = 512 * 1024;

struct UvWorker;

// A connection refused during a garbage flood, held unread until until_ms.
struct ParkedFd {
  int fd = -1;
  uint64_t until_ms = 0;
};

// A uv_write of gathered output the socket could not take at once.
struct PendingWrite {
  uv_write_t req;
  size_t bytes = 0;  // reported to ConsumeOutput when it completes
  size_t unsent = 0;  // of them still queued in libuv when last looked (OnDeadline)
  struct UvConn* conn = nullptr;
};

// One client connection. Its fields are ordered for the cache: a keep-alive
// request touches the KvConnState and TimerNode bases, the fields up to and
// including `http`, the head of `tcp` (data, loop: the conn and its
// worker) and tcp's I/O watcher (libuv's poll and OnConnIo), and nothing
// else of it, so those come first and together; the rest of the uv_tcp_t
// (its write queues, close and read callbacks) and the list links, touched
// when a connection opens, closes or writes asynchronously, come last.
// Declared after `http` are only trivially destructible fields: the
// Connection's destructor (which may call KvService::OnAbort, reading the
// KvConnState base) runs while all of them still live. Its TimerNode is
// armed in the worker's wheel for the Connection's DeadlineMs (or an
// earlier time: ArmDeadline), or, while lingering, for the end of the
// linger.
struct UvConn : KvConnState, TimerNode {
  UvConn(KvService& service, const http::Limits& limits, http::Counters* counters, uint64_t now_ms)
      : http(service, limits, counters, now_ms) {}

  // The worker whose loop the handle is on (the loop's data), once
  // uv_tcp_init succeeded: not a field, so that it costs no idle byte.
  UvWorker* worker() const { return static_cast<UvWorker*>(tcp.loop->data); }
  // The socket, as libuv opened it (read and written by us: OnConnIo, Flush).
  int fd() const { return tcp.io_watcher.fd; }

  PendingWrite* write = nullptr;  // an asynchronous write in flight
  uint64_t served_at_last_feed = 0;
  uint64_t last_input_ms = 0;    // when bytes last arrived (idle-connection draining)
  // One byte of flags, so that linger_bytes fits the padding before http.
  bool reading : 1 = false;
  bool closing : 1 = false;       // uv_close called
  bool lingering : 1 = false;     // shutdown(SHUT_WR) sent; discarding input until EOF
  bool eof : 1 = false;
  bool fed : 1 = false;           // received bytes since the connection opened
  bool storage_wait : 1 = false;  // Pump saw the request waiting for the storage
  bool fed_in_wait : 1 = false;   // bytes arrived during that wait
  bool batched : 1 = false;       // a read is held in the worker's batch (not yet fed)
  uint32_t linger_bytes = 0;      // bytes dropped while lingering (at most kLingerMaxBytes + 1)
  http::Connection http;
  uv_tcp_t tcp;
  UvConn* prev = nullptr;
  UvConn* next = nullptr;
};
// An idle connection is this one allocation: with glibc's 8-byte chunk
// header it fits a 512-byte chunk. A field added here costs every idle
// connection a size class (16 bytes) or more.
static_assert(sizeof(UvConn) <= 504, "UvConn no longer fits a 512-byte malloc chunk");
static_assert(std::is_trivially_destructible_v<uv_tcp_t> && std::is_trivially_destructible_v<UvConn*>,
              "the fields after UvConn::http must outlive the Connection's destructor");

struct Listener {
  uv_poll_t poll;
  UvWorker* worker = nullptr;
  int fd = -1;
  bool admin = false;
  bool active = false;
  bool tuned = false;  // accepted sockets inherit the listener's TCP options (TuneListenSocket)
};

// The loop's Offload (src/kv/offload.h) over libuv's thread pool: work on a
// pool thread, done on the loop (after_work), then the job is freed there.
class UvOffload final : public Offload {
 public:
  explicit UvOffload(uv_loop_t* loop) : loop_(loop) {}

  bool Queue(std::function<void()> work, std::function<void()> done) override {
    auto* job = new Job{uv_work_t{}, std::move(work), std::move(done)};
    job->req.data = job;
    const int r = uv_queue_work(
        loop_, &job->req, [](uv_work_t* req) { static_cast<Job*>(req->data)->work(); },
        [](uv_work_t* req, int) {
          auto* j = static_cast<Job*>(req->data);
          j->done();  // also when canceled: the work's own state says it did not run
          delete j;
        });
    if (r != 0) {
      delete job;
      return false;
    }
    return true;
  }

 private:
  struct Job {
    uv_work_t req;
    std::function<void()> work;
    std::function<void()> done;
  };
  uv_loop_t* loop_;
};

KvServiceOptions WithOffload(KvServiceOptions o, Offload* offload) {
  o.offload = offload;
  return o;
}

struct UvWorker {
  explicit UvWorker(WorkerContext& c)
      : ctx(c),
        limits(LimitsFor(c.config)),
        backend(c),
        budgets(c.config),
        offload(&loop),
        service(backend, c.access_log, WithOffload(ServiceOptionsFor(c, 0, budgets), &offload), &UvWorker::Wake,
                this) {}

  static void Wake(void* io, http::Connection& conn, uint64_t now_ms);
  static void ServeBatch(void* worker, std::span<const ReadBatch::Read> reads);

  WorkerContext& ctx;
  http::Limits limits;
  ShmKvBackend backend;
  WorkerBudgets budgets;
  UvOffload offload;  // backups' file reads (uses `loop` once it is initialized)
  KvService service;
  http::Counters* counters = nullptr;
  uv__io_cb stream_io = nullptr;  // libuv's callback of a stream's I/O watcher (OnConnIo forwards to it)

  uv_loop_t loop;
  std::vector<Listener*> listeners;
  uv_poll_t completion_poll;
  uv_timer_t sweep_timer;
  uv_timer_t retry_timer;
  uv_timer_t accept_timer;
  uv_timer_t flood_timer;
  uv_check_t check;
  uv_prepare_t prepare;
  uv_signal_t signals[6];
  // Room in the access log's full pipe (WatchLogRoom): initialized on
  // log_room_fd while lines are held, closed once they are written.
  uv_poll_t log_room;
  int log_room_fd = -1;

  UvConn* head = nullptr;        // newest first
  UvConn* tail = nullptr;        // oldest
  size_t conn_count = 0;
  size_t max_connections = 0;    // ConnectionCap: --max-connections within the descriptor limit
  uint64_t drained_idle = 0;     // idle connections closed at the cap since the last log line
  uint64_t drain_logged_ms = 0;
  bool accept_paused = false;    // EMFILE pause or connection cap
  bool flood_paused = false;     // out of FloodGuard tokens: flood_timer resumes
  FloodGuard flood;
  std::deque<ParkedFd> parked;   // oldest first; all park for kFloodParkMs, so also by deadline
  size_t park_max = 0;           // kFloodParkMax, at most an eighth of max_connections
  bool graceful = false;
  bool fast = false;
  bool stopped = false;          // handles are being closed
  uint64_t drain_start_ms = 0;
  uint64_t sweep_ms = 500;
  std::unique_ptr<TimerWheel> timers;  // connections' deadlines, ticks of sweep_ms
  char read_buf[kReadBufferBytes];
  // The poll phase's held reads (see the top of this file), served by
  // ServeBatch; its keys and probes, of which only [0, held) are written.
  ReadBatch batch{&UvWorker::ServeBatch, this};
  std::string_view batch_keys[ReadBatch::kSlices];
  engine::KeyProbe batch_probes[ReadBatch::kSlices];
  bool slice_lent = false;  // OnAlloc lent batch.Slice() to the read in progress
};

// ---------------------------------------------------------------- helpers

void StartReading(UvConn* c);
void StopReading(UvConn* c);
void ReadAgainLater(UvConn* c);
void Pump(UvConn* c, uint64_t now_ms);
void CloseConn(UvConn* c);

// Tells the Connection how much of the write in flight left so far (what
// libuv still holds of it shrank by that much); returns true when that grew
// since the last look.
bool NoteWriteProgress(UvConn* c) {
  const size_t unsent = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c->tcp));
  if (unsent >= c->write->unsent) return false;
  c->write->unsent = unsent;
  c->http.NoteInFlightSent(c->write->bytes - unsent);
  return true;
}
void Park(UvConn* c);
void MaybeFinishStop(UvWorker* w);
void ResumeAccepting(UvWorker* w);
void OnListenReadable(uv_poll_t* p, int status, int events);

void LinkConn(UvWorker* w, UvConn* c) {
  c->next = w->head;
  if (w->head != nullptr) w->head->prev = c;
  w->head = c;
  if (w->tail == nullptr) w->tail = c;
  ++w->conn_count;
}

void UnlinkConn(UvWorker* w, UvConn* c) {
  if (c->prev != nullptr) c->prev->next = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  if (w->head == c) w->head = c->next;
  if (w->tail == c) w->tail = c->prev;
  c->prev = c->next = nullptr;
}

// True when no request is in progress: nothing to send, no write pending, no
// body still being produced, and every byte received so far belonged to
// requests already answered. (The Connection has no "idle" observer.)
bool IsIdle(const UvConn* c) {
  return !c->batched && !c->http.HasOutput() && !c->http.Streaming() && c->write == nullptr && c->exchange == nullptr &&
         (!c->fed || c->http.requests_served() > c->served_at_last_feed);
}

// Descriptors held for clients: connections and parked ones (the cap counts
// both).
size_t Held(const UvWorker* w) { return w->conn_count + w->parked.size(); }

// Closes the oldest parked connection (CloseParkedSocket: a FIN, the junk
// it sent since dropped). Its close is one more refused connection's end
// for the FloodGuard: the flood its client belongs to is still on when the
// client comes back.
void Unpark(UvWorker* w) {
  CloseParkedSocket(w->parked.front().fd, w->read_buf);
  w->parked.pop_front();
  w->flood.OnConnectionEnd(true, MonotonicMs());
  if (w->counters != nullptr) http::Bump(w->counters->flood_unparked);
}

// Closes the parked connections whose time is up (all of them with all);
// resumes accepting when that made room at the cap.
void ExpireParked(UvWorker* w, uint64_t now_ms, bool all) {
  bool closed = false;
  while (!w->parked.empty() && (all || w->parked.front().until_ms <= now_ms)) {
    Unpark(w);
    closed = true;
  }
  if (closed && w->accept_paused && !w->graceful && !w->fast) ResumeAccepting(w);
}

void OnConnClosed(uv_handle_t* h) {
  auto* c = static_cast<UvConn*>(h->data);
  UvWorker* w = c->worker();
  w->flood.OnConnectionEnd(c->http.RefusedBeforeAnyRequest(), MonotonicMs());
  delete c;  // ~Connection: OnAbort for an unanswered request
  --w->conn_count;
  if (w->accept_paused && !w->graceful && !w->fast) ResumeAccepting(w);
  MaybeFinishStop(w);
}

void CloseConn(UvConn* c) {
  if (c->closing) return;
  c->closing = true;
  // What the write in flight sent so far counts in the body bytes the
  // access log gives the responses it cuts short (~Connection).
  if (c->write != nullptr) NoteWriteProgress(c);
  UnlinkConn(c->worker(), c);
  c->worker()->timers->Disarm(c);
  c->tcp.io_watcher.pevents &= ~kReadEdge;  // libuv's close must find no event left to unregister it
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), OnConnClosed);
}

// Ends a connection the polite way: FIN first, then discard what the peer
// still sends until its EOF, kLingerMs or kLingerMaxBytes (serve_options.h),
// so that its kernel does not reset the connection before it read our last
// response.
//
// During a garbage flood, and while connections refused in one are parked
// (their clients come back as they expire, whatever other connections ended
// meanwhile), a connection refused before any request is parked instead
// (Park): lingering would spend reads and a loop turn per flood connection on
// bytes nobody wants, and closing it would let it reconnect.
void Linger(UvConn* c) {
  if (c->closing || c->lingering) return;
  if (c->eof) return CloseConn(c);
  const UvWorker* w = c->worker();
  if (c->http.RefusedBeforeAnyRequest() && (w->flood.Flooding(MonotonicMs()) || !w->parked.empty())) return Park(c);
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) != 0 || shutdown(fd, SHUT_WR) != 0) {
    return CloseConn(c);
  }
  c->lingering = true;
  c->worker()->timers->Arm(c, MonotonicMs() + kLingerMs);  // replaces the Connection's deadline
  StartReading(c);
}

// Keeps a refused connection's descriptor, unread and without a handle, for
// kFloodParkMs (serve_options.h), and closes its handle: a copy of the
// descriptor keeps the socket open, so the client sees neither FIN nor
// reset. The copy is made cheap to hold (QuietParkedSocket: the junk queued
// on it dropped, a minimal receive buffer). The oldest parked one makes
// room when park_max are held. When the copy cannot be made, or a stop
// began, the connection is closed.
void Park(UvConn* c) {
  UvWorker* w = c->worker();
  uv_os_fd_t fd;
  const bool parking = w->park_max > 0 && !w->graceful && !w->fast;
  const int held = parking && uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) == 0
                       ? fcntl(fd, F_DUPFD_CLOEXEC, 0)
                       : -1;
  if (held >= 0) {
    QuietParkedSocket(held, w->read_buf);
    if (w->parked.size() >= w->park_max) Unpark(w);
    w->parked.push_back(ParkedFd{held, MonotonicMs() + kFloodParkMs});
    if (w->counters != nullptr) http::Bump(w->counters->flood_parked);
  }
  CloseConn(c);
}

void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<UvConn*>(h->data);
  // One buffer per loop: read_cb hands every byte to the Connection (which
  // copies what it cannot parse) before the next alloc. Smaller reads while
  // uploads wait for the body budget, and an upload's first window at most
  // what the budget has room for (KvService::ReadBytesHint).
  size_t n = std::min(kReadBufferBytes, c->worker()->service.ReadBytesHint(*c));
  if (c->storage_wait) n = std::min(n, kReadInWaitBytes);
  // During a garbage flood, a new connection's first read is small: a flood
  // connection that waited in the backlog holds tens of KiB of junk, and the
  // parser refuses it within its first bytes. (A request head longer than
  // this is read on in the next reads.)
  if (!c->fed && c->worker()->flood.Flooding(MonotonicMs())) n = std::min(n, kFloodFirstReadBytes);
  // Lingering: one byte past the bound is enough to know the client is
  // still sending, so no read copies more than that.
  if (c->lingering) n = std::min<size_t>(n, kLingerMaxBytes - c->linger_bytes + 1);
  UvWorker* w = c->worker();
  w->slice_lent = n >= ReadBatch::kSliceBytes && !c->lingering && !c->storage_wait && IsIdle(c);
  if (w->slice_lent) {
    const std::span<char> slice = w->batch.Slice();
    *buf = uv_buf_init(slice.data(), static_cast<unsigned>(slice.size()));
    return;
  }
  *buf = uv_buf_init(w->read_buf, static_cast<unsigned>(n));
}

// Feeds received bytes to the connection and acts on what it answers.
void FeedConn(UvConn* c, std::span<const char> bytes, uint64_t now) {
  c->fed = true;
  c->fed_in_wait = c->storage_wait;
  c->served_at_last_feed = c->http.requests_served();
  if (c->served_at_last_feed > 0) c->worker()->flood.OnKeepAliveRequest(now);
  c->last_input_ms = now;
  c->http.Feed(bytes, now);
  c->worker()->service.OnInput(c->http, now);
  Pump(c, now);
}

// The batch's held reads: the key of every read's first request hinted at
// once, then each connection fed in the order its read arrived, its
// request's own hints taking the probe found here (OfferKeyProbe). A
// connection closed since its read (only a fast stop can do that) is
// skipped. Feeding reads nothing (reads come only from the poll phase), so
// no read joins the batch while it is served.
void UvWorker::ServeBatch(void* worker, std::span<const ReadBatch::Read> reads) {
  auto* w = static_cast<UvWorker*>(worker);
  const size_t n = reads.size();
  std::string_view* keys = w->batch_keys;
  engine::KeyProbe* probes = w->batch_probes;
  for (size_t i = 0; i < n; ++i) keys[i] = http::Parser::PeekKey(reads[i].bytes);
  w->ctx.reader->PrefetchKeys(std::span<const std::string_view>(keys, n), std::span<engine::KeyProbe>(probes, n));
  const uint64_t now = MonotonicMs();
  for (size_t i = 0; i < n; ++i) {
    auto* c = static_cast<UvConn*>(reads[i].conn);
    c->batched = false;
    if (c->closing) continue;
    if (!keys[i].empty()) w->service.OfferKeyProbe(&c->http, keys[i], &probes[i]);
    FeedConn(c, reads[i].bytes, now);
    w->service.OfferKeyProbe(nullptr, {}, nullptr);
  }
}

void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<UvConn*>(s->data);
  if (c->closing) return;
  if (c->lingering) {
    if (nread > 0) {
      c->linger_bytes += static_cast<uint32_t>(nread);
      http::Counters* counters = c->worker()->counters;
      if (counters != nullptr) http::Bump(counters->linger_bytes, static_cast<uint64_t>(nread));
      if (c->linger_bytes > kLingerMaxBytes) {
        if (counters != nullptr) http::Bump(counters->linger_cut);
        CloseConn(c);  // unread bytes remain: the kernel resets the connection
      }
    } else if (nread < 0) {
      CloseConn(c);
    }
    return;
  }
  UvWorker* w = c->worker();
  const bool in_slice = w->slice_lent;
  w->slice_lent = false;
  // A read that filled its slice may be followed by more bytes (libuv reads
  // on): it is fed now, from the slice, which stays free.
  if (in_slice && nread > 0 && static_cast<size_t>(nread) < ReadBatch::kSliceBytes) {
    c->batched = true;
    return w->batch.Keep(c, static_cast<size_t>(nread));
  }
  if (nread != 0) {
    // Every held read first, c's own included (its bytes come before its
    // EOF or its next read); serving does not touch read_buf or the slice
    // a read that filled it used.
    w->batch.Serve();
    if (c->closing) return;
  }
  // One clock reading for the whole event (the request and its answer):
  // deadlines are in milliseconds.
  const uint64_t now = MonotonicMs();
  if (nread > 0) {
    return FeedConn(c, std::span<const char>(buf->base, static_cast<size_t>(nread)), now);
  } else if (nread == UV_EOF) {
    c->eof = true;
    c->http.FeedEof(now);
  } else if (nread < 0) {
    return CloseConn(c);  // ECONNRESET and friends: nobody to answer
  }
  Pump(c, now);
}

// Reads c's socket with recv after a readable event, as libuv's uv__read
// would with read(2): into OnAlloc's buffer, each result to OnRead (0 when
// the socket is empty, UV_EOF, or a negative error), again while a read
// fills its buffer or `events` report the peer's end (kPeerEnded: until
// recv returns 0 or an error), at most kReadsPerEvent times (then
// ReadAgainLater: the socket is registered edge-triggered, so what is left
// would not be reported again). At EOF reading stops first, as libuv stops
// it (the socket stays readable for ever).
void ReadSocket(UvConn* c, unsigned events) {
  auto* s = reinterpret_cast<uv_stream_t*>(&c->tcp);
  for (int i = 0; c->reading && !c->closing; ++i) {
    if (i == kReadsPerEvent) return ReadAgainLater(c);
    uv_buf_t buf = uv_buf_init(nullptr, 0);
    OnAlloc(reinterpret_cast<uv_handle_t*>(&c->tcp), kReadBufferBytes, &buf);
    if (buf.len == 0) return OnRead(s, UV_ENOBUFS, &buf);
    ssize_t n;
    do {
      n = recv(c->fd(), buf.base, buf.len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return OnRead(s, errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno, &buf);
    if (n == 0) {
      StopReading(c);
      return OnRead(s, UV_EOF, &buf);
    }
    OnRead(s, n, &buf);
    if (static_cast<size_t>(n) < buf.len && (events & kPeerEnded) == 0) return;  // the socket is empty
  }
}

// The callback of every connection's I/O watcher (AdoptSocket): readable
// events (and errors or hang-ups while reading, which the recv reports) are
// read here; the rest goes to libuv's stream callback without POLLIN and
// EPOLLRDHUP (ours: libuv's stream callback has no use for it).
void OnConnIo(uv_loop_t* loop, uv__io_t* w, unsigned int events) {
  auto* tcp = reinterpret_cast<uv_tcp_t*>(reinterpret_cast<char*>(w) - offsetof(uv_tcp_t, io_watcher));
  auto* c = static_cast<UvConn*>(tcp->data);
  UvWorker* worker = c->worker();  // c stays allocated until its close callback, after this event
  if ((events & (POLLIN | POLLERR | POLLHUP)) != 0 && c->reading) ReadSocket(c, events);
  events &= ~(POLLIN | EPOLLRDHUP);
  if (c->closing || events == 0) return;
  worker->stream_io(loop, w, events);
}

void StartReading(UvConn* c) {
  if (c->reading || c->closing) return;
  if (c->eof) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), OnAlloc, OnRead) != 0) return;
  c->reading = true;
  c->tcp.io_watcher.pevents |= kReadEdge;  // registered so by libuv's next poll (uv_read_start queued it)
}

void StopReading(UvConn* c) {
  if (!c->reading) return;
  c->tcp.io_watcher.pevents &= ~kReadEdge;  // first: libuv unregisters a watcher whose events become 0
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  c->reading = false;
}

// The socket may still hold bytes after the reads one event allows: epoll
// is asked to look at it again (a registration's change re-checks its
// readiness and reports it at the next poll), as level-triggered readiness
// would. Until the registration libuv made exists, its making checks too.
void ReadAgainLater(UvConn* c) {
  const uv__io_t& w = c->tcp.io_watcher;
  if (w.events == 0) return;
  epoll_event e{};
  e.events = w.events;
  e.data.fd = w.fd;
  if (epoll_ctl(uv_backend_fd(&c->worker()->loop), EPOLL_CTL_MOD, w.fd, &e) != 0) CloseConn(c);
}

void OnWritten(uv_write_t* req, int status) {
  auto* pw = static_cast<PendingWrite*>(req->data);
  UvConn* c = pw->conn;
  const size_t bytes = pw->bytes;
  delete pw;
  if (c->closing) return;  // canceled by uv_close; c is freed in its close callback
  c->write = nullptr;
  if (status < 0) return CloseConn(c);
  c->worker()->batch.Serve();  // held reads arrived before what this write lets c serve next
  const uint64_t now = MonotonicMs();
  c->http.ConsumeOutput(bytes, now);
  Pump(c, now);
}

// Writes the Connection's pending output: SendGathered (one send or sendmsg)
// while the socket takes all that was gathered, up to kFlushBurstBytes; what is left
// goes to one uv_write of the same views (the Connection keeps gathered bytes
// in place until ConsumeOutput, even while it appends more output). A write
// the socket took only part of ends the burst: the socket is full, and
// uv_write's own first attempt is the one retry (for a reader fast enough to
// have made room); a slow reader then costs one writev that finds no room,
// not two. Returns false when the connection was closed. now_ms: the
// caller's clock reading.
bool Flush(UvConn* c, uint64_t now_ms) {
  uv_stream_t* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
  iovec iov[kMaxIov];
  static_assert(sizeof(uv_buf_t) == sizeof(iovec), "libuv's unix uv_buf_t is an iovec");
  // The synchronous writes bypass libuv (its uv_try_write is a write or
  // writev): SendGathered uses the socket calls. That is what uv_try_write
  // would do here, since Flush runs only with no uv_write queued, and only
  // for a connection not closing (ActOnObservers): its descriptor is open.
  const int fd = c->fd();
  size_t n = 0;
  size_t burst = 0;
  while (c->http.HasOutput() && burst < kFlushBurstBytes) {
    n = c->http.GatherOutput(iov, kMaxIov);
    size_t gathered = 0;
    for (size_t i = 0; i < n; ++i) gathered += iov[i].iov_len;
    const ssize_t r = SendGathered(fd, iov, n, true);
    if (r > 0) {
      burst += static_cast<size_t>(r);
      c->http.ConsumeOutput(static_cast<size_t>(r), now_ms);
      if (static_cast<size_t>(r) < gathered) break;
      continue;
    }
    if (r == 0 || SendWouldBlock(r)) {
      if (c->worker()->counters != nullptr) http::Bump(c->worker()->counters->writes_blocked);
      break;
    }
    CloseConn(c);
    return false;
  }
  if (!c->http.HasOutput()) return true;
  n = c->http.GatherOutput(iov, kMaxIov);
  auto* pw = new PendingWrite;
  pw->conn = c;
  pw->req.data = pw;
  for (size_t i = 0; i < n; ++i) pw->bytes += iov[i].iov_len;
  if (uv_write(&pw->req, stream, reinterpret_cast<uv_buf_t*>(iov), static_cast<unsigned>(n), OnWritten) != 0) {
    delete pw;
    CloseConn(c);
    return false;
  }
  pw->unsent = uv_stream_get_write_queue_size(stream);  // what uv_write's own first attempt left
  c->write = pw;
  c->http.NoteInFlightSent(pw->bytes - pw->unsent);
  return true;
}

// Keeps the connection's node armed no later than the Connection's deadline
// after anything happened to it. A deadline that moved later (the next
// request on a keep-alive connection) leaves the node where it is: the sweep
// then finds it early, re-reads the deadline and arms it again (OnDeadline).
// A deadline gone (0) is left to the sweep as well.
void ArmDeadline(UvConn* c) {
  if (c->closing || c->lingering) return;
  const uint64_t d = c->http.DeadlineMs();
  if (d != 0) c->worker()->timers->ArmNoLater(c, d);
}

void ActOnObservers(UvConn* c, uint64_t now_ms);

// Acts on the Connection's observers after anything happened to it, then
// re-arms its deadline.
void Pump(UvConn* c, uint64_t now_ms) {
  ActOnObservers(c, now_ms);
  ArmDeadline(c);
}

void ActOnObservers(UvConn* c, uint64_t now_ms) {
  if (c->closing || c->lingering) return;
  if (c->write == nullptr && c->http.HasOutput() && !Flush(c, now_ms)) return;
  if (c->http.ShouldClose()) {
    if (c->write == nullptr && !c->http.HasOutput()) return Linger(c);
    if (!c->http.HasOutput()) return CloseConn(c);  // output abandoned (send timeout)
    return StopReading(c);
  }
  if (c->worker()->fast) return CloseConn(c);
  if (!c->http.WantsRead()) return StopReading(c);
  if (!c->worker()->service.AwaitsStorage(*c)) {
    c->storage_wait = c->fed_in_wait = false;
    return StartReading(c);
  }
  // The request waits for the storage (queue room, body budget or its
  // completion). At most one small read (kReadInWaitBytes) is taken
  // meanwhile: the Connection would only buffer the bytes, so once bytes
  // arrive during the wait reading stops, and TCP flow control holds the
  // client back instead of our memory. A client that sends nothing until
  // its answer (one request at a time) keeps its read registered, which
  // spares two epoll_ctl calls per write.
  c->storage_wait = true;
  if (c->fed_in_wait) StopReading(c);
}

void UvWorker::Wake(void* io, http::Connection& conn, uint64_t now_ms) {
  (void)io;
  Pump(static_cast<UvConn*>(static_cast<KvConnState*>(conn.user_data())), now_ms);
}

// ---------------------------------------------------------------- accepting

void StopAccepting(UvWorker* w) {
  for (Listener* l : w->listeners) {
    if (l->active) {
      uv_poll_stop(&l->poll);
      l->active = false;
    }
  }
}

// At the cap it stays (or becomes) paused: a close resumes it. While the
// flood timer runs, that timer resumes it.
void ResumeAccepting(UvWorker* w) {
  if (w->graceful || w->fast || w->flood_paused) return;
  if (Held(w) >= w->max_connections) {
    w->accept_paused = true;
    return;
  }
  w->accept_paused = false;
  for (Listener* l : w->listeners) {
    if (!l->active && l->fd >= 0) {
      if (uv_poll_start(&l->poll, UV_READABLE, OnListenReadable) == 0) l->active = true;
    }
  }
}

void OnAcceptTimer(uv_timer_t* t) { ResumeAccepting(static_cast<UvWorker*>(t->data)); }

void OnFloodTimer(uv_timer_t* t) {
  auto* w = static_cast<UvWorker*>(t->data);
  w->flood_paused = false;
  // An EMFILE pause still running keeps its own timer.
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&w->accept_timer))) ResumeAccepting(w);
}

// Requests this worker answered so far (responses to complete request heads:
// what the latency histogram counts), for the FloodGuard.
uint64_t RequestsAnswered(const UvWorker* w) {
  if (w->counters == nullptr) return 0;
  uint64_t n = 0;
  for (uint64_t b : w->counters->latency_buckets) n += b;
  return n;
}

// At the connection cap with clients waiting to be accepted: closes up to n
// keep-alive connections that have sent nothing for kDrainIdleAfterMs and
// have no request in progress, oldest first (nginx drains its reusable
// connections the same way), so that idle connections cannot lock active
// clients out. Their slots free in the close callbacks, which resume
// accepting. Returns how many it closed.
size_t DrainIdle(UvWorker* w, size_t n) {
  const uint64_t now = MonotonicMs();
  size_t closed = 0;
  for (UvConn* c = w->tail; c != nullptr && closed < n;) {
    UvConn* prev = c->prev;  // CloseConn unlinks c
    if (!c->closing && !c->lingering && IsIdle(c) && now >= c->last_input_ms + kDrainIdleAfterMs) {
      CloseConn(c);
      ++closed;
    }
    c = prev;
  }
  return closed;
}

// DrainIdle for a burst of new clients, logged at most once a second.
void MakeRoom(UvWorker* w) {
  w->drained_idle += DrainIdle(w, kDrainBatch);
  const uint64_t now = MonotonicMs();
  if (w->drained_idle > 0 && now >= w->drain_logged_ms + 1000) {
    KINGX_LOG_INFO("worker %u: at the cap of %zu connections: closed %llu idle ones for new clients",
                   w->ctx.worker_index, w->max_connections, static_cast<unsigned long long>(w->drained_idle));
    w->drained_idle = 0;
    w->drain_logged_ms = now;
  }
}

// True when a client waits in the backlog of one of the listeners.
bool ClientsWaiting(const UvWorker* w) {
  pollfd fds[8];
  nfds_t n = 0;
  for (const Listener* l : w->listeners) {
    if (l->fd >= 0 && n < 8) fds[n++] = pollfd{l->fd, POLLIN, 0};
  }
  return n > 0 && poll(fds, n, 0) > 0;
}

void AdoptSocket(UvWorker* w, int fd, const sockaddr* peer, const Listener& l) {
  const bool admin = l.admin;
  auto* c = new UvConn(w->service, w->limits, w->counters, MonotonicMs());
  c->admin = admin;
  c->http.SetListener(admin ? http::Listener::kAdmin : http::Listener::kMain);
  c->SetPeer(peer);
  c->http.set_user_data(static_cast<KvConnState*>(c));
  c->tcp.data = c;
  c->last_input_ms = MonotonicMs();
  if (uv_tcp_init(&w->loop, &c->tcp) != 0) {
    close(fd);
    delete c;
    return;
  }
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    close(fd);
    c->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), [](uv_handle_t* h) { delete static_cast<UvConn*>(h->data); });
    return;
  }
  // Reads with recv (OnConnIo); libuv's callback serves the rest.
  if (w->stream_io == nullptr) w->stream_io = c->tcp.io_watcher.cb;
  c->tcp.io_watcher.cb = OnConnIo;
  if (!l.tuned) TuneClientSocket(fd, w->ctx.config);
  LinkConn(w, c);
  ArmDeadline(c);  // the first request's header deadline
  StartReading(c);
}

void OnListenReadable(uv_poll_t* p, int status, int) {
  auto* l = static_cast<Listener*>(p->data);
  UvWorker* w = l->worker;
  if (status < 0) return;
  // During a garbage flood, new clients come in at the FloodGuard's pace and
  // the rest wait in the backlog; otherwise up to kAcceptBurst at a time.
  const uint32_t allowed = w->flood.AcceptsAllowed(MonotonicMs(), RequestsAnswered(w));
  if (allowed == 0) {
    StopAccepting(w);
    w->flood_paused = true;
    uv_timer_start(&w->flood_timer, OnFloodTimer, w->flood.MsUntilNextAccept(MonotonicMs()), 0);
    return;
  }
  const int burst = static_cast<int>(std::min<uint32_t>(allowed, kAcceptBurst));
  for (int i = 0; i < burst; ++i) {
    // Parked connections give their descriptors to new clients first.
    while (Held(w) >= w->max_connections && !w->parked.empty()) Unpark(w);
    if (Held(w) >= w->max_connections) {
      // At the cap: make room from idle connections if there are any; the
      // rest waits in the kernel backlog until one closes.
      MakeRoom(w);
      StopAccepting(w);
      w->accept_paused = true;
      return;
    }
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    const int fd = accept4(l->fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        KINGX_LOG_WARN("accept: %s; pausing accepts for %llu ms", strerror(errno),
                       static_cast<unsigned long long>(kAcceptPauseMs));
        StopAccepting(w);
        w->accept_paused = true;
        uv_timer_start(&w->accept_timer, OnAcceptTimer, kAcceptPauseMs, 0);
        return;
      }
      continue;  // ECONNABORTED, EPROTO...: that client is gone, go on
    }
    w->flood.OnAccepted();
    AdoptSocket(w, fd, reinterpret_cast<sockaddr*>(&ss), *l);
  }
}

bool AddListener(UvWorker* w, int fd, bool admin) {
  auto* l = new Listener;
  l->worker = w;
  l->fd = fd;
  l->admin = admin;
  l->tuned = TuneListenSocket(fd, w->ctx.config);
  l->poll.data = l;
  if (uv_poll_init_socket(&w->loop, &l->poll, fd) != 0) {
    delete l;
    return false;
  }
  w->listeners.push_back(l);
  if (uv_poll_start(&l->poll, UV_READABLE, OnListenReadable) != 0) return false;
  l->active = true;
  return true;
}

// Stops accepting for good (graceful stop): the listen fds are closed once
// their poll handles are (the handles do not own them).
void CloseListeners(UvWorker* w) {
  for (Listener* l : w->listeners) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&l->poll))) continue;
    l->active = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), [](uv_handle_t* h) {
      auto* lst = static_cast<Listener*>(h->data);
      if (lst->fd >= 0) close(lst->fd);
      lst->fd = -1;
    });
  }
}

// ---------------------------------------------------------------- completions, retries

void OnCompletionReadable(uv_poll_t* p, int status, int) {
  auto* w = static_cast<UvWorker*>(p->data);
  if (status < 0) return;
  w->batch.Serve();  // held reads arrived before what the completions let connections serve next
  // One read resets the counter (the eventfd is not a semaphore): a second
  // one would only fail with EAGAIN.
  uint64_t counter;
  (void)!read(w->ctx.completion_fd, &counter, sizeof counter);
  const uint64_t now = MonotonicMs();
  w->ctx.DrainCompletions([w, now](const Completion& c) { w->service.OnCompletion(c, now); });
  w->service.Poke(now);  // a completion freed queue room
  MaybeFinishStop(w);
}

void OnRetryTimer(uv_timer_t* t) {
  auto* w = static_cast<UvWorker*>(t->data);
  w->service.Poke(MonotonicMs());
}

// Runs once per loop iteration, right after the poll phase: serve the
// phase's last held reads, and keep the retry timer going while writes wait
// for queue room (or uploads for body budget room that was released);
// uploads waiting for budget room nobody released wake nothing, and their
// give-up comes with the sweep (NextExpiryMs).
void OnCheck(uv_check_t* h) {
  WriteQueue::FlushWakes();  // the writes of this poll phase: the writer takes them together
  auto* w = static_cast<UvWorker*>(h->data);
  w->batch.Serve();
  const bool waiting = w->service.NextRetryMs() != 0;
  const bool active = uv_is_active(reinterpret_cast<uv_handle_t*>(&w->retry_timer)) != 0;
  if (waiting && !active && !w->stopped) {
    uv_timer_start(&w->retry_timer, OnRetryTimer, kBusyRetryMs, kBusyRetryMs);
  } else if (!waiting && active) {
    uv_timer_stop(&w->retry_timer);
  }
}

// ---------------------------------------------------------------- access log room

// While the access log holds lines for a full pipe (a log shipper that
// stalled), the loop waits for room in it and writes them as soon as the
// reader takes some: a resumed reader catches up at once instead of a pipe-
// full per second. The handle exists only while lines are held, and is
// closed (its epoll registration removed at once, by uv_close) before the
// log's descriptor can change (a reopen), so it never watches a descriptor
// number that was closed and reused.
void WatchLogRoom(UvWorker* w);

void OnLogRoomClosed(uv_handle_t* h) { static_cast<UvWorker*>(h->data)->log_room_fd = -1; }

void StopWatchingLogRoom(UvWorker* w) {
  auto* h = reinterpret_cast<uv_handle_t*>(&w->log_room);
  if (w->log_room_fd >= 0 && !uv_is_closing(h)) uv_close(h, OnLogRoomClosed);
}

void OnLogRoom(uv_poll_t* p, int, int) {
  auto* w = static_cast<UvWorker*>(p->data);
  // Room: writes until the pipe is full again. An error (the reader left;
  // libuv stops the handle): the write fails and drops the held lines.
  w->ctx.access_log->Flush();
  WatchLogRoom(w);
}

void WatchLogRoom(UvWorker* w) {
  if (w->ctx.access_log == nullptr || w->stopped) return;
  const int fd = w->ctx.access_log->RoomWaitFd();
  if (w->log_room_fd >= 0) {
    if (fd != w->log_room_fd) StopWatchingLogRoom(w);  // written (or reopened): OnLogRoomClosed
    return;
  }
  if (fd < 0 || uv_poll_init(&w->loop, &w->log_room, fd) != 0) return;  // FlushIfDue stays the fallback
  w->log_room.data = w;
  w->log_room_fd = fd;
  if (uv_poll_start(&w->log_room, UV_WRITABLE, OnLogRoom) != 0) StopWatchingLogRoom(w);
}

// ---------------------------------------------------------------- sweep, stop

void CloseAllHandles(UvWorker* w) {
  if (w->stopped) return;
  w->stopped = true;
  uv_walk(
      &w->loop,
      [](uv_handle_t* h, void*) {
        if (uv_is_closing(h)) return;
        if (h->type == UV_TCP) reinterpret_cast<uv_stream_t*>(h)->io_watcher.pevents &= ~kReadEdge;  // as CloseConn
        uv_close(h, nullptr);
      },
      nullptr);
}

// Finishes a stop once no connection is left: closes every handle so that
// uv_run returns.
void MaybeFinishStop(UvWorker* w) {
  if (!(w->graceful || w->fast) || w->stopped) return;
  if (w->conn_count > 0) return;
  // Listener fds are closed by their own close callbacks (CloseListeners).
  CloseListeners(w);
  CloseAllHandles(w);
}

// A connection's node came due: the end of its linger, or a time at or
// before the Connection's deadline (ArmDeadline's lazy re-arm).
void OnDeadline(UvConn* c, uint64_t now_ms) {
  if (c->lingering) return CloseConn(c);
  const uint64_t d = c->http.DeadlineMs();
  if (d == 0) return;  // no deadline now: the next Pump arms the next one
  if (d > now_ms) {
    c->worker()->timers->Arm(c, d);  // it moved later since it was armed
    return;
  }
  if (c->write != nullptr) {
    // The write in flight reports only its end (OnWritten): a slow reader
    // that takes a large value over longer than the send timeout is making
    // progress all along. What libuv still holds of it tells: if it shrank
    // since the last look, the send deadline counts from now. So a peer is
    // closed after one to two send timeouts without reading a byte.
    if (NoteWriteProgress(c)) {
      c->http.NoteSendProgress(now_ms);
      if (c->http.DeadlineMs() > now_ms) return ArmDeadline(c);  // else another deadline is due
    }
  }
  c->http.OnTimer(now_ms);
  Pump(c, now_ms);
}

// A graceful stop past its grace: idle keep-alive connections are closed
// (FIN first: a request racing with the close is not reset), and past the
// hard limit every connection that is not lingering. The walk over every
// connection happens only then, on the stop's faster sweep.
void DrainOnStop(UvWorker* w, uint64_t now_ms) {
  if (!w->graceful || now_ms < w->drain_start_ms + kDrainGraceMs) return;
  const bool hard = now_ms >= w->drain_start_ms + kDrainHardMs;
  for (UvConn* c = w->head; c != nullptr;) {
    UvConn* next = c->next;  // c may be unlinked below
    if (!c->lingering) {
      if (hard) {
        CloseConn(c);
      } else if (IsIdle(c)) {
        Linger(c);
      }
    }
    c = next;
  }
}

void OnSweep(uv_timer_t* t) {
  auto* w = static_cast<UvWorker*>(t->data);
  const uint64_t now = MonotonicMs();
  DrainOnStop(w, now);
  // Only the connections whose (armed) deadline passed are visited.
  w->timers->Expire(now, [now](TimerNode* n) { OnDeadline(static_cast<UvConn*>(n), now); });
  // Queued writes that waited --storage-timeout-ms (within one sweep period).
  if (const uint64_t expiry = w->service.NextExpiryMs(); expiry != 0 && expiry <= now) w->service.Poke(now);
  // Paused at the connection cap while clients wait: idle connections may
  // have become old enough to make room for them.
  ExpireParked(w, now, false);
  if (w->accept_paused && !w->graceful && !w->fast && Held(w) >= w->max_connections && ClientsWaiting(w)) {
    MakeRoom(w);
  }
  if (w->ctx.access_log != nullptr) w->ctx.access_log->FlushIfDue();
  WatchLogRoom(w);
  // Segments compaction deleted: unmap them now, not at the next GET, so
  // that their space comes back even while this worker serves no reads.
  if (w->ctx.reader != nullptr) w->ctx.reader->ReleaseDeletedSegments();
  MaybeFinishStop(w);
}

void BeginGracefulStop(UvWorker* w) {
  if (w->graceful || w->fast) return;
  KINGX_LOG_INFO("worker %u: graceful stop (%zu connections open)", w->ctx.worker_index, w->conn_count);
  w->graceful = true;
  w->drain_start_ms = MonotonicMs();
  w->service.SetDraining();
  uv_timer_stop(&w->accept_timer);
  uv_timer_stop(&w->flood_timer);
  CloseListeners(w);
  ExpireParked(w, w->drain_start_ms, true);
  // Make the sweep frequent enough to honour the grace period.
  uv_timer_start(&w->sweep_timer, OnSweep, 100, 100);
  MaybeFinishStop(w);
}

void BeginFastStop(UvWorker* w) {
  if (w->fast) return;
  KINGX_LOG_INFO("worker %u: fast stop (%zu connections open)", w->ctx.worker_index, w->conn_count);
  w->fast = true;
  w->service.SetDraining();
  CloseListeners(w);
  ExpireParked(w, MonotonicMs(), true);
  for (UvConn* c = w->head; c != nullptr;) {
    UvConn* next = c->next;
    CloseConn(c);
    c = next;
  }
  MaybeFinishStop(w);
}

void OnSignal(uv_signal_t* s, int signum) {
  auto* w = static_cast<UvWorker*>(s->data);
  w->batch.Serve();
  switch (signum) {
    case SIGQUIT:
      BeginGracefulStop(w);
      break;
    case SIGTERM:
    case SIGINT:
      BeginFastStop(w);
      break;
    case SIGUSR1: {
      if (w->ctx.access_log != nullptr) {
        StopWatchingLogRoom(w);  // before the descriptor it watches is closed
        engine::Status st = w->ctx.access_log->Reopen();
        if (!st.ok()) KINGX_LOG_ERROR("reopening the access log: %s", st.ToString().c_str());
      }
      engine::Status st = ReopenErrorLog();
      if (!st.ok()) KINGX_LOG_ERROR("reopening the error log: %s", st.ToString().c_str());
      break;
    }
    default:  // kMasterOnlySignals
      OnMasterOnlySignal(w->ctx.config, signum);
      break;
  }
}

uint64_t SweepIntervalMs(const http::Limits& l) {
  uint64_t shortest = std::min({l.header_timeout_ms, l.body_timeout_ms, l.keepalive_timeout_ms, l.send_timeout_ms});
  return std::clamp<uint64_t>(shortest / 8, 5, 500);
}

}  // namespace

int RunUvWorker(WorkerContext& ctx) {
  if (ctx.completion_fd < 0 || ctx.queue == nullptr || ctx.reader == nullptr || ctx.shm == nullptr) {
    KINGX_LOG_ERROR("worker %u: incomplete worker context", ctx.worker_index);
    return 2;
  }
  auto w = std::make_unique<UvWorker>(ctx);
  w->counters = ctx.Counters<http::Counters>();
  ctx.MarkCounterStripe();  // the loop thread counts in stripe 0 from its first connection
  w->max_connections = ConnectionCap(ctx.config);
  w->park_max = std::min(kFloodParkMax, w->max_connections / 8);
  if (w->max_connections < ctx.config.max_connections) {
    KINGX_LOG_WARN("worker %u: at most %zu connections (--max-connections %u does not fit the descriptor "
                   "limit, RLIMIT_NOFILE, with room kept for the storage)",
                   ctx.worker_index, w->max_connections, ctx.config.max_connections);
  }
  if (int r = uv_loop_init(&w->loop); r != 0) {
    KINGX_LOG_ERROR("worker %u: uv_loop_init: %s", ctx.worker_index, uv_strerror(r));
    return 2;
  }
  w->loop.data = w.get();  // UvConn::worker()
  int failed = 0;
  for (int fd : ctx.listen_fds) failed += !AddListener(w.get(), fd, false);
  if (ctx.admin_listen_fd >= 0) failed += !AddListener(w.get(), ctx.admin_listen_fd, true);
  w->completion_poll.data = w.get();
  failed += uv_poll_init(&w->loop, &w->completion_poll, ctx.completion_fd) != 0 ||
            uv_poll_start(&w->completion_poll, UV_READABLE, OnCompletionReadable) != 0;
  w->sweep_ms = SweepIntervalMs(w->limits);
  w->timers = std::make_unique<TimerWheel>(w->sweep_ms, MonotonicMs());
  for (uv_timer_t* t : {&w->sweep_timer, &w->retry_timer, &w->accept_timer, &w->flood_timer}) {
    uv_timer_init(&w->loop, t);
    t->data = w.get();
  }
  uv_timer_start(&w->sweep_timer, OnSweep, w->sweep_ms, w->sweep_ms);
  uv_check_init(&w->loop, &w->check);
  w->check.data = w.get();
  uv_check_start(&w->check, OnCheck);
  // Before the loop blocks, what the timers and other phases enqueued.
  uv_prepare_init(&w->loop, &w->prepare);
  uv_prepare_start(&w->prepare, [](uv_prepare_t*) { WriteQueue::FlushWakes(); });
  // Under --sync always each batch waits for an fdatasync of its own, so a
  // burst split at its first write waits for one more: defer. Otherwise a
  // batch is answered once written, and waking the writer at the first
  // write lets it work beside this loop.
  if (ctx.config.sync == engine::SyncMode::kAlways) WriteQueue::DeferWakes(true);
  const int sigs[6] = {SIGQUIT, SIGTERM, SIGINT, SIGUSR1, kMasterOnlySignals[0], kMasterOnlySignals[1]};
  static_assert(std::size(kMasterOnlySignals) == 2, "sigs and signals hold 4 + kMasterOnlySignals");
  for (int i = 0; i < 6; ++i) {
    uv_signal_init(&w->loop, &w->signals[i]);
    w->signals[i].data = w.get();
    failed += uv_signal_start(&w->signals[i], OnSignal, sigs[i]) != 0;
  }
  if (failed != 0) {
    KINGX_LOG_ERROR("worker %u: could not set up the event loop (%d handles failed)", ctx.worker_index, failed);
    CloseAllHandles(w.get());
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    for (Listener* l : w->listeners) delete l;
    return 2;
  }
  KINGX_LOG_INFO("worker %u (slot %u) serving on %zu listener(s), event model", ctx.worker_index, ctx.slot,
                 w->listeners.size());
  uv_run(&w->loop, UV_RUN_DEFAULT);
  // A stop closed every handle; run once more in case close callbacks remain.
  uv_run(&w->loop, UV_RUN_DEFAULT);
  WriteQueue::DeferWakes(false);
  if (uv_loop_close(&w->loop) != 0) KINGX_LOG_WARN("worker %u: loop closed with handles open", ctx.worker_index);
  for (Listener* l : w->listeners) delete l;
  for (const ParkedFd& p : w->parked) CloseParkedSocket(p.fd, w->read_buf);
  if (ctx.access_log != nullptr) ctx.access_log->Flush();
  KINGX_LOG_INFO("worker %u: stopped", ctx.worker_index);
  return 0;
}

}  // namespace kingx
