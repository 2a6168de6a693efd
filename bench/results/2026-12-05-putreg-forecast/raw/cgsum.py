import json, sys, re, subprocess, os
# Per-PUT instructions of the writer process's batch step and its parts, from profile.py's output:
# n = ops decided in the window (DiskSpace::Admit calls, one per put decided).
d = sys.argv[1]
prof = json.load(open(os.path.join(d, "profile.json")))
c = prof["cases"][0]
for f in sorted(os.listdir(d)):
    if not f.endswith(".inclusive.txt"): continue
    t = open(os.path.join(d, f)).read()
    if "WriterLoop::Run" not in t: 
        worker = f; continue
    writer = f
def tot(path):
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \(100.0%\)  PROGRAM TOTALS", line)
        if m: return int(m.group(1).replace(",", ""))
cgdir = os.path.join(d, "callgrind")
wfile = os.path.join(cgdir, writer.replace(".inclusive.txt", ""))
tree = subprocess.run(["callgrind_annotate", "--tree=calling", "--inclusive=yes", wfile], capture_output=True, text=True).stdout
def calls(fn):
    n = 0
    for line in tree.splitlines():
        if ">   ???:" + fn in line:
            m = re.search(r"\(([\d,]+)x\)", line)
            if m: n = max(n, int(m.group(1).replace(",", "")))
    return n
ops = calls("kingx::engine::DiskSpace::Admit")
incl = open(os.path.join(d, writer)).read()
def ir(pat):
    best = 0
    for line in incl.splitlines():
        if re.search(pat, line):
            m = re.match(r"\s*([\d,]+) ", line)
            if m: best = max(best, int(m.group(1).replace(",", "")))
    return best
rows = [("writer process, all threads", tot(os.path.join(d, writer))),
        ("worker process", tot(os.path.join(d, worker))),
        ("writer loop thread (WriterLoop::Run)", ir(r"WriterLoop::Run\(\)")),
        ("  ProcessBatch", ir(r"WriterLoop::ProcessBatch\(\)")),
        ("    stall forecast hook (Writer::Forecast + HoldBatch)", ir(r"CompactionHooks.*lambda\(kingx::engine::Writer&, std::span")),
        ("    DecideBatch", ir(r"\?\?\?:kingx::engine::DecideBatch")),
        ("    FindKey (all callers)", ir(r"Writer::Impl::FindKey")),
        ("  PublishWritten", ir(r"kingx::engine::PublishWritten")),
        ("compaction thread (RunOnce)", ir(r"Compactor::RunOnce")),
        ("key view thread (Keyspace::Loop)", ir(r"Keyspace::Loop\(\)"))]
print(f"{d}: ops decided in the window {ops}; batches (ProcessBatch calls) {calls('kingx::(anonymous namespace)::WriterLoop::ProcessBatch')}; uptime {prof.get('uptime_start')}")
for name, v in rows:
    print(f"  {name:58s} {v/ops:10.0f} per PUT")
