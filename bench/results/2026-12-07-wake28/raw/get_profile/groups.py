"""Kernel symbols of pair-r*.txt (bench/perf_symbols_pair.py output: kingx µs/GET, nginx µs/GET, diff, [k|.], symbol)
summed into the groups a GET's kernel time falls in, per round: what kingx pays that nginx does not."""
import re, sys
GROUPS = [
    ("epoll: item polls and event delivery (level-triggered re-poll)", r"^(ep_item_poll|sock_poll|tcp_poll|ep_send_events|ep_done_scan|ep_start_scan|__ep_eventpoll_poll)"),
    ("sleep and switch (finish_task_switch, schedule, hrtimeout)", r"^(finish_task_switch|__schedule|schedule|schedule_hrtimeout|pick_next|dequeue_|enqueue_|update_curr|__switch_to|psi_)"),
    ("send through VFS (writev) / socket calls", r"^(vfs_writev|do_writev|import_iovec|__sys_sendto|__sys_recvfrom|__x64_sys_sendto|__x64_sys_recvfrom|fdget|fdget_pos|sockfd_lookup_light)"),
    ("all other kernel symbols", r".*"),
]
for f in sys.argv[1:]:
    sums = [[0.0, 0.0] for _ in GROUPS]
    for line in open(f):
        m = re.match(r"\s*([0-9.]+)\s+([0-9.]+)\s+([+-][0-9.]+)\s+\[k\]\s+(\S+)", line)
        if not m: continue
        for i, (_, rx) in enumerate(GROUPS):
            if re.match(rx, m.group(4)):
                sums[i][0] += float(m.group(1)); sums[i][1] += float(m.group(2)); break
    print(f"== {f}: kernel µs per GET, kingx / nginx / difference")
    for (name, _), (k, n) in zip(GROUPS, sums):
        print(f"  {k:6.3f} {n:6.3f} {k - n:+6.3f}  {name}")
