#!/usr/bin/env bash
# With no swap and no free memory, the OOM killer picks the process with the
# highest badness (RSS + swap + page tables, shifted by oom_score_adj).
. "$(dirname "$0")/lib.sh" "$@"
# Mode 1 (always overcommit) lets big map more than the machine has.
echo 1 > "$MNT/sys/vm/overcommit_memory"
small=$(spawn small)
big=$(spawn big)
guard=$(spawn guarded)
echo -1000 > "$MNT/$guard/oom_score_adj"
pctl "$small" "mmap 64M name=a"; pctl "$small" "touch a 64M"
pctl "$guard" "mmap 400M name=a"; pctl "$guard" "touch a 400M"
pctl "$big" "mmap 2G name=a"
say "oom_score before"
for p in $small $big $guard; do echo "  $p $(cat "$MNT/$p/comm"): $(cat "$MNT/$p/oom_score")"; done
say "big touches more than memory holds"
expect_fail "Cannot allocate memory" "echo 'touch a 2G' > '$MNT/$big/ctl'"
grep -E 'invoked oom-killer|Out of memory|oom_reaper' "$MNT/dmesg"
check "oom_kill counted" [ "$(vmstat oom_kill)" -ge 1 ]
check "big is gone" [ ! -d "$MNT/$big" ]
check "the -1000 process survived" [ -d "$MNT/$guard" ]
check "small survived" [ -d "$MNT/$small" ]
echo 0 > "$MNT/sys/vm/overcommit_memory"
pass
