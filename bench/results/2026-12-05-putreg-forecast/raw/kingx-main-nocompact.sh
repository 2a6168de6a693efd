#!/bin/sh
exec /work/ref/main/build-release/src/kingx "$@" --compaction off
