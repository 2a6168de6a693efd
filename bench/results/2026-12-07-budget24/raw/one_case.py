# Runs one case of a black-box test file: one_case.py FILE CASE [model args...]
import sys, os, runpy
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[1])))
path, case = sys.argv[1], sys.argv[2]
sys.argv = [path] + sys.argv[3:]
import kingx_harness
orig = kingx_harness.cases_of
def only(g, prefix="test_"):
    return [(n, f) for n, f in orig(g, prefix) if n == case]
kingx_harness.cases_of = only
runpy.run_path(path, run_name="__main__")
