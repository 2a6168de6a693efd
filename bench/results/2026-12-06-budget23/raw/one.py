"""python3 one.py MODULE CASE_SUBSTR [--model threads]: run matching cases of a blackbox test file."""
import sys, os
sys.path.insert(0, "/work/wt/budget/tests/blackbox")
mod = __import__(sys.argv[1])
from kingx_harness import run_with_servers, cases_of
if "--model" in sys.argv:
    mod.MODEL_ARGS = ["--model", sys.argv[sys.argv.index("--model") + 1], "--threads", "64"]
cases = [(n, f) for n, f in cases_of(vars(mod)) if sys.argv[2] in n]
run_with_servers("one " + " ".join(mod.MODEL_ARGS), cases, lambda: mod.CURRENT)
