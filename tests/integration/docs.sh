#!/usr/bin/env bash
# docs.sh - the documents that describe behaviour stay true: docs/settings.md is exactly
# `umbra config --table` (every setting, its UMBRA_* variable, default and meaning), and every
# UMBRA_* variable deploy/docker-compose.yml sets is one of them.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${TEST_BUILD_DIR:-$root/build}
umbra=$build/cli/umbra
table=$(env -i PATH="$PATH" HOME=/nonexistent "$umbra" config --table)
documented=$(sed -n '/^| setting /,$p' "$root/docs/settings.md")
[ "$table" = "$documented" ] || {
    echo "FAIL: docs/settings.md differs from \`umbra config --table\`:" >&2
    diff <(echo "$table") <(echo "$documented") >&2 || true
    exit 1
}
echo "ok 1 - docs/settings.md is \`umbra config --table\` ($(grep -c '^| `' <<<"$table") settings)"
# The keys of environment maps (not the ${...} the compose file reads from its .env)
unknown=$(grep -oE '^ +UMBRA_[A-Z0-9_]+:' "$root/deploy/docker-compose.yml" | tr -d ' :' | sort -u |
          while read -r variable; do grep -q "| \`$variable\` |" <<<"$table" || echo "$variable"; done)
[ -z "$unknown" ] || { echo "FAIL: deploy/docker-compose.yml sets unknown variables: $unknown" >&2; exit 1; }
echo "ok 2 - every UMBRA_* variable deploy/docker-compose.yml sets is a setting"
