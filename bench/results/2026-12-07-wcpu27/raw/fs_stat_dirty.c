#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char** argv) {
  const char* mode = argv[1]; int n = atoi(argv[2]);
  int fd = open("/tmp/wcpu-fs/f3.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
  static char zero[8 << 20]; pwrite(fd, zero, sizeof zero, 0); fsync(fd);
  char buf[4500]; memset(buf, 'x', sizeof buf); off_t off = 0;
  for (int i = 0; i < n; ++i) {
    pwrite(fd, buf, sizeof buf, off); off += sizeof buf;
    if (!strcmp(mode, "fstat")) { struct stat st; fstat(fd, &st); }
    if (!strcmp(mode, "statx")) { struct statx sx; statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx); }
    if (argc < 4) fdatasync(fd);
  }
  return 0;
}
