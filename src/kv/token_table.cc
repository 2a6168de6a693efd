// Token encoding of TokenTable (see token_table.h).
#include "src/kv/token_table.h"

#include "src/ipc/token.h"

namespace kingx {

using namespace token_table_internal;

uint32_t TokenPrefix(uint64_t token) {
  return static_cast<uint32_t>((TokenLocalId(token) >> kPrefixShift) & kPrefixMask);
}

uint64_t EncodeTableToken(uint32_t generation, uint32_t prefix, uint32_t serial) {
  const uint64_t local = (uint64_t{prefix & kPrefixMask} << kPrefixShift) | (serial & kSerialMask);
  return MakeToken(generation, local);
}

uint32_t TableTokenSerial(uint64_t token) { return static_cast<uint32_t>(TokenLocalId(token) & kSerialMask); }

}  // namespace kingx
