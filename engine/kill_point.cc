#include "engine/kill_point.h"

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kingx::engine {
namespace {

// An armed kill or fail point: "[process/]name[@path_part][:N[+]]". Kill
// points use name and nth only.
struct Armed {
  std::string process;    // empty: any process
  std::string name;
  std::string path_part;  // empty: any file
  std::optional<uint64_t> bad_offset;  // "#OFFSET": only hits whose byte range holds it
  uint64_t nth = 1;
  bool from_nth_on = false;
  std::atomic<uint64_t> hits{0};
};

// Every Armed ever made, kept until exit: a concurrent hit may still read a
// replaced one.
std::mutex g_all_mu;
std::vector<std::unique_ptr<Armed>>* g_all = new std::vector<std::unique_ptr<Armed>>();

// The one parser of both kinds of spec. nullptr for an empty or malformed
// spec (a count that is not a positive number, an empty name), so a typo
// never fails or kills where nobody asked.
Armed* Parse(std::string_view spec) {
  if (spec.empty()) return nullptr;
  auto a = std::make_unique<Armed>();
  if (size_t colon = spec.rfind(':'); colon != std::string_view::npos) {
    std::string_view count = spec.substr(colon + 1);
    spec = spec.substr(0, colon);
    if (!count.empty() && count.back() == '+') {
      a->from_nth_on = true;
      count.remove_suffix(1);
    }
    auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), a->nth);
    if (ec != std::errc() || end != count.data() + count.size() || a->nth == 0) return nullptr;
  }
  if (size_t at = spec.find('@'); at != std::string_view::npos) {
    std::string_view part = spec.substr(at + 1);
    if (size_t hash = part.rfind('#'); hash != std::string_view::npos) {
      std::string_view digits = part.substr(hash + 1);
      uint64_t off = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), off);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return nullptr;
      a->bad_offset = off;
      part = part.substr(0, hash);
    }
    a->path_part = std::string(part);
    spec = spec.substr(0, at);
  }
  if (size_t slash = spec.find('/'); slash != std::string_view::npos) {
    a->process = std::string(spec.substr(0, slash));
    spec = spec.substr(slash + 1);
  }
  if (spec.empty()) return nullptr;
  a->name = std::string(spec);
  std::lock_guard lock(g_all_mu);
  g_all->push_back(std::move(a));
  return g_all->back().get();
}

// This process's name for the process filter; set before the process
// starts threads (SetFailPointProcess), read by every hit.
std::string* g_process = new std::string();

// "part" anywhere in the path; "part$" at its end.
bool PathMatches(std::string_view part, std::string_view path) {
  if (!part.empty() && part.back() == '$') return path.ends_with(part.substr(0, part.size() - 1));
  return path.find(part) != std::string_view::npos;
}

// range: the hit's bytes [first, second) when the point has a range.
bool Counts(Armed& a, std::string_view name, std::string_view path,
            std::optional<std::pair<uint64_t, uint64_t>> range = std::nullopt) {
  if (a.name != name) return false;
  if (a.bad_offset.has_value() &&
      (!range.has_value() || *a.bad_offset < range->first || *a.bad_offset >= range->second))
    return false;
  if (!a.process.empty() && a.process != *g_process) return false;
  if (!PathMatches(a.path_part, path)) return false;
  const uint64_t hit = a.hits.fetch_add(1, std::memory_order_relaxed) + 1;
  return a.from_nth_on ? hit >= a.nth : hit == a.nth;
}

// One armed spec of one kind: nullptr = disarmed. Set once from the
// environment variable (or by Arm*, which wins over it); the hot path is one
// acquire load.
struct Slot {
  constexpr explicit Slot(const char* env_variable) : variable(env_variable) {}
  const char* const variable;
  std::atomic<Armed*> armed{nullptr};
  std::once_flag env_once;

  Armed* Load() {
    std::call_once(env_once, [this] {
      if (const char* spec = std::getenv(variable)) armed.store(Parse(spec), std::memory_order_release);
    });
    return armed.load(std::memory_order_acquire);
  }
  Armed* Arm(std::string_view spec) {
    std::call_once(env_once, [] {});
    Armed* a = Parse(spec);
    armed.store(a, std::memory_order_release);
    return a;
  }
};

Slot g_kill{"KINGX_KILL_POINT"};
Slot g_fail{"KINGX_FAIL_POINT"};

// KINGX_FAIL_POINT_WHILE's path (empty: none), read once per process.
const std::string& WhilePath() {
  static const std::string* path = [] {
    const char* v = std::getenv("KINGX_FAIL_POINT_WHILE");
    return new std::string(v == nullptr ? "" : v);
  }();
  return *path;
}

}  // namespace

void KillPointHit(std::string_view name) {
  Armed* a = g_kill.Load();
  if (a != nullptr && Counts(*a, name, {})) _exit(137);
}

void ArmKillPoint(std::string_view spec) { g_kill.Arm(spec); }

namespace {

bool WhileHolds() {
  const std::string& while_path = WhilePath();
  return while_path.empty() || access(while_path.c_str(), F_OK) == 0;
}

}  // namespace

bool FailPointHit(std::string_view name, std::string_view path) {
  Armed* a = g_fail.Load();
  return a != nullptr && Counts(*a, name, path) && WhileHolds();
}

std::optional<uint64_t> FailPointHitRange(std::string_view name, std::string_view path, uint64_t offset,
                                          uint64_t n) {
  Armed* a = g_fail.Load();
  if (a == nullptr || !Counts(*a, name, path, std::make_pair(offset, offset + n)) || !WhileHolds())
    return std::nullopt;
  return a->bad_offset.value_or(offset);
}

bool ArmFailPoint(std::string_view spec) { return g_fail.Arm(spec) != nullptr || spec.empty(); }

void SetFailPointProcess(std::string_view name) { g_process->assign(name); }

}  // namespace kingx::engine
