import sys, os, time, subprocess, tempfile, types, shutil
sys.path.insert(0, "/work/wt/abuse/bench")
import abuse
abuse.BIG = os.urandom(1 << 20)
wd = tempfile.mkdtemp(dir="/tmp/abuse22")
srv = abuse.kingx_server("/work/ref/s22/kingx", wd, 1, "event", [], None, "ref")
args = types.SimpleNamespace(settle=3, duration=6, steady=0, abuse_conns=3000, workers=1)
try:
    w = abuse.start_wrk(srv.url(srv.small), 50, 8, None)
    ps = abuse.start_abuse("garbage", srv, args, wd)
    time.sleep(4)
    out = subprocess.run(["ss", "-tnH", "state", "established", f"( sport = :{srv.port} or dport = :{srv.port} )"], capture_output=True, text=True).stdout
    srvq, cliq = [], []
    for line in out.splitlines():
        f = line.split()
        rq, sq, loc, peer = int(f[0]), int(f[1]), f[2], f[3]
        if loc.endswith(f":{srv.port}"): srvq.append(rq)
        else: cliq.append(sq)
    srvq.sort(); cliq.sort()
    print("server-side recv-q (n, p50, max):", len(srvq), srvq[len(srvq)//2], srvq[-1])
    print("client-side send-q (n, p50, max):", len(cliq), cliq[len(cliq)//2], cliq[-1])
    big = [x for x in srvq if x > 1000]; print("server recvq >1000:", len(big), big[:10])
    bigc = [x for x in cliq if x > 1000]; print("client sendq >1000:", len(bigc), sorted(bigc)[-10:])
    for p in ps: p.stop(abuse.signal.SIGINT, timeout_s=10)
    abuse.finish_wrk(w, 8)
finally:
    srv.stop(); shutil.rmtree(wd, ignore_errors=True)
