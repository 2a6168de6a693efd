#!/usr/bin/env python3
# usage (from the repository root; a 1M-key template data directory, e.g. bench/compare's):
#   python3 bench/results/2026-12-04-get-cpu4/cpu_split.py LABEL=KINGX[,LABEL=KINGX] TEMPLATE_DATA ROUNDS SECONDS CONNS[,CONNS]
# Per answered GET under wrk -t1 (bench/lua/kv.lua, uniform over 1M keys), natively, each kingx
# binary (1 event worker) and nginx `return 200` (1 worker), interleaved (order rotated per round): the server processes' user and system CPU
# (/proc/PID/stat utime/stime over the measured window) and the requests per epoll_wait (perf stat
# syscall tracepoint), i.e. where a GET's CPU goes at each connection count.
import json, os, re, resource, shutil, subprocess, sys, time
sys.path.insert(0, 'bench')
from harness import kingx, peers, procs, sysinfo  # noqa: E402

kbins = dict(x.split('=', 1) for x in sys.argv[1].split(','))
template, rounds, secs = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
conns_list = [int(x) for x in sys.argv[5].split(',')]
sysinfo.raise_fd_limit()
TICK = os.sysconf('SC_CLK_TCK')


def cpu_ticks(pids):
    user = system = 0
    for pid in pids:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        user += int(fields[11])
        system += int(fields[12])
    return user, system


def start(name, d):
    port = procs.free_port()
    if name == 'nginx':
        peers.write_static_files(os.path.join(d, 'www'))
        conf = os.path.join(d, 'nginx.conf')
        with open(conf, 'w') as f:
            f.write(peers.nginx_conf(d, port, 1, False).replace('master_process on;', 'master_process off;'))
        pr = procs.Proc('nginx', ['nginx', '-p', d, '-c', conf, '-e', f'{d}/error.log'], d + '/log')
        procs.wait_http_ok(port, '/r', 20, pr)
        return pr, port, '/r/'
    data = kingx.copy_data(template, d + '/data')
    pr = procs.Proc('kingx', [kbins[name], '--listen', f'127.0.0.1:{port}', '--data', data, '--workers', '1', '--model',
                              'event', '--sync', 'always', '--access-log', 'off', '--max-connections', '19000'],
                    d + '/log')
    procs.wait_http_ok(port, '/readyz', 120, pr)
    return pr, port, '/v1/kv/'


def wrk(port, prefix, c, s):
    argv = ['wrk', '-t1', f'-c{c}', f'-d{s}s', '--timeout', '10s', '-s', 'bench/lua/kv.lua',
            f'http://127.0.0.1:{port}/', '--', 'keyp=k', 'nkeys=1000000', 'size=100', 'dist=uniform',
            f'get_prefix={prefix}', 'get_suffix=', 'putfrac=0']
    out = subprocess.run(argv, capture_output=True, text=True, timeout=s + 60).stdout
    return int(re.search(r'(\d+) requests in', out).group(1))


for rnd in range(rounds):
    for c in conns_list:
        names = list(kbins) + ['nginx']
        for name in names[rnd % len(names):] + names[:rnd % len(names)]:
            d = f'/tmp/getcpu4-split-{name}'
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            pr, port, prefix = start(name, d)
            try:
                wrk(port, prefix, c, 2)  # warm: connections, page cache
                pids = sysinfo.process_tree([pr.pid])
                st = subprocess.Popen(['perf', 'stat', '-x', ',', '-e', 'syscalls:sys_enter_epoll_wait', '-p',
                                       ','.join(map(str, pids)), '-o', d + '/stat'],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.3)
                u0, s0 = cpu_ticks(pids)
                n = wrk(port, prefix, c, secs)
                u1, s1 = cpu_ticks(pids)
                st.send_signal(2)
                st.wait(30)
                waits = 0.0
                for line in open(d + '/stat'):
                    f = line.strip().split(',')
                    if len(f) > 2 and f[0] and f[0][0].isdigit():
                        waits = float(f[0])
                row = {'round': rnd, 'conns': c, 'server': name, 'requests': n, 'rps': round(n / secs),
                       'user_us_per_req': round((u1 - u0) / TICK * 1e6 / n, 2),
                       'sys_us_per_req': round((s1 - s0) / TICK * 1e6 / n, 2),
                       'requests_per_epoll_wait': round(n / waits, 1) if waits else None,
                       'load': os.getloadavg()[0]}
                print(json.dumps(row), flush=True)
            finally:
                pr.stop()
                shutil.rmtree(d, ignore_errors=True)
