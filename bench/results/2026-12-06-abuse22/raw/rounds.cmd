# 19:30 UTC; NEW = release build of 1281f3f (s22-abuse), REF = /work/ref/s22/kingx (main db9bab8)
NEW=/tmp/abuse22/bin-land/kingx REF=/work/ref/s22/kingx bench/abuse_rounds.sh bench/results/2026-12-06-abuse22 1 1
python3 bench/abuse_table.py bench/results/2026-12-06-abuse22 > bench/results/2026-12-06-abuse22/raw/table.md
