/* LD_PRELOAD shim for a measurement only (not part of kingx): advises
 * MADV_HUGEPAGE on every read-only shared file mapping of at least 2 MiB, the
 * way kingx's worker maps segment files, so that pages faulted from disk
 * under the advice come in PMD-sized folios (ext4 large folios).
 *   cc -O2 -shared -fPIC -o thpshim.so thpshim.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/types.h>

static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

static void advise(void *p, size_t len, int prot, int flags, int fd) {
  if (p != MAP_FAILED && fd >= 0 && (flags & MAP_SHARED) && !(prot & PROT_WRITE) && len >= (2u << 20))
    (void)madvise(p, len, MADV_HUGEPAGE);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (!real_mmap) real_mmap = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
  void *p = real_mmap(addr, len, prot, flags, fd, off);
  advise(p, len, prot, flags, fd);
  return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return mmap(addr, len, prot, flags, fd, off);
}
