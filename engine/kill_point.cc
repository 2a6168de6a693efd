#include "engine/kill_point.h"

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>
#include <memory>

namespace kingx::engine {
namespace {

struct Armed {
  std::string name;
  uint64_t nth = 1;
  std::atomic<uint64_t> hits{0};
};

// nullptr = disarmed. Set once from the environment (or by ArmKillPoint);
// the hot path is one acquire load.
std::atomic<Armed*> g_armed{nullptr};
std::once_flag g_env_once;
// Every Armed ever made, kept until exit: a concurrent hit may still read a
// replaced one.
std::mutex g_all_mu;
std::vector<std::unique_ptr<Armed>>* g_all = new std::vector<std::unique_ptr<Armed>>();

Armed* Parse(std::string_view spec) {
  if (spec.empty()) return nullptr;
  auto* a = new Armed();
  {
    std::lock_guard lock(g_all_mu);
    g_all->emplace_back(a);
  }
  size_t colon = spec.rfind(':');
  uint64_t n = 0;
  if (colon != std::string_view::npos) {
    std::string_view digits = spec.substr(colon + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec == std::errc() && end == digits.data() + digits.size() && n > 0) {
      a->nth = n;
      spec = spec.substr(0, colon);
    }
  }
  a->name = std::string(spec);
  return a;
}

void LoadFromEnvironment() {
  const char* spec = std::getenv("KINGX_KILL_POINT");
  if (spec != nullptr && g_armed.load(std::memory_order_acquire) == nullptr)
    g_armed.store(Parse(spec), std::memory_order_release);
}

}  // namespace

void KillPointHit(std::string_view name) {
  std::call_once(g_env_once, LoadFromEnvironment);
  Armed* a = g_armed.load(std::memory_order_acquire);
  if (a == nullptr || a->name != name) return;
  if (a->hits.fetch_add(1, std::memory_order_relaxed) + 1 == a->nth) _exit(137);
}

void ArmKillPoint(std::string_view spec) {
  std::call_once(g_env_once, [] {});  // the explicit arming wins over the environment
  g_armed.store(Parse(spec), std::memory_order_release);
}

namespace {

struct FailArmed {
  std::string name;
  std::string path_part;  // empty: any file
  uint64_t nth = 1;
  bool from_nth_on = false;
  std::atomic<uint64_t> hits{0};
};

// nullptr = disarmed. Set once from the environment (or by ArmFailPoint).
std::atomic<FailArmed*> g_fail{nullptr};
std::once_flag g_fail_once;
// Every FailArmed ever made, kept until exit: a concurrent hit may still read
// a replaced one (under g_all_mu).
std::vector<std::unique_ptr<FailArmed>>* g_fail_all = new std::vector<std::unique_ptr<FailArmed>>();

// "name[@path_part][:N[+]]"; a malformed count leaves the spec disarmed, so
// a typo never fails calls nobody asked to fail.
FailArmed* ParseFail(std::string_view spec) {
  if (spec.empty()) return nullptr;
  auto a = std::make_unique<FailArmed>();
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
    a->path_part = std::string(spec.substr(at + 1));
    spec = spec.substr(0, at);
  }
  a->name = std::string(spec);
  std::lock_guard lock(g_all_mu);
  g_fail_all->push_back(std::move(a));
  return g_fail_all->back().get();
}

}  // namespace

bool FailPointHit(std::string_view name, std::string_view path) {
  std::call_once(g_fail_once, [] {
    const char* spec = std::getenv("KINGX_FAIL_POINT");
    if (spec != nullptr) g_fail.store(ParseFail(spec), std::memory_order_release);
  });
  FailArmed* a = g_fail.load(std::memory_order_acquire);
  if (a == nullptr || a->name != name) return false;
  if (!a->path_part.empty() && path.find(a->path_part) == std::string_view::npos) return false;
  const uint64_t hit = a->hits.fetch_add(1, std::memory_order_relaxed) + 1;
  return a->from_nth_on ? hit >= a->nth : hit == a->nth;
}

bool ArmFailPoint(std::string_view spec) {
  std::call_once(g_fail_once, [] {});  // the explicit arming wins over the environment
  FailArmed* a = ParseFail(spec);
  g_fail.store(a, std::memory_order_release);
  return a != nullptr || spec.empty();
}

}  // namespace kingx::engine
