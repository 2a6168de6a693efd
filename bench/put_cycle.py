#!/usr/bin/env python3
"""put_cycle.py OUT.perf.txt OUT.pids: a durable PUT's round trip on one timeline, from put_cycle.sh's trace.

Each request is followed from the worker's socket read that brings it (t_r) to the worker's write of its
answer on the same connection (t_w), matched backwards: the answer's write follows the worker's wake-up (its
read of the completion eventfd), caused by the writer's last eventfd write before it (answers posted, t_a),
which follows the last fdatasync exit before that (t_se), whose start (t_ss) follows the batch's segment
pwrite64 (t_p). The phases, each a median over the requests in the trace (µs):
  queued   t_r -> t_p    read by the worker, queued, waiting for the writer to take it (and decide)
  write    t_p -> t_ss   the batch's write until its fdatasync starts (in between: earlier answers)
  sync     t_ss -> t_se  the fdatasync (0 under --sync none)
  answer   t_se -> t_a   publish and post the completions, up to the eventfd write
  wake     t_a -> t_wake the worker's wake-up (epoll) and its read of the eventfd
  send     t_wake -> t_w the worker's answers written, up to this one
  client   t_w -> next t_r on the connection: loopback, wrk, its next request
Also: answers written per worker wake-up; after each fdatasync's return, how long until the writer's eventfd
write (answers posted) and until the next batch's pwrite64; how long the writer slept waiting for entries.
"""
import re
import statistics
import sys

LINE = re.compile(r'^\s*(\d+)\s+([\d.]+):\s+syscalls:(\S+):\s*(.*)$')


def parse(path):
    ev = []
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        tid, t, name, args = int(m.group(1)), float(m.group(2)) * 1e6, m.group(3), m.group(4)
        kv = dict(re.findall(r'(\w+): (0x[0-9a-f]+)', args))
        ret = None
        if name.startswith('sys_exit'):
            ret = int(args.strip(), 16) if args.strip().startswith('0x') else int(args.strip() or 0)
            if ret >= 1 << 63:
                ret -= 1 << 64
        ev.append((t, tid, name, {k: int(v, 16) for k, v in kv.items()}, ret))
    ev.sort(key=lambda e: e[0])
    return ev


def med(xs):
    return statistics.median(xs) if xs else float('nan')


def pct(xs, p):
    if not xs:
        return float('nan')
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main():
    ev = parse(sys.argv[1])
    pids = open(sys.argv[2]).read().split()
    worker = int(pids[1])
    writer = int(pids[3])
    writer_tids = set()
    pwrites, ss, se, answers, polls = [], [], [], [], []
    efd_worker = None
    last_read_fd = {}
    arrivals = {}  # fd -> list of arrival times
    writes = []    # (t, fd) worker answers
    wakes = []     # worker reads of the completion eventfd
    poll_enter = {}
    for t, tid, name, a, ret in ev:
        if tid == worker:
            if name in ('sys_enter_read', 'sys_enter_recvfrom'):
                last_read_fd[tid] = a.get('fd')
                if name == 'sys_enter_read' and a.get('count') == 8:
                    efd_worker = a.get('fd')
                    wakes.append(t)
            elif name in ('sys_exit_read', 'sys_exit_recvfrom'):
                fd = last_read_fd.get(tid)
                if fd is not None and fd != efd_worker and ret and ret > 0:
                    arrivals.setdefault(fd, []).append(t)
            elif name in ('sys_enter_write', 'sys_enter_writev') and a.get('count', 0) != 8:
                writes.append((t, a.get('fd')))
        else:
            writer_tids.add(tid)
            if name == 'sys_enter_pwrite64':
                pwrites.append(t)
            elif name == 'sys_enter_fdatasync':
                ss.append(t)
            elif name == 'sys_exit_fdatasync':
                se.append(t)
            elif name == 'sys_enter_write' and a.get('count') == 8:
                answers.append(t)
            elif name == 'sys_enter_poll':
                poll_enter[tid] = (t, a.get('timeout_msecs', 0))
            elif name == 'sys_exit_poll' and tid in poll_enter:
                t0, to = poll_enter.pop(tid)
                if to != 0:
                    polls.append((t0, t))
    import bisect

    def before(xs, t):
        i = bisect.bisect_right(xs, t) - 1
        return xs[i] if i >= 0 else None

    def after(xs, t):
        i = bisect.bisect_left(xs, t)
        return xs[i] if i < len(xs) else None

    phases = {k: [] for k in ('queued', 'write', 'sync', 'answer', 'wake', 'send', 'client', 'total')}
    # Per connection: arrival -> its answer's write -> next arrival.
    wfd = {}
    for t, fd in writes:
        wfd.setdefault(fd, []).append(t)
    for fd, arr in arrivals.items():
        ws = wfd.get(fd, [])
        for r in arr:
            tw = after(ws, r)
            if tw is None:
                continue
            nxt = after(arr, tw)
            if not answers:  # one process that answers by itself (nginx): its turn and the client's only
                phases['total'].append(tw - r)
                if nxt is not None:
                    phases['client'].append(nxt - tw)
                continue
            twake = before(wakes, tw)
            ta = before(answers, twake) if twake else None
            if ta is None or ta < r:
                continue
            tse = before(se, ta)
            tp = None
            if tse is not None and tse > r:
                tss = before(ss, tse)
                tp = before(pwrites, tss) if tss else None
            if tp is None or tp < r:
                # no sync between the request and its answer (--sync none)
                tse = tss = None
                tp = before(pwrites, ta)
                if tp is None or tp < r:
                    continue
            phases['queued'].append(tp - r)
            if tss is not None:
                phases['write'].append(tss - tp)
                phases['sync'].append(tse - tss)
                phases['answer'].append(ta - tse)
            else:
                phases['write'].append(ta - tp)
                phases['sync'].append(0)
                phases['answer'].append(0)
            phases['wake'].append(twake - ta)
            phases['send'].append(tw - twake)
            if nxt is not None:
                phases['client'].append(nxt - tw)
            phases['total'].append(tw - r)
    span = (ev[-1][0] - ev[0][0]) / 1e6 if ev else 0
    print(f"trace {span:.3f} s; requests followed {len(phases['total'])}; worker answers {len(writes)} "
          f"({len(writes) / span:.0f}/s); fdatasyncs {len(se)}; writer answer wake-ups {len(answers)}; "
          f"worker completion wake-ups {len(wakes)}")
    print("phase     median   p10    p90   (µs)")
    for k, xs in phases.items():
        print(f"{k:8s} {med(xs):7.0f} {pct(xs, 10):6.0f} {pct(xs, 90):6.0f}")
    mean_cycle = sum(phases[k] and med(phases[k]) or 0 for k in ('queued', 'write', 'sync', 'answer', 'wake',
                                                                  'send', 'client'))
    print(f"sum of medians (one round trip) {mean_cycle:.0f} µs")
    # answers written per worker wake-up
    per_wake = []
    j = 0
    for i, tw in enumerate(wakes):
        nx = wakes[i + 1] if i + 1 < len(wakes) else float('inf')
        n = 0
        while j < len(writes) and writes[j][0] < tw:
            j += 1
        k = j
        while k < len(writes) and writes[k][0] < nx:
            n += 1
            k += 1
        per_wake.append(n)
    if per_wake:
        print(f"answers per worker wake-up: median {med(per_wake):.0f} p10 {pct(per_wake, 10)} p90 {pct(per_wake, 90)}")
    if se:
        cyc = [b - a for a, b in zip(se, se[1:])]
        durs = [e - before(ss, e) for e in se if before(ss, e) is not None]
        print(f"fdatasync: median {med(durs):.0f} µs p10 {pct(durs, 10):.0f} p90 {pct(durs, 90):.0f}; "
              f"between sync ends median {med(cyc):.0f} µs")
    if se:
        # The writer's own turn after each fdatasync: how soon the answers' eventfd is written, how soon the
        # next batch's pwrite64 starts (when one follows before the next sync).
        to_answer, to_write = [], []
        for i, e in enumerate(se):
            nxt = se[i + 1] if i + 1 < len(se) else float('inf')
            a = after(answers, e)
            if a is not None and a < nxt:
                to_answer.append(a - e)
            p = after(pwrites, e)
            if p is not None and p < nxt:
                to_write.append(p - e)
        print(f"after an fdatasync returns: answers' eventfd written in median {med(to_answer):.0f} µs "
              f"(p10 {pct(to_answer, 10):.0f}, p90 {pct(to_answer, 90):.0f}; {len(to_answer)} syncs); next batch's "
              f"pwrite64 in median {med(to_write):.0f} µs (p10 {pct(to_write, 10):.0f}, p90 {pct(to_write, 90):.0f}; "
              f"{len(to_write)} syncs)")
    if pwrites and arrivals:
        # Requests per batch: arrivals (worker socket reads) since the previous batch's write, split by what
        # the writer did before taking the batch: woke from a sleep on the queue (the first enqueue of a burst
        # woke it) or came back from an fdatasync.
        arr = sorted(t for ts in arrivals.values() for t in ts)
        wake_ends = [b for a, b in polls]
        sizes = {'after a sleep': [], 'after an fdatasync': []}
        for prev, p in zip(pwrites, pwrites[1:]):
            n = bisect.bisect_right(arr, p) - bisect.bisect_right(arr, prev)
            w, e = before(wake_ends, p), before(se, p)
            kind = 'after a sleep' if w is not None and (e is None or w > e) else 'after an fdatasync'
            sizes[kind].append(n)
        for kind, xs in sizes.items():
            if xs:
                print(f"batches taken {kind}: {len(xs)}, requests read since the previous batch: median "
                      f"{med(xs):.0f}, mean {sum(xs) / len(xs):.1f}")
    sleep = sum(b - a for a, b in polls)
    print(f"writer asleep waiting for entries: {sleep / 1e6 / span * 100:.1f}% of the trace "
          f"({len(polls)} sleeps, median {med([b - a for a, b in polls]):.0f} µs)")


if __name__ == '__main__':
    main()
