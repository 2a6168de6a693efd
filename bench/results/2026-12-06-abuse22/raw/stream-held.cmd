# 19:29 UTC; new = release build of 1281f3f, ref = /work/ref/s22/kingx (main db9bab8)
python3 bench/budget_wait.py --kingx new=/tmp/abuse22/bin-land/kingx --kingx ref=/work/ref/s22/kingx \
  --kingx new-threads=/tmp/abuse22/bin-land/kingx:threads --kingx ref-threads=/work/ref/s22/kingx:threads \
  --cases stream-held --rounds 2 --out bench/results/2026-12-06-abuse22/stream-held
