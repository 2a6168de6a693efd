// Key run files (see key_run.h; FORMAT.md "Key runs").
#include "engine/key_run.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstring>

#include "engine/coding.h"
#include "engine/mapping_guard.h"

namespace kingx::engine {
namespace {

constexpr char kRunMagic[8] = {'K', 'I', 'N', 'G', 'X', 'R', 'U', 'N'};
constexpr uint32_t kRunVersion = 1;
constexpr size_t kFlushBytes = 1 << 20;

}  // namespace

std::string KeyRunFileName(uint64_t run_id) {
  char name[32];
  std::snprintf(name, sizeof name, "run-%016llx.kxr", static_cast<unsigned long long>(run_id));
  return name;
}

bool ParseKeyRunFileName(std::string_view name, uint64_t* run_id) {
  if (name.size() != 24 || name.substr(0, 4) != "run-" || name.substr(20) != ".kxr") return false;
  uint64_t v = 0;
  for (char c : name.substr(4, 16)) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *run_id = v;
  return true;
}

// ---------------------------------------------------------------- builder

Result<std::unique_ptr<KeyRunBuilder>> KeyRunBuilder::Create(Env& env, const std::string& path, uint64_t run_id,
                                                             uint64_t seed) {
  auto file = env.OpenFile(path, OpenMode::kCreateTruncate);
  if (!file.ok()) return file.status();
  std::unique_ptr<KeyRunBuilder> b(new KeyRunBuilder(std::move(file.value())));
  char h[kKeyRunHeaderBytes];
  std::memcpy(h, kRunMagic, 8);
  PutFixed32(h + 8, kRunVersion);
  PutFixed32(h + 12, 0);
  PutFixed64(h + 16, run_id);
  PutFixed64(h + 24, seed);
  b->buf_.append(h, sizeof h);
  b->types_.emplace(std::string(), 0);
  b->type_list_.emplace_back();
  return b;
}

Status KeyRunBuilder::FlushBuffer() {
  if (buf_.empty()) return Status::OK();
  checksum_.Update(buf_.data(), buf_.size());
  Status s = file_->Append(buf_);
  written_ += buf_.size();
  buf_.clear();
  return s;
}

Status KeyRunBuilder::Add(const KeyEntry& e) {
  assert(!e.key.empty() && e.key.size() <= 65535 && e.content_type.size() <= 255);
  assert(count_ == 0 || std::string_view(last_key_) < e.key);
  if (count_ % kKeyRunSparseEvery == 0) sparse_.push_back(written_ + buf_.size());
  // A run holds few distinct content types: the first few are found by a
  // scan, without building a std::string to look the map up with.
  constexpr size_t kScannedTypes = 8;
  uint64_t type_index = type_list_.size();
  for (size_t i = 0; i < type_list_.size() && i < kScannedTypes; ++i) {
    if (type_list_[i] == e.content_type) {
      type_index = i;
      break;
    }
  }
  if (type_index == type_list_.size()) {
    if (auto it = types_.find(std::string(e.content_type)); it != types_.end()) {
      type_index = it->second;
    } else {
      types_.emplace(std::string(e.content_type), type_index);
      type_list_.emplace_back(e.content_type);
    }
  }
  // The key's length and the fields after the key are encoded on the stack;
  // the entry is written into the buffer grown once.
  char len[kMaxVarint64Bytes];
  const size_t len_bytes = static_cast<size_t>(PutVarint64(len, e.key.size()) - len);
  char fields[5 * kMaxVarint64Bytes];
  char* p = fields;
  for (uint64_t v : {uint64_t{e.seq}, uint64_t{e.segment}, uint64_t{e.offset}, uint64_t{e.raw_len}, type_index}) {
    p = PutVarint64(p, v);
  }
  const size_t fields_bytes = static_cast<size_t>(p - fields);
  const size_t at = buf_.size();
  buf_.resize(at + len_bytes + e.key.size() + fields_bytes);
  char* out = buf_.data() + at;
  std::memcpy(out, len, len_bytes);
  std::memcpy(out + len_bytes, e.key.data(), e.key.size());
  std::memcpy(out + len_bytes + e.key.size(), fields, fields_bytes);
#ifndef NDEBUG
  last_key_.assign(e.key);  // read by the order assertion only
#endif
  max_seq_ = std::max(max_seq_, e.seq);
  // Consecutive entries often point into one segment (a flush of recent puts).
  if (last_segment_count_ == nullptr || e.segment != last_segment_) {
    last_segment_ = e.segment;
    last_segment_count_ = &segments_[e.segment];
  }
  ++*last_segment_count_;
  ++count_;
  if (buf_.size() >= kFlushBytes) return FlushBuffer();
  return Status::OK();
}

Status KeyRunBuilder::Finish(bool sync) {
  const uint64_t entries_end = written_ + buf_.size();
  for (uint64_t off : sparse_) AppendFixed64(&buf_, off);
  const uint64_t types_off = written_ + buf_.size();
  AppendVarint64(&buf_, type_list_.size());
  for (const std::string& t : type_list_) {
    buf_.push_back(static_cast<char>(t.size()));
    buf_.append(t);
  }
  const uint64_t segs_off = written_ + buf_.size();
  std::vector<std::pair<uint64_t, uint64_t>> segs(segments_.begin(), segments_.end());
  std::sort(segs.begin(), segs.end());
  AppendVarint64(&buf_, segs.size());
  for (const auto& [id, n] : segs) {
    AppendVarint64(&buf_, id);
    AppendVarint64(&buf_, n);
  }
  AppendFixed64(&buf_, count_);
  AppendFixed64(&buf_, entries_end);
  AppendFixed64(&buf_, types_off);
  AppendFixed64(&buf_, segs_off);
  AppendFixed64(&buf_, max_seq_);
  AppendFixed64(&buf_, 0);
  checksum_.Update(buf_.data(), buf_.size());
  AppendFixed64(&buf_, checksum_.Digest());
  Status s = file_->Append(buf_);
  written_ += buf_.size();
  buf_.clear();
  if (!s.ok()) return s;
  return sync ? file_->Sync() : Status::OK();
}

// ---------------------------------------------------------------- reader
//
// Every byte of the mapping is read under the mapping guard: the header, the
// footer and the tables are copied out at Open, an entry is decoded (and its
// key copied out) in one guarded call, the sparse index is read one guarded
// offset at a time (a probe of Seek's binary search reads the offset and
// compares the key it names in place, in one guarded call, copying
// nothing). Nothing hands out a view into the mapping. A page that cannot
// be read is kIOError naming the file, never a SIGBUS.

Status KeyRun::Unreadable(uint64_t from, uint64_t to) const {
  return Status::IOError("key run " + path_ + ": a page of bytes [" + std::to_string(from) + ", " +
                         std::to_string(to) + ") cannot be read");
}

Status KeyRun::CopyOut(uint64_t from, uint64_t to, char* out) const {
  if (!GuardedCopy(out, data_ + from, to - from)) return Unreadable(from, to);
  return Status::OK();
}

Result<std::shared_ptr<const KeyRun>> KeyRun::Open(Env& env, const std::string& path, uint64_t run_id,
                                                   uint64_t seed, bool verify_checksum) {
  auto mapped = env.MapReadOnly(path, 0);
  if (!mapped.ok()) return mapped.status();
  auto size = mapped.value()->FileSize();
  if (!size.ok()) return size.status();
  std::shared_ptr<KeyRun> run(new KeyRun());
  run->size_ = std::min(size.value(), mapped.value()->mapped_bytes());
  run->data_ = mapped.value()->data();
  run->map_ = std::move(mapped.value());
  run->id_ = run_id;
  run->path_ = path;
  const uint64_t n = run->size_;
  if (n < kKeyRunHeaderBytes + kKeyRunFooterBytes) return Status::Corruption("key run too short");
  char p[kKeyRunHeaderBytes];
  char f[kKeyRunFooterBytes];
  const uint64_t footer_off = n - kKeyRunFooterBytes;
  if (Status s = run->CopyOut(0, kKeyRunHeaderBytes, p); !s.ok()) return s;
  if (Status s = run->CopyOut(footer_off, n, f); !s.ok()) return s;
  if (std::memcmp(p, kRunMagic, 8) != 0 || GetFixed32(p + 8) != kRunVersion || GetFixed32(p + 12) != 0 ||
      GetFixed64(p + 16) != run_id || GetFixed64(p + 24) != seed)
    return Status::Corruption("key run header mismatch");
  run->count_ = GetFixed64(f);
  run->entries_end_ = GetFixed64(f + 8);
  const uint64_t types_off = GetFixed64(f + 16);
  const uint64_t segs_off = GetFixed64(f + 24);
  run->max_seq_ = GetFixed64(f + 32);
  if (GetFixed64(f + 40) != 0) return Status::Corruption("key run footer reserved field set");
  if (verify_checksum) {
    uint64_t sum = 0;
    auto checksum = [&] { sum = Checksum64(run->data_, n - 8); };
    if (!GuardMappedRead(run->data_, n, checksum)) return run->Unreadable(0, n);
    if (GetFixed64(f + 48) != sum) return Status::Corruption("key run checksum mismatch");
  }
  // Every entry takes at least 7 bytes (six varints and one key byte).
  if (run->entries_end_ < kKeyRunHeaderBytes || run->entries_end_ > footer_off ||
      run->count_ > (run->entries_end_ - kKeyRunHeaderBytes) / 7)
    return Status::Corruption("key run entry area out of bounds");
  run->sparse_off_ = run->entries_end_;
  run->sparse_count_ = (run->count_ + kKeyRunSparseEvery - 1) / kKeyRunSparseEvery;
  if (types_off != run->sparse_off_ + 8 * run->sparse_count_ || types_off > segs_off || segs_off > footer_off)
    return Status::Corruption("key run tables out of bounds");
  {
    bool in_bounds = true;
    const char* sparse = run->data_ + run->sparse_off_;
    const uint64_t count = run->sparse_count_, end = run->entries_end_;
    auto check = [&] {
      for (uint64_t i = 0; i < count && in_bounds; ++i) {
        const uint64_t off = GetFixed64(sparse + 8 * i);
        in_bounds = off >= kKeyRunHeaderBytes && off < end;
      }
    };
    if (!GuardMappedRead(run->data_, n, check)) return run->Unreadable(run->sparse_off_, types_off);
    if (!in_bounds) return Status::Corruption("key run sparse offset out of bounds");
  }
  // The content types are kept (entries view them); the segment table is parsed from a copy.
  run->types_bytes_.resize(segs_off - types_off);
  if (Status s = run->CopyOut(types_off, segs_off, run->types_bytes_.data()); !s.ok()) return s;
  const char* pos = run->types_bytes_.data();
  const char* end = pos + run->types_bytes_.size();
  uint64_t types = 0;
  if (!GetVarint64(&pos, end, &types) || types == 0 || types > run->count_ + 1)
    return Status::Corruption("key run content-type table damaged");
  run->types_.reserve(types);
  for (uint64_t i = 0; i < types; ++i) {
    if (pos == end) return Status::Corruption("key run content-type table truncated");
    const auto len = static_cast<uint8_t>(*pos++);
    if (static_cast<uint64_t>(end - pos) < len) return Status::Corruption("key run content type truncated");
    run->types_.emplace_back(pos, len);
    pos += len;
  }
  if (pos != end) return Status::Corruption("key run content-type table has trailing bytes");
  std::string segs_bytes(footer_off - segs_off, '\0');
  if (Status s = run->CopyOut(segs_off, footer_off, segs_bytes.data()); !s.ok()) return s;
  pos = segs_bytes.data();
  end = pos + segs_bytes.size();
  uint64_t segs = 0;
  if (!GetVarint64(&pos, end, &segs) || segs > run->count_) return Status::Corruption("key run segment table damaged");
  for (uint64_t i = 0; i < segs; ++i) {
    uint64_t id = 0, entries = 0;
    if (!GetVarint64(&pos, end, &id) || !GetVarint64(&pos, end, &entries))
      return Status::Corruption("key run segment table truncated");
    run->segment_counts_.emplace_back(id, entries);
  }
  if (pos != end) return Status::Corruption("key run segment table has trailing bytes");
  return std::shared_ptr<const KeyRun>(std::move(run));
}

bool KeyRun::Iterator::DecodeAt(uint64_t at) {
  const char* base = run_.data_;
  const char* end = base + run_.entries_end_;
  // The key goes into the buffer the previous entry does not use, so that
  // entry's key stays readable (Next compares the two).
  std::vector<char>& key_buf = keys_[cur_ ^ 1];
  // Decoded under the guard into plain locals and key_buf (the guarded call
  // may be abandoned at any instruction, so it cannot grow the buffer: a key
  // longer than the buffer ends the call with need set, and the call is
  // made again once the buffer has room).
  bool ok = false;
  uint64_t key_len = 0, type = 0, need = 0;
  KeyEntry e;
  const char* after = nullptr;
  auto decode = [&] {
    const char* pos = base + at;
    if (!GetVarint64(&pos, end, &key_len) || key_len == 0 || key_len > 65535 ||
        static_cast<uint64_t>(end - pos) < key_len)
      return;
    if (key_len > key_buf.size()) {
      need = key_len;
      return;
    }
    CopyShortBytes(key_buf.data(), pos, key_len);
    pos += key_len;
    if (!GetVarint64(&pos, end, &e.seq) || !GetVarint64(&pos, end, &e.segment) || !GetVarint64(&pos, end, &e.offset) ||
        !GetVarint64(&pos, end, &e.raw_len) || !GetVarint64(&pos, end, &type))
      return;
    after = pos;
    ok = true;
  };
  bool read = GuardMappedRead(base, run_.size_, decode);
  if (read && need > 0) {
    key_buf.resize(std::max<size_t>(need, 2 * key_buf.size()));
    need = 0;
    read = GuardMappedRead(base, run_.size_, decode);
  }
  if (!read) {
    status_ = run_.Unreadable(at, std::min<uint64_t>(at + 65535 + 60, run_.entries_end_));
    valid_ = false;
    return false;
  }
  if (!ok || type >= run_.types_.size()) {
    status_ = Status::Corruption("key run entry damaged");
    valid_ = false;
    return false;
  }
  e.key = std::string_view(key_buf.data(), key_len);
  e.content_type = run_.types_[type];
  entry_ = e;
  cur_ ^= 1;
  pos_ = at;
  next_ = static_cast<uint64_t>(after - base);
  valid_ = true;
  return true;
}

bool KeyRun::Iterator::SparseAt(uint64_t i, uint64_t* offset) {
  char bytes[8];
  const uint64_t at = run_.sparse_off_ + 8 * i;
  if (Status s = run_.CopyOut(at, at + 8, bytes); !s.ok()) {
    status_ = s;
    valid_ = false;
    return false;
  }
  *offset = GetFixed64(bytes);
  return true;
}

bool KeyRun::Iterator::SparseKeyAtMost(uint64_t i, std::string_view target, bool* at_most) {
  const char* base = run_.data_;
  const char* end = base + run_.entries_end_;
  const uint64_t slot = run_.sparse_off_ + 8 * i;
  uint64_t at = 0;  // the entry's offset, once read
  bool ok = false;
  auto probe = [&] {
    at = GetFixed64(base + slot);
    if (at < kKeyRunHeaderBytes || at >= run_.entries_end_) return;
    const char* pos = base + at;
    uint64_t key_len = 0;
    if (!GetVarint64(&pos, end, &key_len) || key_len == 0 || key_len > 65535 ||
        static_cast<uint64_t>(end - pos) < key_len)
      return;
    *at_most = std::string_view(pos, key_len) <= target;
    ok = true;
  };
  if (!GuardMappedRead(base, run_.size_, probe)) {
    status_ = at == 0 ? run_.Unreadable(slot, slot + 8)
                      : run_.Unreadable(at, std::min<uint64_t>(at + 65535 + 3, run_.entries_end_));
    valid_ = false;
    return false;
  }
  if (!ok) {
    status_ = Status::Corruption("key run entry damaged");
    valid_ = false;
    return false;
  }
  return true;
}

void KeyRun::Iterator::SeekToFirst() {
  index_ = 0;
  valid_ = false;
  if (run_.count_ == 0) return;
  DecodeAt(kKeyRunHeaderBytes);
}

void KeyRun::Iterator::Next() {
  if (!valid_) return;
  ++index_;
  if (index_ >= run_.count_) {
    valid_ = false;
    return;
  }
  const std::string_view prev = entry_.key;
  if (DecodeAt(next_) && !(prev < entry_.key)) {
    status_ = Status::Corruption("key run out of order");
    valid_ = false;
  }
}

void KeyRun::Iterator::Seek(std::string_view target) {
  valid_ = false;
  if (run_.count_ == 0) return;
  // The last sparse block whose first key is <= target (block 0 if none).
  uint64_t lo = 0, hi = run_.sparse_count_;
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    bool at_most = false;
    if (!SparseKeyAtMost(mid, target, &at_most)) return;
    if (at_most) lo = mid;
    else hi = mid;
  }
  SeekToBlock(lo);
  while (valid_ && entry_.key < target) Next();
}

void KeyRun::Iterator::SeekToBlock(uint64_t i) {
  valid_ = false;
  if (i >= run_.sparse_count_) return;
  index_ = i * kKeyRunSparseEvery;
  uint64_t at = 0;
  if (SparseAt(i, &at)) DecodeAt(at);
}

}  // namespace kingx::engine
