# scratch: sequential PUT load shaped like the crash soak's sizes, against a running kingx
import http.client, random, sys, time
port = int(sys.argv[1]); n = int(sys.argv[2]); seed = int(sys.argv[3])
sizes = [4000, 4000, 4000, 4000, 65536, 1048575, 1048576]
rng = random.Random(seed)
mean = sum(sizes) / len(sizes)
nkeys = int(6 * 2**20 / mean)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
t0 = time.monotonic()
for i in range(n):
    k = f"soak-{rng.randrange(nkeys)}"
    v = bytes([rng.randrange(256)]) * 0 + rng.randbytes(rng.choice(sizes))
    c.request("PUT", f"/v1/kv/{k}", body=v)
    r = c.getresponse(); r.read()
    if r.status // 100 != 2: print("status", r.status, file=sys.stderr)
print(f"{n} puts in {time.monotonic() - t0:.3f} s")
