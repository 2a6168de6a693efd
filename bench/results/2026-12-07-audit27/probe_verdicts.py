"""The probes' verdict lines: one `HELD`/`FALSE` line per check, and the count at the end."""
COUNTS = {"held": 0, "false": 0}


def verdict(ok, msg):
    COUNTS["held" if ok else "false"] += 1
    print(("HELD  " if ok else "FALSE ") + msg, flush=True)


def summary():
    print(f"{COUNTS['held']} held, {COUNTS['false']} false")
