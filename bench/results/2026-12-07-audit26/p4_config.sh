#!/usr/bin/env bash
# Audit probe: kingx -t on bad configuration files and flags. Usage: p4_config.sh KINGX_BIN
K=${1:?kingx binary}; d=$(mktemp -d /tmp/audit-p4.XXXXXX); trap 'rm -rf "$d"' EXIT
t(){ printf '%s' "$1" > "$d/c.json"; printf '%-62s ' "$1"; "$K" -t --config "$d/c.json" --data "$d/data" >"$d/o" 2>&1; echo "rc=$? $(tr '\n' ' ' < "$d/o" | cut -c1-200)"; }
while IFS= read -r line; do t "$line"; done <<'CASES'
{"workers": 2}
{"wrokers": 2}
{"workers": "2"}
{"workers": 2.5}
{"workers": 0}
{"workers": true}
{"workers": null}
{"workers": [2]}
{"workers": {"n": 2}}
{"workers": "auto "}
{"workers": "02"}
{"max_value_bytes": "1X"}
{"max_value_bytes": 0}
{"max_value_bytes": "99999999G"}
{"max_value_bytes": 1e3}
{"max_value_bytes": 1e7}
{"max_value_bytes": "1 M"}
{"max_value_bytes": "-1"}
{"max_value_bytes": "1.5M"}
{"max_value_bytes": 18446744073709551616}
{"max_key_bytes": 65536}
{"compaction_dead_ratio": 0}
{"compaction_dead_ratio": "nan"}
{"compression_level": 23}
{"sync": "interval:0"}
{"sync": "ALWAYS"}
{"sync_depth": 0}
{"listen": "127.0.0.1:99999"}
{"listen": []}
{"listen": [["127.0.0.1:9000"]]}
{"listen": ["127.0.0.1:9000", "127.0.0.1:9000"]}
{"listen": "localhost:8080"}
{"trusted_proxy": []}
{"trusted_proxy": "10.0.0.0/33"}
{"admin_listen": ["127.0.0.1:9000", "127.0.0.1:9001"]}
{"storage_timeout_ms": 1}
{"log_level": "trace"}
{"model": "thread"}
[1,2]
{"workers": 1, "workers": 2}
{"workers": 1} trailing
{"workers":1,}
{"max_header_bytes": 100}
{"write_queue_bytes": "1K"}
{"body_spill_bytes": "512K"}
{"segment_bytes": "512"}
{"backup_max_ms": 0}
{"single_process": "yes"}
{"read_only": 1}
{"data": ""}
{"access_log": ""}
{"config": "x"}
{"admin_listen": "127.0.0.1:8080"}
{"max_value_bytes": "64M", "staging_bytes": "32M"}
CASES
"$K" -t --workers 2 --workers 3 --data "$d/data"; echo "flag given twice: rc=$?"
"$K" -t --config /etc --data "$d/data"; echo "config is a directory: rc=$?"
