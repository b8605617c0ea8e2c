#!/usr/bin/env bash
# swappiness: when memory must be freed, what goes — anon pages to swap, or
# page-cache pages dropped? The same pressure three times: a program with
# 300M of anon memory, a clean 400M file in the cache, then `reclaim 350M`
# (cgroup v2 memory.reclaim), at swappiness 0, 60 and 200. Reclaim scans
# the anon and file LRUs in the proportion get_scan_count sets from
# swappiness and the LRU sizes: 0 spares anon while file pages exist, 60
# (the default) leans on the cache and swaps a little, 200 weighs anon
# alone — and since the program has only 300M, reclaim answers EAGAIN, as
# memory.reclaim does when it frees less than asked.
. "$(dirname "$0")/lib.sh" "$@"

ctl "mkswap /dev/sdb 512M"
ctl "swapon /dev/sdb"
mkdir "$MNT/fs/data"
row() { printf '  %-10s %8s %10s %12s %13s  %s\n' "$@"; }
row swappiness pswpout "(kB)" pgsteal_file "(kB dropped)" reclaim
rows=()
for s in 0 60 200; do
    # The same state each round: a fresh program and a fresh, clean file.
    app=$(spawn "app$s")
    pctl "$app" "mmap 300M name=anon"
    pctl "$app" "touch anon 300M"
    pctl "$app" "write /data/cache 0 400M"
    ctl sync
    echo "$s" > "$MNT/sys/vm/swappiness"
    out0=$(vmstat pswpout); steal0=$(vmstat pgsteal_file)
    answer=ok
    ctl "reclaim 350M" 2>/dev/null || answer=EAGAIN
    out=$(( $(vmstat pswpout) - out0 )); steal=$(( $(vmstat pgsteal_file) - steal0 ))
    row "$s" "$out" "$((out * 4))" "$steal" "$((steal * 4))" "$answer"
    rows+=("$s $out $steal")
    # Tear down: the program's memory and swap go with it, the file too.
    ctl "kill $app"
    rm "$MNT/fs/data/cache"
done
echo 60 > "$MNT/sys/vm/swappiness"

read -r _ out0 steal0 <<< "${rows[0]}"
read -r _ out60 steal60 <<< "${rows[1]}"
read -r _ out200 steal200 <<< "${rows[2]}"
check "swappiness 0 swaps nothing" [ "$out0" -eq 0 ]
check "swappiness 0 takes it all from the cache" [ "$steal0" -ge $((350 << 8)) ]
check "swappiness 60 swaps some anon" [ "$out60" -gt 0 ]
check "swappiness 60 drops more cache than it swaps" [ "$steal60" -gt "$out60" ]
check "more swapping at 200 than at 60" [ "$out200" -gt "$out60" ]
check "less cache dropped at 200 than at 60" [ "$steal200" -lt "$steal60" ]
pass
