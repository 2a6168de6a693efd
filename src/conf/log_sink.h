// Where error-log lines go, and how one line is written there without ever
// waiting: the error log's descriptor and its write method.
//
// A log file kingx opens itself (src/conf/log_file.h) is non-blocking and
// written with write(2). stderr (the default error log: a terminal, a pipe to
// a log shipper, journald's stream socket, a file) is the user's: its open
// file description is shared with the shell or the service manager, so its
// flags are never changed (O_NONBLOCK on it would make the user's terminal
// non-blocking too). Instead OpenStderrSink finds, once, a way to write to it
// that cannot wait:
//   - a regular file (or a block device): fd 2 itself, write(2) (a write to
//     a file never waits for a reader);
//   - a socket (journald): fd 2 itself, send(2) with MSG_DONTWAIT, a per-call
//     flag that leaves the description alone;
//   - a terminal, a pipe or a FIFO, /dev/null: a second open of the same
//     object through /proc/self/fd/2 with O_NONBLOCK (and O_NOCTTY), a new
//     open file description whose flags are kingx's own; a terminal stopped
//     by XOFF (Ctrl-S) or a pipe whose reader stalls then refuses the line
//     (EAGAIN) instead of stopping the process;
//   - when that open fails (no /proc, a terminal kingx may not open): fd 2,
//     written only when poll(2) says it has room. That is best effort: a
//     terminal with less room than the line, or another process filling
//     the pipe between the poll and the write, can still make that one
//     write wait.
//
// A line refused for want of room is the caller's to drop and count
// (src/conf/log.h). Lines are at most PIPE_BUF bytes (log.h), so a write to a
// pipe, a FIFO or a local stream socket is all of the line or nothing, and
// lines of several processes sharing one never mix.
//
// Any thread. OpenStderrSink: fstat(2), at most one open(2); the descriptor
// it opens (CLOEXEC) is the caller's. WriteToSink: one write/send (and one
// poll in the fallback); no allocation.
#pragma once

#include <cstdint>
#include <string_view>

namespace kingx {

enum class SinkWrite : uint8_t {
  kWrite,      // write(2): the descriptor is non-blocking or cannot wait
  kSend,       // send(2) with MSG_DONTWAIT | MSG_NOSIGNAL: a socket
  kPollFirst,  // poll(2) for room, then write(2): stderr that could not be reopened
};

struct LogSink {
  int fd = 2;
  SinkWrite how = SinkWrite::kPollFirst;
  // Whether fd was opened here (and is closed by its owner).
  bool owned() const { return fd != 2; }
};

// How to write to this process's stderr without waiting (see above).
LogSink OpenStderrSink();

// Writes `line` with one call. True only when all of it was written; false
// when the sink has no room (the line is dropped) or on an error.
bool WriteToSink(const LogSink& sink, std::string_view line);

}  // namespace kingx
