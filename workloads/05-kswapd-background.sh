#!/usr/bin/env bash
# Why Linux swaps "while memory seems enough": kswapd wakes when a zone drops
# below its low watermark and swaps in the background until the high one.
. "$(dirname "$0")/lib.sh" "$@"

ctl "mkswap /dev/sdb1 512M"
ctl "swapon /dev/sdb1"
cat "$MNT/swaps"
grep -E '^Node|^  pages free|^        (min|low|high) ' "$MNT/zoneinfo" | head -12

pid=$(spawn hog)
pctl "$pid" "mmap 1G name=big"
total=$(meminfo MemTotal)
step=$(( total / 8 ))
say "touch memory in steps; watch free, swap and kswapd"
for i in 1 2 3 4 5 6 7 8; do
    pctl "$pid" "touch big+$(( (i - 1) * step ))K ${step}K"
    printf '  step %d: MemFree %8s kB  SwapFree %8s kB  pswpout %6s  pgscan_kswapd %6s\n' \
        "$i" "$(meminfo MemFree)" "$(meminfo SwapFree)" "$(vmstat pswpout)" "$(vmstat pgscan_kswapd)"
done
check "kswapd scanned pages" [ "$(vmstat pgscan_kswapd)" -gt 0 ]
check "pages went to swap" [ "$(vmstat pswpout)" -gt 0 ]
check "memory never ran out: MemFree still above 0" [ "$(meminfo MemFree)" -gt 0 ]
check "no OOM kill" [ "$(vmstat oom_kill)" -eq 0 ]
cat "$MNT/swaps"
pass
