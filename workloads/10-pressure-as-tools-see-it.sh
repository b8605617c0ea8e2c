#!/usr/bin/env bash
# Memory pressure as the tools see it: a workload bigger than RAM thrashes;
# kswapd0 (a kernel thread, pid 5) does the reclaim and has the CPU time to
# show for it, the CPUs wait on the disk (iowait), PSI counts the stalls,
# and the load average rises. Every number comes from the one simulated
# clock: faults, scans and 100 µs per swapped page.
. "$(dirname "$0")/lib.sh" "$@"

say "the kernel threads of boot (PPid 2, no memory of their own)"
for pid in 2 3 4 5; do
    printf '  %s %-10s PPid %s  Kthread %s\n' "$pid" "$(cat "$MNT/$pid/comm")" \
        "$(status "$pid" PPid)" "$(status "$pid" Kthread)"
done
stime() { awk '{ print $15 }' "$MNT/$1/stat"; }
utime() { awk '{ print $14 }' "$MNT/$1/stat"; }

ctl "mkswap /dev/sdb 2G"
ctl "swapon /dev/sdb"
pid=$(spawn thrash)
pctl "$pid" "mmap 1280M name=big"
say "touch 1280M on a 1G machine, three times"
for round in 1 2 3; do
    pctl "$pid" "touch big 1280M"
    printf '  round %d: uptime %s  pswpin %7s  pswpout %7s  kswapd0 stime %4s ticks\n' \
        "$round" "$(cut -d' ' -f1 "$MNT/uptime")" "$(vmstat pswpin)" "$(vmstat pswpout)" "$(stime 5)"
done

say "who did the work (clock ticks of 10 ms)"
printf '  thrash : utime %s stime %s\n' "$(utime "$pid")" "$(stime "$pid")"
printf '  kswapd0: utime %s stime %s\n' "$(utime 5)" "$(stime 5)"
head -3 "$MNT/stat"
say "pressure"
cat "$MNT/pressure/memory" "$MNT/loadavg"

check "kswapd0 has CPU time" [ "$(stime 5)" -gt 0 ]
check "the thrashing task stalled (PSI full total > 0)" \
    [ "$(awk '/^full/ { sub("total=", "", $5); print $5 }' "$MNT/pressure/memory")" -gt 0 ]
check "the CPUs waited on the disk (iowait)" [ "$(awk '/^cpu / { print $6 }' "$MNT/stat")" -gt 0 ]
check "the load average rose" [ "$(cut -d' ' -f1 "$MNT/loadavg" | tr -d .)" -gt 0 ]
pass
