"""Runs one test_abuse case: one.py CASE [threads]"""
import sys
sys.path.insert(0, "/work/wt/abuse/tests/blackbox")
import test_abuse as T
if len(sys.argv) > 2 and sys.argv[2] == "threads":
    T.MODEL_ARGS = ["--model", "threads", "--threads", "64"]
try:
    getattr(T, sys.argv[1])()
    print("PASS")
except Exception as e:
    print("FAIL", e)
finally:
    if T.CURRENT: T.CURRENT.cleanup()
