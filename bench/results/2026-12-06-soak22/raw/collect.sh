#!/bin/bash
# collect.sh NAME SEED: copies a finished soak's raw data into the results dir
name=$1; seed=$2
src=/tmp/soak22/runs/$name-s$seed
dst=/work/wt/soak/bench/results/2026-12-06-soak22/raw
mkdir -p $dst
cp $src-command.txt $dst/$name-s$seed-command.txt
cp $src-uptime.txt $dst/$name-s$seed-uptime.txt
grep '^SUMMARY' $src.out > $dst/$name-s$seed-summary.txt
grep '^{' $src.out | gzip -9 > $dst/$name-s$seed-runs.jsonl.gz
gzip -9c $src/samples-bin.jsonl > $dst/$name-s$seed-samples-bin.jsonl.gz
gzip -9c $src/samples-compare-bin.jsonl > $dst/$name-s$seed-samples-compare-bin.jsonl.gz
