#!/usr/bin/env bash
# Checks that every query of the Grafana dashboard parses as PromQL: each panel target becomes
# a recording rule in a scratch rule file (JSON is YAML), with Grafana's variables replaced by
# plain values, and `promtool check rules` parses it. Which metrics the queries name is checked
# by `cargo test` (tests/integration/monitoring.rs).
#
#   bash .ci/dashboard-queries.sh [deploy/grafana/smarthostd.json]
set -euo pipefail
dashboard="${1:-$(dirname "$0")/../deploy/grafana/smarthostd.json}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 - "$dashboard" "$scratch/queries.json" <<'PY'
import json, re, sys

exprs = []
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "expr" and isinstance(x, str):
                exprs.append(x)
            else:
                walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)

walk(json.load(open(sys.argv[1]))["panels"])
if not exprs:
    sys.exit("no queries found in " + sys.argv[1])
plain = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
def unvar(e):
    return re.sub(r"\$\{?(\w+)\}?", lambda m: plain.get(m.group(1), "x"), e)
rules = [{"record": f"dashboard:query{i}", "expr": unvar(e)} for i, e in enumerate(exprs)]
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"), indent=1)
print(f"{len(rules)} dashboard queries")
PY
promtool check rules "$scratch/queries.json"
