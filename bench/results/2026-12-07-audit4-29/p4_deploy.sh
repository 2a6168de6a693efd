#!/bin/bash
# audit4 probe 4: deploy/ from outside. kingx-reshard check's exit statuses (README "Resharding": 2 an error
# naming the flag: no move at --state, neither --state nor --shards, a shard unreachable); kingx-reshard
# reload refuses a pid file naming another program before signalling it; deploy/kingx.logrotate's postrotate
# signals only a running kingx master (a stale pid file naming another process is ignored).
# Usage: bash p4_deploy.sh REPO
R=${1:-/work/wt/audit4}
W=$(mktemp -d /tmp/audit4-p4.XXXX); cd "$W"
run() { echo "\$ $*"; "$@" > out.txt 2>&1; rc=$?; sed 's/^/  /' out.txt | head -4; echo "  rc=$rc"; }
RS=$R/deploy/kingx-reshard
run "$RS" check
run "$RS" check --state "$W/none.json"
run "$RS" check --shards 127.0.0.1:1
run "$RS" owner --shards 127.0.0.1:1 'a%2'
run "$RS" owner --shards 127.0.0.1:1,127.0.0.1:1 a
sleep 60 & S=$!
echo $S > fake.pid
run "$RS" reload --pidfile fake.pid --timeout 2
run "$RS" reload --proxy haproxy --pidfile fake.pid --timeout 2
kill -0 $S && echo "  sleep $S still alive after reload refusals"
# logrotate's postrotate, with the package's pid file path replaced by ours
sed "s#/run/kingx/kingx.pid#$W/fake.pid#; s#/var/log/kingx/#$W/logs/#; s#create 0640 kingx adm#create 0640 root root#" "$R/deploy/kingx.logrotate" > lr.conf
mkdir logs; echo line > logs/access.log
run logrotate -f -s "$W/lr.state" lr.conf
kill -0 $S && echo "  stale pid file: sleep $S still alive after logrotate -f" || echo "  stale pid file: sleep $S was SIGNALLED (killed)"
ls logs
kill $S 2>/dev/null
cd /; rm -rf "$W"
