// MappingGuard: reads of a file mapping that survive a page that cannot be
// read.
//
// Touching a page of a MAP_SHARED file mapping that the kernel cannot fill
// raises SIGBUS in the touching thread: the disk failed under the page, or
// the file was truncated below it (damage, an operator). Left alone, the
// signal ends the process. Code that reads mapped segment bytes does the
// read inside GuardMappedRead: a SIGBUS raised by the kernel for an address
// in the range the call declared, while this thread is inside that call,
// abandons the call (siglongjmp back into GuardMappedRead), which returns
// false. Every other SIGBUS (outside a guarded call, at another address, or
// sent by kill) gets the disposition the process had before the guard was
// installed, the default one ending the process: a real bug still crashes.
//
// What fn may do: it can be abandoned at any instruction, so it must be a
// plain computation over the bytes and memory the caller owns: no object
// with a destructor created inside it, no lock taken, no allocation, no call
// into code that does any of these (memcpy, memcmp, a checksum, a zstd
// decode into a buffer and a context allocated beforehand qualify). State fn
// was writing when abandoned (the destination, a decoder context) is
// unspecified; the caller discards it.
//
// The range must lie inside one file mapping the caller keeps mapped for
// the call (a fault is matched by page, so the pages holding [data,
// data + bytes) are what counts). Calls do not nest.
//
// Installing: the first call installs the process's SIGBUS handler (once,
// SA_SIGINFO | SA_NODEFER). Thread-safety: any thread; each thread has its
// own jump buffer. Cost of a call that does not fault: a sigsetjmp that
// saves no signal mask, and a few thread-local stores.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kingx::engine {

// Runs fn(arg) under the guard for [data, data + bytes). True when fn
// returned; false when a read of those pages faulted (fn was abandoned).
bool GuardMappedRead(const void* data, size_t bytes, void (*fn)(void*), void* arg);

// The same with a callable (a lambda capturing by reference), with the same
// rules for what its body may do.
template <class F>
bool GuardMappedRead(const void* data, size_t bytes, F& f) {
  return GuardMappedRead(data, bytes, [](void* p) { (*static_cast<F*>(p))(); }, &f);
}

// memcpy(dst, src, n) with src under the guard. False when a read of src's
// pages faulted (dst then holds an unknown prefix).
bool GuardedCopy(void* dst, const void* src, size_t n);

// Faults turned into false returns in this process so far (for tests and
// the logs: a read that fails fast does not fault).
uint64_t GuardedFaults();

}  // namespace kingx::engine
