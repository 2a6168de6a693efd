# usage: template_build.py WORKDIR [KINGX]   (harness/kingx.build_template of 1M keys; prints ok or FAILED)
import sys, os, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from harness import kingx, scenarios, procs
w = sys.argv[1]; os.makedirs(w, exist_ok=True)
ds = scenarios.Dataset(1000000, 0, 0)
try:
    d, secs = kingx.build_template(sys.argv[2] if len(sys.argv) > 2 else '/work/ref/s25/kingx', w, ds, w)
    print("ok", secs)
except Exception as e:
    print("FAILED", e)
