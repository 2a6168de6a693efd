// OpenFailureNote (see open_failure.h).
#include "src/ipc/open_failure.h"

namespace kingx {

void OpenFailureNote::Store(std::string_view text) {
  std::string cut(text.substr(0, kMaxBytes));
  if (text.size() > kMaxBytes) cut.replace(kMaxBytes - 3, 3, "...");
  text_.Store(cut);
}

void OpenFailureNote::Publish(std::string_view text) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  // An empty text would read as "no failure".
  Store(text.empty() ? std::string_view("the open failed") : text);
}

void OpenFailureNote::Clear() { Store({}); }

std::string OpenFailureNote::Read() const {
  std::string text;
  return text_.Read(&text) ? text : std::string(kBusyText);
}

}  // namespace kingx
