"""Sums bench/perf_symbols_pair.py output (A µs/GET, B µs/GET, difference, [k|.], symbol) into the
groups a GET's CPU falls in, per file: what edge-triggered registration removes (epoll's second look at
each reported socket) beside the rest. Symbols are matched in the order of GROUPS, first match wins. Usage: python3 epoll_groups.py pair-*.txt"""
import re
import sys

GROUPS = [
    ("epoll: item polls and event delivery", r"^(ep_item_poll|sock_poll|tcp_poll|ep_send_events|ep_done_scan|ep_start_scan|__ep_eventpoll_poll|ep_poll)\b"),
    ("epoll: wake-up callback (data arrival)", r"^(ep_poll_callback|__wake_up_common|__wake_up_sync_key|sock_def_readable)\b"),
    ("sleep and switch", r"^(finish_task_switch|__schedule|schedule|schedule_hrtimeout|pick_next|dequeue_|enqueue_|update_curr|__switch_to|psi_|try_to_wake_up|ttwu_)"),
    ("TCP/IP and socket layer (both directions of loopback)", r"^(tcp_|__tcp_|ip_|__ip_|inet_|__inet_|sock_|__sock_|sk_|__sk_|skb_|__skb_|kfree_skb|__kfree_skb|alloc_skb|__alloc_skb|__dev_queue_xmit|dev_hard_start_xmit|loopback_xmit|net_rx_action|__netif_|netif_|process_backlog|__napi_|bbr_|__sys_sendto|__sys_recvfrom|__x64_sys_sendto|__x64_sys_recvfrom|sockfd_lookup_light|fdget|_copy_from_iter|_copy_to_iter|copy_user|rep_movs|__check_object_size|release_sock|lock_sock)"),
    ("other kernel", r".*"),
]
for f in sys.argv[1:]:
    sums = [[0.0, 0.0] for _ in GROUPS]
    user = [0.0, 0.0]
    for line in open(f):
        m = re.match(r"\s*([0-9.]+)\s+([0-9.]+)\s+([+-][0-9.]+)\s+\[(k|\.)\]\s+(\S+)", line)
        if not m:
            continue
        a, b = float(m.group(1)), float(m.group(2))
        if m.group(4) == ".":
            user[0] += a
            user[1] += b
            continue
        for i, (_, rx) in enumerate(GROUPS):
            if re.match(rx, m.group(5)):
                sums[i][0] += a
                sums[i][1] += b
                break
    print(f"== {f}: µs per GET, A / B / A - B")
    for (name, _), (a, b) in zip(GROUPS, sums):
        print(f"  {a:6.3f} {b:6.3f} {a - b:+6.3f}  {name}")
    print(f"  {user[0]:6.3f} {user[1]:6.3f} {user[0] - user[1]:+6.3f}  user space (top symbols)")
