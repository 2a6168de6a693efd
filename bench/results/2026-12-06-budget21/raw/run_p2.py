import sys, importlib
sys.path.insert(0, "tests/blackbox")
m = importlib.import_module("test_promises2")
from kingx_harness import run_with_servers
cases = [(n, getattr(m, "test_" + n)) for n in sys.argv[1:]]
run_with_servers("promises2", cases, m.SERVERS.current if hasattr(m.SERVERS, "current") else (lambda: None))
