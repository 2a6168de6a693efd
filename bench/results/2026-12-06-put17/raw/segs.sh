#!/bin/bash
# usage: put-segs.sh PORT PATH  (server already running) -> segs per data seg, server side, mid-run
PORT=$1; P=$2
LUA=/work/wt/put/bench/lua/kv.lua
timeout 30 wrk -t1 -c100 -d4s --timeout 10s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=$P putfrac=1 > /tmp/put-segs.wrk &
WP=$!
sleep 3
ss -tin state established "( sport = :$PORT )" | grep -o "segs_out:[0-9]* segs_in:[0-9]* data_segs_out:[0-9]* data_segs_in:[0-9]*" | awk -F'[: ]' '{so+=$2; si+=$4; dso+=$6; dsi+=$8} END {printf "server segs_out %d data_segs_out %d (pure %.3f per data seg); segs_in %d data_segs_in %d (pure %.3f)\n", so, dso, (so-dso)/dso, si, dsi, (si-dsi)/dsi}'
wait $WP
