import re,sys
def stat(f):
    out={}
    for l in open(f):
        m=re.match(r'\s*(\S+-\d+)?\s*([\d.,]+|<not counted>)\s+(msec )?(raw_syscalls:sys_enter|context-switches|task-clock)',l)
        if m and m.group(2)!='<not counted>':
            th=(m.group(1) or 'proc').rsplit('-',1)[0]
            out[(th,m.group(4))]=out.get((th,m.group(4)),0)+float(m.group(2).replace(',',''))
    return out
print("run sync req/s | worker us/PUT syscalls/PUT ctxsw/PUT | writer-loop us/PUT syscalls/PUT ctxsw/PUT | keyview us/PUT | load1")
for p in sys.argv[1:]:
    s=p.split('-')[-1]
    w=open(p+'.wrk').read()
    rps=float(re.search(r'Requests/sec:\s*([\d.]+)',w).group(1)); load=w.split('average:')[1].split(',')[0] if 'average:' in w else '~15 (uptime not recorded; see NOTE)'
    n=rps*6
    a=stat(p+'.worker.stat'); b=stat(p+'.writer.stat')
    g=lambda d,t,k: d.get((t,k),0)
    print(f"{p} {s} {rps:.0f} | {g(a,'proc','task-clock')*1000/n:.2f} {g(a,'proc','raw_syscalls:sys_enter')/n:.2f} {g(a,'proc','context-switches')/n:.3f} | {g(b,'kingx-writer','task-clock')*1000/n:.2f} {g(b,'kingx-writer','raw_syscalls:sys_enter')/n:.3f} {g(b,'kingx-writer','context-switches')/n:.3f} | {g(b,'kingx-keyview','task-clock')*1000/n:.2f} | {load}")
