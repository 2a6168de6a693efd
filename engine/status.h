// Status and Result<T>: the engine's vocabulary of outcomes.
//
// Every fallible call in kingx returns a Status (for actions) or a Result<T>
// (for values). Both are [[nodiscard]]. An OK Status carries no allocation.
// Errors are converted into a Status exactly once, at the boundary where they
// arise (errno in the Env, zstd codes in compress.cc, ...); callers above only
// branch on code() and pass the Status on. No exceptions cross our APIs.
//
// Thread-safety: values, freely copied between threads.
#pragma once

#include <cassert>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kingx::engine {

enum class Code : uint8_t {
  kOk = 0,
  kNotFound,            // the key does not exist (not an error for Get's callers)
  kCorruption,          // bytes on disk failed a checksum or bounds check
  kIOError,             // EIO and other unexpected errno values
  kNoSpace,             // ENOSPC / EDQUOT: distinct so HTTP can answer 507
  kInvalidArgument,     // caller's input is out of bounds (key too long, ...)
  kPreconditionFailed,  // a conditional write's condition did not hold
  kBusy,                // transient, nothing was done: retry later (index not ready, queue full)
  kReadOnly,            // writes stopped after a failed fdatasync, until reopen
  kTooLarge,            // a value over the configured maximum
  kOutcomeUnknown,      // a write that may or may not have been applied (e.g. its writer died
                        // after taking it): read before retrying a conditional write
};

// Human-readable name of a code ("NotFound", ...), static storage.
const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string_view message)
      : code_(code), message_(code == Code::kOk ? nullptr : std::make_shared<std::string>(message)) {}

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view m = {}) { return Status(Code::kNotFound, m); }
  static Status Corruption(std::string_view m) { return Status(Code::kCorruption, m); }
  static Status IOError(std::string_view m) { return Status(Code::kIOError, m); }
  static Status NoSpace(std::string_view m) { return Status(Code::kNoSpace, m); }
  static Status InvalidArgument(std::string_view m) { return Status(Code::kInvalidArgument, m); }
  static Status PreconditionFailed(std::string_view m = {}) { return Status(Code::kPreconditionFailed, m); }
  static Status Busy(std::string_view m) { return Status(Code::kBusy, m); }
  static Status ReadOnly(std::string_view m) { return Status(Code::kReadOnly, m); }
  static Status TooLarge(std::string_view m) { return Status(Code::kTooLarge, m); }
  static Status OutcomeUnknown(std::string_view m) { return Status(Code::kOutcomeUnknown, m); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool Is(Code c) const { return code_ == c; }
  std::string_view message() const { return message_ ? std::string_view(*message_) : std::string_view(); }
  // "Code: message", for logs.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::shared_ptr<const std::string> message_;  // shared: copying a Status never allocates
};

// A value or the Status that explains its absence. Accessing value() of a
// failed Result is a programmer error (asserted).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}             // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {       // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status carries no value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { assert(ok()); return std::get<T>(v_); }
  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kingx::engine
