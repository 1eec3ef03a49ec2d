#!/usr/bin/env bash
# Checks the systemd files in systemd/ without installing them (this machine need not run systemd):
#   - `systemd-analyze verify` on both units;
#   - `systemd-analyze security --offline` exposure score of both units (goal: "OK", at most 3.9);
#   - systemd-sysusers and systemd-tmpfiles applied to a scratch root, listing the users, groups and folders made.
# Prints one line per check and exits non-zero if any fails. Used by test/systemd-units.test.ts.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
for unit in callbox-device callbox-fleet; do
  if out=$(systemd-analyze verify "systemd/$unit.service" 2>&1) && [ -z "$out" ]; then
    echo "verify $unit.service: clean"
  else
    echo "verify $unit.service: FAILED"; echo "$out" | sed 's/^/  /'; fail=1
  fi
  line=$(systemd-analyze security --offline=yes "systemd/$unit.service" 2>&1 | grep 'Overall exposure level')
  score=$(echo "$line" | grep -oE '[0-9]+\.[0-9]+' | head -1)
  echo "security $unit.service: ${score:-?} $(echo "$line" | grep -oE '(OK|MEDIUM|EXPOSED|UNSAFE|SAFE)' | head -1)"
  awk -v s="${score:-99}" 'BEGIN { exit !(s <= 3.9) }' || fail=1
done
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc"
cp /etc/passwd /etc/group "$root/etc/"
if systemd-sysusers --root="$root" "$PWD/systemd/callbox.sysusers.conf" >/dev/null 2>&1; then
  echo "sysusers: $(grep -E '^callbox' "$root/etc/passwd" | cut -d: -f1 | tr '\n' ' ')users; callbox in $(grep -E '[:,]callbox(,|$)' "$root/etc/group" | cut -d: -f1 | tr '\n' ' ')"
else
  echo "sysusers: FAILED"; fail=1
fi
if systemd-tmpfiles --root="$root" --create "$PWD/systemd/callbox.tmpfiles.conf" >/dev/null 2>&1; then
  echo "tmpfiles: $(cd "$root" && stat -c '/%n %a' etc/callbox var/lib/callbox var/lib/callbox-fleet | tr '\n' ' ')"
else
  echo "tmpfiles: FAILED"; fail=1
fi
exit $fail
