set -e
cd /tmp/lcomp-c
B=/tmp/lcomp-a/list_bench_ow
nice -n 10 $B fill fill100k 100000
cp -a fill100k ow1; cp -a fill100k ow3
nice -n 10 $B overwrite ow1 100000 1
nice -n 10 $B overwrite ow3 100000 3
cp -a ow1 ow1c; cp -a ow3 ow3c
/work/ref/s30/kingx-tool --data ow1c compact
/work/ref/s30/kingx-tool --data ow3c compact
for d in fill100k ow1 ow3 ow1c ow3c; do cp -a $d $d-new; done
echo prepared
