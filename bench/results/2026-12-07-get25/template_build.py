import sys, os, time
sys.path.insert(0, '/work/wt/get/bench')
from harness import kingx, scenarios, procs
w = sys.argv[1]; os.makedirs(w, exist_ok=True)
ds = scenarios.Dataset(1000000, 0, 0)
try:
    d, secs = kingx.build_template('/work/ref/s25/kingx', w, ds, w)
    print("ok", secs)
except Exception as e:
    print("FAILED", e)
