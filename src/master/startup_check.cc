// Start-up checks for `kingx -t` and the open-file limit (startup_check.h).
#include "src/master/startup_check.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/env.h"
#include "src/conf/log_file.h"
#include "src/master/data_dir.h"
#include "src/master/master_descriptors.h"
#include "src/worker/serve_options.h"

namespace kingx {
namespace {

std::string Errno(int err) { return std::strerror(err); }

std::string Dirname(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Whether a file can be created in `dir` (a real attempt: as root, mode bits
// say little, and a read-only mount or /proc says no only when asked).
// Returns "" or why not. The probe is removed at once.
std::string CanCreateIn(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return Errno(errno);
  if (!S_ISDIR(st.st_mode)) return "not a directory";
  const std::string probe = dir + "/.kingx-t-probe." + std::to_string(getpid());
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Errno(errno);
  close(fd);
  unlink(probe.c_str());
  return "";
}

// The pid that holds a flock on the file (device, inode), from /proc/locks;
// 0 when none is found.
pid_t FlockHolder(dev_t dev, ino_t ino) {
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" ("->" marks waiters)
    std::istringstream in(line);
    std::string id, type, mode, rw, pid_text, where;
    in >> id >> type;
    if (type == "->") in >> type;
    in >> mode >> rw >> pid_text >> where;
    if (type != "FLOCK") continue;
    unsigned maj = 0, min = 0;
    unsigned long long inode = 0;
    if (std::sscanf(where.c_str(), "%x:%x:%llu", &maj, &min, &inode) != 3) continue;
    if (maj == major(dev) && min == minor(dev) && inode == ino) return static_cast<pid_t>(std::atol(pid_text.c_str()));
  }
  return 0;
}

// Whether `pid` is a kingx master (or single process) started with `args`.
bool IsKingxStartedWith(pid_t pid, const std::vector<std::string>& args) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream comm_file(proc + "/comm");
  std::string comm;
  std::getline(comm_file, comm);
  if (comm != "kingx-master" && comm != "kingx-single") return false;
  std::ifstream cmdline(proc + "/cmdline", std::ios::binary);
  std::vector<std::string> theirs;
  for (std::string arg; std::getline(cmdline, arg, '\0');) theirs.push_back(arg);
  if (theirs.empty()) return false;
  theirs.erase(theirs.begin());  // argv[0]: the path it was started by may differ
  return theirs == args;
}

pid_t PidFromFile(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

void CheckLogFile(const char* what, const std::string& path, StartupReport* r) {
  if (path.empty()) return;
  // A FIFO is not opened: an open and a close would end its reader's input
  // (the reader sees its only writer leave) before the start it checks for.
  // Whether it has a reader is the start's to see.
  if (IsFifo(path)) {
    if (access(path.c_str(), W_OK) != 0) {
      r->errors.push_back(std::string(what) + " " + path + ": " + Errno(errno));
    } else {
      r->warnings.push_back(std::string(what) + " " + path +
                            " is a FIFO: not opened by -t (its reader would see end of input); a start needs its "
                            "reader running");
    }
    return;
  }
  LogFd fd;
  if (engine::Status s = OpenLogFile(path, what, &fd); !s.ok()) r->errors.emplace_back(s.message());
}

// Tries the flock a start would take on path (opened O_RDONLY, or O_RDWR |
// O_CREAT when create), and lets it go at once. Returns true when a start
// would get it; otherwise false with *err (errno; EWOULDBLOCK = held) and
// *holder (0 when unknown).
bool TryLock(const std::string& path, bool create, int op, int* err, pid_t* holder) {
  *holder = 0;
  const int fd = create ? open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600) : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return false;
  }
  if (flock(fd, op | LOCK_NB) == 0) {
    close(fd);  // free: a start would take it
    return true;
  }
  *err = errno;
  struct stat lock_st;
  if (fstat(fd, &lock_st) == 0) *holder = FlockHolder(lock_st.st_dev, lock_st.st_ino);
  close(fd);
  return false;
}

void CheckDataDir(const Config& c, const std::vector<std::string>& args, StartupReport* r) {
  const std::string& dir = c.data_dir;
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT && c.read_only) {
      r->errors.emplace_back(DataDirRule(engine::PosixEnv(), dir, c.read_only).message());  // no database there
      return;
    }
    if (errno != ENOENT) {
      r->errors.push_back(std::string(c.read_only ? "--read-only: " : "") + "data directory " + dir + ": " +
                          Errno(errno));
      return;
    }
    // A start creates it (one level, as mkdir): its parent must take it.
    const std::string why = CanCreateIn(Dirname(dir));
    if (!why.empty()) {
      r->errors.push_back("data directory " + dir + " does not exist and cannot be created in " + Dirname(dir) +
                          ": " + why);
    }
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    r->errors.push_back("data directory " + dir + " is not a directory");
    return;
  }
  if (c.read_only) {
    if (access(dir.c_str(), R_OK | X_OK) != 0) {
      r->errors.push_back("--read-only: data directory " + dir + " is not readable: " + Errno(errno));
      return;
    }
    // A start makes the sorted key view's scratch directory there (HoldDataDir).
    const std::string tmp = ReadOnlyScratchParent();
    if (const std::string why = CanCreateIn(tmp); !why.empty()) {
      r->errors.push_back("--read-only: no scratch directory for the sorted key view can be made in " + tmp +
                          " ($TMPDIR, else /tmp): " + why);
    }
  } else if (const std::string why = CanCreateIn(dir); !why.empty()) {
    r->errors.push_back("data directory " + dir + " is not writable: " + why);
    return;
  }
  // What it holds: the rule a start applies first (no LOCK is made in a
  // directory it refuses).
  if (engine::Status s = DataDirRule(engine::PosixEnv(), dir, c.read_only); !s.ok()) {
    r->errors.emplace_back(s.message());
    return;
  }
  // The locks a start takes (engine/data_dir_lock.h): read-write, LOCK_EX on
  // LOCK (created) and on the directory; read-only, LOCK_SH on the directory
  // and on LOCK when it exists. Checking creates nothing under --read-only.
  const std::string lock_path = dir + "/LOCK";
  const int op = c.read_only ? LOCK_SH : LOCK_EX;
  struct Want {
    std::string path;
    bool create;
  };
  std::vector<Want> wants;
  if (c.read_only) {
    wants.push_back({dir, false});
    if (access(lock_path.c_str(), F_OK) == 0) wants.push_back({lock_path, false});
  } else {
    wants.push_back({lock_path, true});
    wants.push_back({dir, false});
  }
  for (const Want& w : wants) {
    int err = 0;
    pid_t holder = 0;
    if (TryLock(w.path, w.create, op, &err, &holder)) continue;
    if (err != EWOULDBLOCK) {
      r->errors.push_back("cannot lock " + w.path + ": " + Errno(err));
      return;
    }
    const pid_t running = c.pid_file.empty() ? 0 : PidFromFile(c.pid_file);
    if (holder != 0 && (holder == running || IsKingxStartedWith(holder, args))) {
      // The reload case: this configuration's own running server holds it.
      return;
    }
    r->errors.push_back("data directory " + dir + " is in use (" + (w.path == dir ? "the directory" : "its LOCK") +
                        " is held by " + (holder != 0 ? "process " + std::to_string(holder) : std::string("another process")) +
                        (c.read_only ? ", read-write" : "") + "): " +
                        (c.read_only ? "a read-only kingx cannot share it with a writer"
                                     : "a second kingx cannot serve it"));
    return;
  }
}

void CheckPidFile(const Config& c, StartupReport* r) {
  if (c.pid_file.empty()) return;
  const std::string dir = Dirname(c.pid_file);
  const std::string why = CanCreateIn(dir);
  if (!why.empty()) r->errors.push_back("cannot write pid file " + c.pid_file + " in " + dir + ": " + why);
}

std::string FileLimitShortfall(const Config& c, rlim_t limit, const char* which) {
  if (limit == RLIM_INFINITY) return "";
  const uint32_t cap = ConnectionCapAt(c, limit);
  if (cap >= c.max_connections) return "";
  const uint64_t pool = PoolDoorbellShareAt(c, limit);
  return "max_connections " + std::to_string(c.max_connections) + " (per worker) exceeds what the " + which +
         "open file limit " + std::to_string(static_cast<unsigned long long>(limit)) +
         " leaves a worker: it keeps " + std::to_string(KeptDescriptors(c, limit)) +
         " descriptors for segment files, spill files and its own" +
         (c.single_process ? std::string(" (the writer thread's among them)") : std::string()) +
         (pool != 0 ? " and " + std::to_string(pool) + " for its pool threads" : std::string()) +
         ", so it accepts at most " + std::to_string(cap) +
         " connections: raise the limit (ulimit -n, systemd LimitNOFILE=) or lower max_connections";
}

// A worker's minimum (DescriptorLimitTooLow), then the master's own need
// (master_descriptors.h) when it holds `master_open` descriptors now.
std::string LimitTooLow(const Config& c, uint64_t limit, const char* what, uint64_t master_open) {
  if (std::string e = DescriptorLimitTooLow(c, limit, what); !e.empty()) return e;
  if (c.single_process) return "";  // one process: the worker's reserve covers it
  return MasterLimitShortfall(c, MasterDescriptorsAtStart(c, master_open), master_open, limit, what);
}

}  // namespace

StartupReport CheckStartup(const Config& config, const std::vector<std::string>& args) {
  StartupReport r;
  CheckLogFile(kErrorLogWhat, config.error_log, &r);
  CheckLogFile(kAccessLogWhat, config.access_log, &r);
  CheckDataDir(config, args, &r);
  CheckPidFile(config, &r);
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_max != RLIM_INFINITY) {
    // A start raises the soft limit up to the hard one: only the hard one can fall short.
    // What this process holds stands for what the master would inherit, plus
    // the logs it opens before it checks (the error log, or its own
    // description of stderr: at most one; the access log).
    const uint64_t master_open = CountOpenDescriptors(lim.rlim_cur) + 1 + (config.access_log.empty() ? 0 : 1);
    if (std::string e = LimitTooLow(config, lim.rlim_max, "hard open file limit", master_open); !e.empty()) {
      r.errors.push_back(std::move(e));
    } else if (std::string w = FileLimitShortfall(config, lim.rlim_max, "hard "); !w.empty()) {
      r.warnings.push_back(std::move(w));
    }
  }
  return r;
}

engine::Status RaiseOpenFileLimit(const Config& config, std::string* warning) {
  warning->clear();
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    *warning = "cannot read the open file limit: " + Errno(errno);
    return engine::Status::OK();
  }
  // All the way to the hard limit: a worker keeps a share of its descriptors
  // for its segment files and spill files (ReservedDescriptors), which a
  // limit of max_connections plus a few would take from its connections.
  if (lim.rlim_cur != lim.rlim_max) {
    struct rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur == RLIM_INFINITY) return engine::Status::OK();
  // Called by the master with its logs open: what it holds now is counted.
  const uint64_t open_now = CountOpenDescriptors(lim.rlim_cur);
  if (std::string e = LimitTooLow(config, lim.rlim_cur, "open file limit", open_now); !e.empty()) {
    return engine::Status::InvalidArgument(e);
  }
  *warning = FileLimitShortfall(config, lim.rlim_cur, "");
  return engine::Status::OK();
}

}  // namespace kingx
