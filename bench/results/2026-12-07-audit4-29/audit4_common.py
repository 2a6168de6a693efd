"""What the audit4 probes share beyond audit3's probe_common: an RFC 9457 check of a problem answer with the
standard library's json, and the unsent bytes (ss -tin) of a port's connections."""
import json
import re
import subprocess


def problem_ok(r, status):
    """None when `r` (a kingx_harness Response) is application/problem+json whose members have RFC 9457's
    types and whose `status` member is the HTTP status `status`; else what is wrong."""
    ct = (r.header("Content-Type") or "").split(";")[0].strip().lower()
    if ct != "application/problem+json":
        return f"Content-Type {ct!r}"
    try:
        doc = json.loads(r.body)
    except ValueError as e:
        return f"body not JSON: {e}"
    if not isinstance(doc, dict) or doc.get("status") != status or r.status != status:
        return f"status member {doc.get('status') if isinstance(doc, dict) else doc} vs HTTP {r.status} (want {status})"
    if not isinstance(doc.get("title"), str) or not doc["title"]:
        return "no title"
    for k in ("type", "detail", "instance"):
        if k in doc and not isinstance(doc[k], str):
            return f"{k} not a string"
    return None


def notsent(port):
    """Sorted notsent bytes of the established connections whose source port is `port`."""
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return sorted(int(x) for x in re.findall(r"notsent:(\d+)", out))
