#!/usr/bin/env bash
# swappiness: when memory must be freed, what goes — anon pages to swap, or
# page-cache pages dropped? The same pressure six times: a program with
# 300M of anon memory, a clean 400M file in the cache, then `reclaim 350M`
# (cgroup v2 memory.reclaim), at swappiness 0, 60 and 200, with the cache
# cold (written once) and hot (read twice more, so it is active).
# get_scan_count decides, rule by rule: cgroup reclaim at swappiness 0
# takes file pages only; plenty of inactive, non-thrashing cache turns on
# cache_trim_mode, which takes file pages only whatever the swappiness —
# this machine's 6.18 kernel does the same (cgroup limit reclaim, cold
# 400M file: pswpout 0 at 0, 60 and 200); only a hot cache, with a short
# inactive file list, gets the fractions: anon in proportion to
# swappiness, file to 200 − swappiness, both against their recent costs.
# Anon pages the program touched have only their fault's young PTE: the
# first scan keeps them inactive (FOLIOREF_KEEP, PG_referenced set), the
# second swaps them. At 60 the cache has given 350M before the second
# scan; at 200 (anon only) the program's pages go to swap.
. "$(dirname "$0")/lib.sh" "$@"

ctl "mkswap /dev/sdb 512M"
ctl "swapon /dev/sdb"
mkdir "$MNT/fs/data"
row() { printf '  %-5s %-10s %12s %8s %10s %12s %13s  %s\n' "$@"; }
row cache swappiness pgscan_anon pswpout "(kB)" pgsteal_file "(kB dropped)" reclaim
declare -A out steal scan
for cache in cold hot; do
    for s in 0 60 200; do
        # The same state each round: a fresh program and a fresh, clean file.
        app=$(spawn "app$s")
        pctl "$app" "mmap 300M name=anon"
        pctl "$app" "touch anon 300M"
        pctl "$app" "write /data/cache 0 400M"
        if [ "$cache" = hot ]; then
            # Read twice: the second access activates every page.
            pctl "$app" "read /data/cache 0 400M"
            pctl "$app" "read /data/cache 0 400M"
        fi
        ctl sync
        echo "$s" > "$MNT/sys/vm/swappiness"
        out0=$(vmstat pswpout); steal0=$(vmstat pgsteal_file); scan0=$(vmstat pgscan_anon)
        answer=ok
        ctl "reclaim 350M" 2>/dev/null || answer=EAGAIN
        o=$(( $(vmstat pswpout) - out0 )); st=$(( $(vmstat pgsteal_file) - steal0 ))
        sc=$(( $(vmstat pgscan_anon) - scan0 ))
        row "$cache" "$s" "$sc" "$o" "$((o * 4))" "$st" "$((st * 4))" "$answer"
        out[$cache$s]=$o; steal[$cache$s]=$st; scan[$cache$s]=$sc
        # Tear down: the program's memory and swap go with it, the file too.
        ctl "kill $app"
        rm "$MNT/fs/data/cache"
    done
done
echo 60 > "$MNT/sys/vm/swappiness"

for s in 0 60 200; do
    check "cold cache, swappiness $s: cache_trim_mode swaps nothing" [ "${out[cold$s]}" -eq 0 ]
    check "cold cache, swappiness $s: it all comes from the cache" [ "${steal[cold$s]}" -ge $((340 << 8)) ]
done
check "hot cache, swappiness 0: cgroup reclaim scans no anon" [ "${scan[hot0]}" -eq 0 ]
check "hot cache, swappiness 0: cgroup reclaim swaps nothing" [ "${out[hot0]}" -eq 0 ]
check "hot cache, swappiness 60 scans some anon" [ "${scan[hot60]}" -gt 0 ]
check "hot cache, swappiness 60 drops more cache than it swaps" [ "${steal[hot60]}" -gt "${out[hot60]}" ]
check "hot cache: more anon scanned at 200 than at 60" [ "${scan[hot200]}" -gt "${scan[hot60]}" ]
check "hot cache: more swapping at 200 than at 60" [ "${out[hot200]}" -gt "${out[hot60]}" ]
check "hot cache: less cache dropped at 200 than at 60" [ "${steal[hot200]}" -lt "${steal[hot60]}" ]
pass
