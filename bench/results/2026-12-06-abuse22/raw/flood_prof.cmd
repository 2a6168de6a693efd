# Run from /tmp/abuse22 with the script in this raw/ (it imports bench/abuse.py from the worktree).
# 18:15, load 6-21: strace -c of the worker during the first abused phase, both models, ref
python3 flood_prof.py ref=/work/ref/s22/kingx ref-t=/work/ref/s22/kingx:threads --out /tmp/abuse22/prof-strace --trace strace --seconds 8
# 18:17, load 16: perf record -F 2000 -g of the worker (alone and abused), event model, ref
python3 flood_prof.py ref=/work/ref/s22/kingx --out /tmp/abuse22/prof-perf --trace perf --seconds 8
perf report -i perf-ref-r0.data --children --sort sym --stdio -g none          # perf-ref-r0-children.txt
perf report -i perf-ref-r0.data --children --sort sym --stdio -g caller --percent-limit 5   # close callgraph
# 18:22, load 4.4-6.1: new (first version of parking, d56b340's code) vs ref, event model
python3 flood_prof.py new=/tmp/abuse22/bin-p1/kingx ref=/work/ref/s22/kingx --out /tmp/abuse22/try1 --seconds 8
# 18:26, load 17-34: the same, thread model
python3 flood_prof.py new-t=/tmp/abuse22/bin-p1/kingx:threads ref-t=/work/ref/s22/kingx:threads --out /tmp/abuse22/try1t --seconds 8
# 18:20, load ~6: queues of the flood's connections (ss), ref event model
python3 ssq.py
# fails on main: /tmp/abuse22/runcases.py (= raw/runcases.py) MODULE CASES [ARGS], KINGX_BIN=/work/ref/s22/kingx
# unit: kv_service.cc's NextRetryMs rule set back to main's `if (!m.stream_waiters.empty()) return 1;`, kv_service_test "[stream]"
