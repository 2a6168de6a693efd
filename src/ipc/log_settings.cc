// LogSettingsNote (see log_settings.h).
#include "src/ipc/log_settings.h"

namespace kingx {

bool LogSettingsNote::Publish(const std::string& path, LogLevel level) {
  if (path.size() > kMaxPathBytes) return false;
  std::string text(1, static_cast<char>(level));
  text += path;
  text_.Store(text);
  return true;
}

bool LogSettingsNote::Read(std::string* path, LogLevel* level) const {
  std::string text;
  if (!text_.Read(&text) || text.empty()) return false;  // empty: never published (a publication has its level)
  const auto byte = static_cast<uint8_t>(text[0]);
  if (byte > static_cast<uint8_t>(LogLevel::kError)) return false;  // only after memory corruption
  *level = static_cast<LogLevel>(byte);
  path->assign(text, 1);
  return true;
}

}  // namespace kingx
