#!/bin/bash
# callgrind per-request guard: new (278c9cc release) and ref (main 9e61d69), keep-alive and Connection: close, event model.
cd /work/wt/abuse
for mode in close keepalive; do
  for b in /tmp/abuse23/bin-new/kingx /work/ref/s23/kingx; do
    bench/callgrind_per_request.sh $b $mode
  done
done
for b in /tmp/abuse23/bin-new/kingx /work/ref/s23/kingx; do bench/callgrind_per_request.sh $b close --model threads; done
