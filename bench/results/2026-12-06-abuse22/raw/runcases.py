# runcases.py MODULE case1,case2 [module argv...]: runs the named cases of a black-box test file.
import sys, importlib, signal
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
sys.path.insert(0, "/work/wt/abuse/tests/blackbox")
mod_name, names = sys.argv[1], sys.argv[2].split(",")
sys.argv = [sys.argv[0]] + sys.argv[3:]
m = importlib.import_module(mod_name)
from kingx_harness import run_with_servers
cases = [(n, getattr(m, "test_" + n)) for n in names]
if hasattr(m, "SERVERS"):
    cur = m.SERVERS.current
else:
    cur = lambda: m.CURRENT
run_with_servers(mod_name, cases, cur)
