#!/usr/bin/env python3
# usage (from the repository root, a 1M-key template at /tmp/getcpu3-tpl/template-data built with
# bench/harness/kingx.build_template): python3 bench/results/2026-12-04-get-cpu3/wrk_cost.py KINGX ROUNDS SECONDS CONNS
# wrk's own CPU per answered GET (getrusage of the child), c connections, interleaved rounds:
# kingx (1M keys), nginx return 200, and nginx return 200 with kingx's extra headers (same head size).
import os, sys, subprocess, time, shutil, json, re, resource
sys.path.insert(0, 'bench')
from harness import kingx, procs, sysinfo, peers
kbin, rounds, secs, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sysinfo.raise_fd_limit()
BIG = ('location /rb/ { add_header ETag "\\"123456789\\""; add_header X-Request-Id 38d27a76bd68b6f89344921e59e8be35; '
       'add_header Keep-Alive "timeout=75"; return 200 "%s"; }' % ('x' * 100))
def start(which, d):
    port = procs.free_port()
    if which.startswith('nginx'):
        peers.write_static_files(os.path.join(d, 'www'))
        conf = os.path.join(d, 'nginx.conf')
        open(conf, 'w').write(peers.nginx_conf(d, port, 1, False, extra_locations=BIG).replace('master_process on;', 'master_process off;'))
        pr = procs.Proc('nginx', ['nginx', '-p', d, '-c', conf, '-e', f'{d}/error.log'], d + '/log')
        procs.wait_http_ok(port, '/r', 20, pr)
        return pr, port, '/rb/' if which == 'nginx-big' else '/r/'
    data = kingx.copy_data('/tmp/getcpu3-tpl/template-data', d + '/data')
    pr = procs.Proc('kingx', [which, '--listen', f'127.0.0.1:{port}', '--data', data, '--workers', '1', '--model', 'event', '--sync', 'always', '--access-log', 'off', '--max-connections', '19000'], d + '/log')
    procs.wait_http_ok(port, '/readyz', 120, pr)
    return pr, port, '/v1/kv/'
def wrk(port, prefix, c, s):
    argv = ['wrk', '-t1', f'-c{c}', f'-d{s}s', '--timeout', '10s', '-s', 'bench/lua/kv.lua', f'http://127.0.0.1:{port}/', '--',
            'keyp=k', 'nkeys=1000000', 'size=100', 'dist=uniform', f'get_prefix={prefix}', 'get_suffix=', 'putfrac=0']
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = int(re.search(r'(\d+) requests in', out).group(1))
    return n, (r1.ru_utime - r0.ru_utime), (r1.ru_stime - r0.ru_stime)
for rnd in range(rounds):
    order = ['kingx', 'nginx', 'nginx-big']
    order = order[rnd % 3:] + order[:rnd % 3]
    for name in order:
        d = f'/tmp/getcpu3-wc-{name}'
        shutil.rmtree(d, ignore_errors=True); os.makedirs(d)
        pr, port, prefix = start(kbin if name == 'kingx' else name, d)
        try:
            if name != 'kingx':
                hdr = subprocess.run(['curl', '-si', f'http://127.0.0.1:{port}{prefix}k1'], capture_output=True).stdout
                head = hdr.split(b'\r\n\r\n')[0]
            else:
                head = b''
            wrk(port, prefix, conns, 2)
            n, u, s = wrk(port, prefix, conns, secs)
            print(json.dumps({'round': rnd, 'server': name, 'conns': conns, 'requests': n, 'rps': round(n / secs),
                              'wrk_us_per_req': round((u + s) * 1e6 / n, 2), 'wrk_user_us': round(u * 1e6 / n, 2),
                              'wrk_sys_us': round(s * 1e6 / n, 2), 'head_bytes': len(head) + 4 if head else None}), flush=True)
        finally:
            pr.stop(); shutil.rmtree(d, ignore_errors=True)
