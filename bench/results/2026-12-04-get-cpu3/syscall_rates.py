#!/usr/bin/env python3
# usage (from the repository root, 1M-key template at /tmp/getcpu3-tpl/template-data):
#   python3 bench/results/2026-12-04-get-cpu3/syscall_rates.py KINGX ROUNDS SECONDS CONNS[,CONNS]
# Per request, natively, kingx vs nginx return 200 under wrk (as bench/compare drives them):
# server syscalls by tracepoint (perf stat), context switches, server CPU, wrk CPU. Interleaved.
import os, sys, subprocess, time, shutil, json, re, resource
sys.path.insert(0, 'bench')
from harness import kingx, procs, sysinfo, peers
kbin, rounds, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conns_list = [int(x) for x in sys.argv[4].split(',')]
sysinfo.raise_fd_limit()
EV = ['syscalls:sys_enter_epoll_wait', 'syscalls:sys_enter_read', 'syscalls:sys_enter_recvfrom',
      'syscalls:sys_enter_writev', 'syscalls:sys_enter_epoll_ctl', 'context-switches', 'task-clock']
def start(which, d):
    port = procs.free_port()
    if which == 'nginx':
        peers.write_static_files(os.path.join(d, 'www'))
        conf = os.path.join(d, 'nginx.conf')
        open(conf, 'w').write(peers.nginx_conf(d, port, 1, False).replace('master_process on;', 'master_process off;'))
        pr = procs.Proc('nginx', ['nginx', '-p', d, '-c', conf, '-e', f'{d}/error.log'], d + '/log')
        procs.wait_http_ok(port, '/r', 20, pr); prefix = '/r/'
    else:
        data = kingx.copy_data('/tmp/getcpu3-tpl/template-data', d + '/data')
        pr = procs.Proc('kingx', [which, '--listen', f'127.0.0.1:{port}', '--data', data, '--workers', '1', '--model', 'event', '--sync', 'always', '--access-log', 'off', '--max-connections', '19000'], d + '/log')
        procs.wait_http_ok(port, '/readyz', 120, pr); prefix = '/v1/kv/'
    return pr, port, prefix
def wrk(port, prefix, c, s):
    argv = ['wrk', '-t1', f'-c{c}', f'-d{s}s', '--timeout', '10s', '-s', 'bench/lua/kv.lua', f'http://127.0.0.1:{port}/', '--',
            'keyp=k', 'nkeys=1000000', 'size=100', 'dist=uniform', f'get_prefix={prefix}', 'get_suffix=', 'putfrac=0']
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r'(\d+) requests in', out)
    return int(m.group(1)), (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
servers = {'kingx': kbin, 'nginx': 'nginx'}
rows = []
for rnd in range(rounds):
    for c in conns_list:
        for name in (['kingx', 'nginx'] if rnd % 2 == 0 else ['nginx', 'kingx']):
            d = f'/tmp/getcpu3-ws-{name}'
            shutil.rmtree(d, ignore_errors=True); os.makedirs(d)
            pr, port, prefix = start(servers[name], d)
            try:
                wrk(port, prefix, c, 2)
                pids = ','.join(str(p) for p in sysinfo.process_tree([pr.pid]))
                st = subprocess.Popen(['perf', 'stat', '-x', ',', '-e', ','.join(EV), '-p', pids, '-o', d + '/stat'],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.3)
                n, wrk_cpu = wrk(port, prefix, c, secs)
                st.send_signal(2); st.wait(30)
                # perf stat counts from attach to SIGINT; the 0.3 s before wrk are idle
                ev = {}
                for line in open(d + '/stat'):
                    f = line.strip().split(',')
                    if len(f) > 2 and f[0] and f[0][0].isdigit():
                        ev[f[2].split(':')[-1]] = float(f[0])
                row = {'round': rnd, 'conns': c, 'server': name, 'requests': n, 'rps': round(n / secs),
                       'server_cpu_us_per_req': round(ev.get('task-clock', 0) * 1e3 / n, 2),
                       'wrk_cpu_us_per_req': round(wrk_cpu * 1e6 / n, 2)}
                for k in ('sys_enter_epoll_wait', 'sys_enter_read', 'sys_enter_recvfrom', 'sys_enter_writev', 'sys_enter_epoll_ctl', 'context-switches'):
                    row[k.replace('sys_enter_', '')] = round(ev.get(k, 0) / n, 4)
                rows.append(row); print(json.dumps(row), flush=True)
            finally:
                pr.stop(); shutil.rmtree(d, ignore_errors=True)
