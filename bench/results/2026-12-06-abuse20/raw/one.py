import sys
sys.path.insert(0, "/work/wt/abuse/tests/blackbox")
import test_abuse as t
from kingx_harness import run_with_servers
name = sys.argv[1]
if "--model" in sys.argv:
    t.MODEL_ARGS = ["--model", sys.argv[sys.argv.index("--model") + 1], "--threads", "64"]
run_with_servers("one", [(name, getattr(t, "test_" + name))], lambda: t.CURRENT)
