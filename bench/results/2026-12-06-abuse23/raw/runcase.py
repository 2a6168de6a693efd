#!/usr/bin/env python3
"""runcase.py MODULE CASE_SUBSTRING [module args...]: runs the matching cases of a black-box test file."""
import importlib, sys
sys.path.insert(0, "/work/wt/abuse/tests/blackbox")
mod_name, sub = sys.argv[1], sys.argv[2]
sys.argv = [mod_name + ".py"] + sys.argv[3:]
m = importlib.import_module(mod_name)
import kingx_harness as h
if "--model" in sys.argv and hasattr(m, "MODEL_ARGS"):
    m.MODEL_ARGS = ["--model", sys.argv[sys.argv.index("--model") + 1], "--threads", "64"]
cases = [(n, f) for n, f in h.cases_of(vars(m)) if sub in n]
print("cases:", [n for n, _ in cases])
cur = getattr(m, "SERVERS", None)
current = cur.current if cur is not None else (lambda: getattr(m, "CURRENT", None))
h.run_with_servers(mod_name, cases, current)
