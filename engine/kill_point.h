// Kill points: named places where a crash test can make the process die, to
// check that every acknowledged write survives a crash right there.
//
//   KINGX_KILL_POINT("append.after_write");
//
// Compiled in when KINGX_KILL_POINTS is defined: engine/ code gets the define
// in trees that build the tests (meson option kill_points, default auto), and
// the engine's tests always link an engine that has it; a tree built for
// deployment (-Dtests=false) has no crash points. Armed by the environment
// variable KINGX_KILL_POINT="name" (die at the first hit) or "name:N" (the
// Nth hit), read once per process; a hit of the armed point calls _exit(137)
// at once (no destructors, no flush: like kill -9). Unarmed, a hit costs one
// relaxed atomic load.
//
// Points used by the engine: append.before_write, append.after_write,
// append.before_sync, append.after_sync, append.before_publish,
// rotate.after_create, rotate.after_dir_sync, large.before_rename,
// large.after_rename, extend.after_write, extend.after_sync (the preallocated
// room's thread), seal.before_cut, seal.after_cut, seal.before_hint,
// seal.before_seal, close.before_hint (a clean close, before it finishes
// the active segment's hint), index.step (compaction adds its own, compact.*); the
// writer loop (src/) has split.before_rest, between the parts of a batch the
// write stall split.
//
// Fail points, through the same seam: a file call of the posix Env (the file
// layer tests inject faults into) fails with EIO, as a failing disk makes it
// fail.
//
//   if (KINGX_FAIL_POINT("sync", path_)) return ErrnoStatus(..., EIO);
//
// Armed by KINGX_FAIL_POINT="[process/]name[@path_part[#OFFSET]][:N[+]]": the Nth hit
// of `name` on a file whose path contains path_part (or, when path_part ends
// in "$", ends in what precedes it), in a process named `process`, fails (N
// defaults to 1); with "+", every hit from the Nth on does (a persistent
// fault). Only matching hits count. Read once per process, so
// each process (a respawned writer too) counts its own hits; the process
// name is what the process gave SetFailPointProcess (the kingx binary: its
// process title, "kingx-writer", "kingx-worker"; a process that gave none
// matches no spec that names one). With "#OFFSET", only hits of a point that
// covers a byte range ("read") count, and only those whose range holds byte
// OFFSET of the file: a bad sector there. Such a read returns the bytes
// before OFFSET and then EIO, as read(2) of a failing disk does. With KINGX_FAIL_POINT_WHILE=PATH set too,
// a hit that would fail fails only while PATH exists (checked at that hit;
// hits count either way): a persistent fault that a test clears without
// restarting the process, as a disk that remaps its bad sector would.
// Compiled in with kill points; otherwise the macro is false. Points (the path they match):
//   sync     fdatasync of a file (File::Sync; the file's path)
//   syncdir  fsync of a directory (Env::SyncDir; the directory's path)
//   rename   rename(2) (Env::Rename; "FROM -> TO")
//   read     pread of a file (File::Read; the file's path; a byte range)
//   map      the open and mmap of a file (Env::MapReadOnly; the file's path):
//            how segments are read, by every Get and by the writer
// Kill points take the same spec without a path part.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kingx::engine {

// Called by the macro; exits the process if name is the armed point's Nth hit.
void KillPointHit(std::string_view name);

// Arms a point in this process ("name" or "name:N"; empty or malformed
// disarms), replacing what the environment said. For tests that fork; not
// thread-safe against concurrent hits.
void ArmKillPoint(std::string_view spec);

// Called by the macro: true if this hit of `name` on `path` is to fail.
bool FailPointHit(std::string_view name, std::string_view path);

// Called by KINGX_FAIL_POINT_RANGE: for a hit of `name` on bytes
// [offset, offset + n) of `path` that is to fail, the offset where it fails
// (the spec's #OFFSET, else offset); nullopt when it does not fail.
std::optional<uint64_t> FailPointHitRange(std::string_view name, std::string_view path, uint64_t offset, uint64_t n);

// Arms a fail point in this process, replacing what the environment said
// (empty disarms; hits count from zero). False if `spec` is malformed (then
// nothing is armed). For tests; not thread-safe against concurrent hits.
bool ArmFailPoint(std::string_view spec);

// Names this process for the fail points' process filter. Call before the
// process starts threads (after fork); not thread-safe against hits.
void SetFailPointProcess(std::string_view name);

}  // namespace kingx::engine

#if defined(KINGX_KILL_POINTS)
#define KINGX_KILL_POINT(name) ::kingx::engine::KillPointHit(name)
#else
#define KINGX_KILL_POINT(name) ((void)0)
#endif

#if defined(KINGX_KILL_POINTS)
#define KINGX_FAIL_POINT(name, path) ::kingx::engine::FailPointHit(name, path)
#define KINGX_FAIL_POINT_RANGE(name, path, offset, n) ::kingx::engine::FailPointHitRange(name, path, offset, n)
#else
#define KINGX_FAIL_POINT(name, path) false
#define KINGX_FAIL_POINT_RANGE(name, path, offset, n) std::optional<uint64_t>()
#endif
