// Method names and precondition matching (RFC 9110 §8.8.3.2, §13.1.1-2).
#include "http/request.h"

namespace kingx::http {

const char* MethodName(Method method) {
  switch (method) {
    case Method::kGet: return "GET";
    case Method::kHead: return "HEAD";
    case Method::kPut: return "PUT";
    case Method::kDelete: return "DELETE";
    case Method::kPost: return "POST";
    case Method::kOptions: return "OPTIONS";
    case Method::kOther: return "OTHER";
  }
  return "OTHER";
}

bool Precondition::MatchesStrong(uint64_t current_seq) const {
  if (current_seq == 0 || kind == Kind::kNone) return false;
  if (kind == Kind::kAny) return true;
  for (const EntityTag& tag : tags) {
    if (!tag.weak && !tag.foreign && tag.seq == current_seq) return true;
  }
  return false;
}

bool Precondition::MatchesWeak(uint64_t current_seq) const {
  if (current_seq == 0 || kind == Kind::kNone) return false;
  if (kind == Kind::kAny) return true;
  for (const EntityTag& tag : tags) {
    if (!tag.foreign && tag.seq == current_seq) return true;
  }
  return false;
}

}  // namespace kingx::http
