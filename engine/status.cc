#include "engine/status.h"

namespace kingx::engine {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kNotFound: return "NotFound";
    case Code::kCorruption: return "Corruption";
    case Code::kIOError: return "IOError";
    case Code::kNoSpace: return "NoSpace";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kPreconditionFailed: return "PreconditionFailed";
    case Code::kBusy: return "Busy";
    case Code::kReadOnly: return "ReadOnly";
    case Code::kTooLarge: return "TooLarge";
    case Code::kOutcomeUnknown: return "OutcomeUnknown";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  std::string s = CodeName(code_);
  if (message_ && !message_->empty()) {
    s += ": ";
    s += *message_;
  }
  return s;
}

}  // namespace kingx::engine
