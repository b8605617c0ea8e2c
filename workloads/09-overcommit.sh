#!/usr/bin/env bash
# Overcommit: mode 0 refuses only absurd requests, mode 1 never refuses,
# mode 2 refuses once Committed_AS would pass CommitLimit.
. "$(dirname "$0")/lib.sh" "$@"
pid=$(spawn planner)
grep -E '^(CommitLimit|Committed_AS):' "$MNT/meminfo"

say "mode 0 (heuristic): 512M fine, 64G refused (more than RAM + swap)"
pctl "$pid" "mmap 512M name=ok"
expect_fail "Cannot allocate memory" "echo 'mmap 64G' > '$MNT/$pid/ctl'"

say "mode 1 (always): 64G accepted — a blank cheque"
echo 1 > "$MNT/sys/vm/overcommit_memory"
pctl "$pid" "mmap 64G name=huge"
grep -E '^(Committed_AS):' "$MNT/meminfo"
pctl "$pid" "munmap huge 64G"

pctl "$pid" "munmap ok 512M"

say "mode 2 (strict): CommitLimit = RAM x overcommit_ratio% + swap"
echo 2 > "$MNT/sys/vm/overcommit_memory"
grep -E '^(CommitLimit|Committed_AS):' "$MNT/meminfo"
limit=$(meminfo CommitLimit); committed=$(meminfo Committed_AS)
room=$(( limit - committed ))
echo "  room: ${room} kB"
expect_fail "Cannot allocate memory" "echo 'mmap $(( room + 4096 ))K' > '$MNT/$pid/ctl'"
pctl "$pid" "mmap $(( room / 2 ))K name=half"
echo 0 > "$MNT/sys/vm/overcommit_memory"
pass
