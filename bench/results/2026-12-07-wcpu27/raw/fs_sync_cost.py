import os, sys, time, resource
mode = sys.argv[1]; n = int(sys.argv[2])
p = "/tmp/wcpu-fs/f2.dat"
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.pwrite(fd, b"\0" * (16 << 20), 0); os.fsync(fd)
buf = b"x" * 4500
off = 0
r0 = resource.getrusage(resource.RUSAGE_SELF); t0 = time.time()
for i in range(n):
    os.pwrite(fd, buf, off); off += len(buf)
    if mode == "sync": os.fdatasync(fd)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(mode, "wall us/iter %.0f" % ((time.time() - t0) / n * 1e6), "sys us/iter %.1f" % ((r1.ru_stime - r0.ru_stime) / n * 1e6), "user us/iter %.1f" % ((r1.ru_utime - r0.ru_utime) / n * 1e6), "nvcsw/iter %.2f" % ((r1.ru_nvcsw - r0.ru_nvcsw) / n))
