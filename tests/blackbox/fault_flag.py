"""Starting kingx with a fault of its file seam that a test turns on and off from outside
(engine/kill_point.h: KINGX_FAIL_POINT armed only while the file named by
KINGX_FAIL_POINT_WHILE exists). Standard library only.
"""

import contextlib
import os


@contextlib.contextmanager
def fail_point_while(point, flag):
    """Within the block, every process this one starts inherits KINGX_FAIL_POINT=point, failing
    while the file `flag` exists (create it to fail, remove it to heal). After the block the two
    variables are gone from this process's environment whatever happened, so servers started
    later run without the fault."""
    os.environ["KINGX_FAIL_POINT"] = point
    os.environ["KINGX_FAIL_POINT_WHILE"] = flag
    try:
        yield
    finally:
        os.environ.pop("KINGX_FAIL_POINT", None)
        os.environ.pop("KINGX_FAIL_POINT_WHILE", None)
