# usage: spin.py N SECONDS   N busy processes at nice 0 for at most SECONDS (raises the load on purpose)
import os, sys, time
n, secs = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + secs
for _ in range(n - 1):
    if os.fork() == 0:
        break
x = 0
while time.monotonic() < end:
    for _ in range(100000):
        x += 1
