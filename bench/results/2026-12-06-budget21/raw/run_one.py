# run_one.py MODULE CASE... [--model M]: runs the named cases of a black-box test file
import sys, importlib
sys.path.insert(0, "tests/blackbox")
args = sys.argv[1:]
model = None
if "--model" in args:
    i = args.index("--model"); model = args[i + 1]; del args[i:i + 2]
m = importlib.import_module(args[0])
if model:
    m.MODEL_ARGS = ["--model", model, "--threads", "64"]
from kingx_harness import run_with_servers
cases = [(n, getattr(m, "test_" + n)) for n in args[1:]]
run_with_servers(args[0], cases, lambda: getattr(m, "CURRENT", None))
