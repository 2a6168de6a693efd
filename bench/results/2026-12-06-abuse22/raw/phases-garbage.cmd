# 19:22 UTC; binaries: new = release build of 1281f3f (s22-abuse, = main after landing), ref = /work/ref/s22/kingx (main db9bab8)
python3 bench/abuse_phases.py --case garbage --kingx new=/tmp/abuse22/bin-land/kingx --kingx ref=/work/ref/s22/kingx \
  --kingx new-threads=/tmp/abuse22/bin-land/kingx:threads --kingx ref-threads=/work/ref/s22/kingx:threads --nginx \
  --rounds 2 --phases 2 --seconds 6 --settle 4 --seed 3 --out bench/results/2026-12-06-abuse22/phases-garbage
