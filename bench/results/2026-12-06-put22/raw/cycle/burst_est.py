# burst_est.py OUT.perf.txt OUT.pids (put_cycle.sh output): (1) requests read between a batch's pwrite64 and
# its fdatasync's start (what writing more batches before that sync could add to it); (2) for batches taken when
# the writer woke from a sleep on an empty queue, requests read from that take to the end of its fdatasync (an
# upper bound of the requests a burst-end wake-up could have put into that batch).
import sys, bisect
sys.path.insert(0, __import__('os').path.join(__import__('os').path.dirname(__file__), '../../../..'))
import put_cycle as pc
ev = pc.parse(sys.argv[1]); worker = int(open(sys.argv[2]).read().split()[1])
pw, ss, arr = [], [], []
last = None
for t, tid, name, a, ret in ev:
    if tid == worker:
        if name == 'sys_enter_read': last = a.get('fd'); c8 = a.get('count') == 8
        elif name == 'sys_exit_read' and not c8 and ret and ret > 0: arr.append(t)
    else:
        if name == 'sys_enter_pwrite64': pw.append(t)
        elif name == 'sys_enter_fdatasync': ss.append(t)
arr.sort()
# for each sync start, requests read between the batch's pwrite (last before it) and the sync start
n_in, n_total = 0, 0
for s in ss:
    i = bisect.bisect_right(pw, s) - 1
    if i < 0: continue
    n_in += bisect.bisect_left(arr, s) - bisect.bisect_right(arr, pw[i])
print(f"{sys.argv[1]}: syncs {len(ss)}, requests read between a batch's pwrite64 and its fdatasync's start: "
      f"{n_in} of {len(arr)} ({100*n_in/max(1,len(arr)):.1f}%)")
# after-sleep takes: arrivals between the take's pwrite and its sync's end (they wait one more sync)
polls = []; pe = {}
se = []
for t, tid, name, a, ret in ev:
    if tid == worker: continue
    if name == 'sys_enter_poll': pe[tid] = (t, a.get('timeout_msecs', 0))
    elif name == 'sys_exit_poll' and tid in pe:
        t0, to = pe.pop(tid)
        if to != 0: polls.append(t)
    elif name == 'sys_exit_fdatasync': se.append(t)
late = 0; takes = 0; first = 0
for p in pw:
    w = pc_before = None
    i = bisect.bisect_right(polls, p) - 1
    j = bisect.bisect_right(se, p) - 1
    if i < 0 or (j >= 0 and se[j] > polls[i]): continue
    takes += 1
    k = bisect.bisect_left(se, p)
    if k >= len(se): continue
    first += bisect.bisect_right(arr, p) - bisect.bisect_right(arr, polls[i] - 1)
    late += bisect.bisect_left(arr, se[k]) - bisect.bisect_right(arr, p)
print(f"  takes after a sleep {takes}: requests read from the wake to the take {first}, from the take to its "
      f"sync's end {late} ({100*late/max(1,len(arr)):.1f}% of all requests; an upper bound of those a burst-end wake-up could have added to such a batch)")
