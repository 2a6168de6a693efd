#include <zstd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
// For values of n bytes with a random prefix of frac*n: the level-1 frame size with a full
// bound buffer, and whether a buffer of exactly n - n/10 bytes (the engine's limit) succeeds.
int main(void) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  int wrong = 0, total = 0, eligible = 0;
  srand(1);
  for (size_t n = 256; n <= 70000; n = n < 2048 ? n + 1 : n + 97) {
    for (int f = 60; f <= 95; f += 1) {
      unsigned char* v = malloc(n); size_t k = n * f / 100;
      for (size_t i = 0; i < k; i++) v[i] = rand();
      for (size_t i = k; i < n; i++) v[i] = "abcd"[i % 4];
      size_t nframe = n > 65536 ? 65536 : n;  (void)nframe;
      unsigned char* out = malloc(ZSTD_compressBound(n));
      size_t full = 0; for (size_t p = 0; p < n; p += 65536) { size_t m = n - p < 65536 ? n - p : 65536; full += ZSTD_compressCCtx(c, out, ZSTD_compressBound(m), v + p, m, 1); }
      size_t limit = n - n / 10;
      size_t used = 0; int err = 0;
      unsigned char* lim = malloc(limit);
      for (size_t p = 0; p < n; p += 65536) { size_t m = n - p < 65536 ? n - p : 65536; size_t r = ZSTD_compressCCtx(c, lim + used, limit - used, v + p, m, 1); if (ZSTD_isError(r)) { err = 1; break; } used += r; }
      total++;
      if (full <= limit) { eligible++; if (err) { wrong++; if (wrong <= 8) printf("n=%zu frac=%d full=%zu limit=%zu -> raw\n", n, f, full, limit); } }
      free(v); free(out); free(lim);
    }
  }
  printf("values %d, saving >=10%% at level 1: %d, stored raw by the limited buffer: %d\n", total, eligible, wrong);
}
