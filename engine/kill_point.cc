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

}  // namespace kingx::engine
