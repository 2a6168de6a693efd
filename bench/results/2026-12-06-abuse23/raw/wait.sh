#!/bin/bash
# Responses waiting for the response budget (stream-held: 16 stalled readers hold 1 MiB, 20 wait), the worker's
# wake-ups and CPU over 5 s; wake = c521917 (s23-abuse-wake), ref = main 9e61d69; both models.
cd /tmp/abuse23/wt-wake
echo "uptime: $(uptime)"
python3 bench/budget_wait.py --kingx wake=/tmp/abuse23/bin-wake/kingx --kingx ref=/work/ref/s23/kingx \
  --kingx wake-threads=/tmp/abuse23/bin-wake/kingx:threads --kingx ref-threads=/work/ref/s23/kingx:threads \
  --cases stream-held --rounds 2 --out /tmp/abuse23/wait/stream-held
echo "uptime: $(uptime)"
