#!/usr/bin/env bash
# "Linux ate my RAM": the page cache fills free memory with file data, yet
# the memory is available — clean cache pages are dropped the moment
# anything needs them. Reads go through the cache (misses read ahead, a
# second access activates the page), writes dirty pages that the flusher
# writes back (Writeback while the disk works), and reclaim takes the
# cache before it touches anon memory.
. "$(dirname "$0")/lib.sh" "$@"

mem() {
    printf '  %-24s MemFree %7s kB  MemAvailable %7s kB  Cached %7s kB  Dirty %7s kB  Writeback %6s kB\n' \
        "$1" "$(meminfo MemFree)" "$(meminfo MemAvailable)" "$(meminfo Cached)" "$(meminfo Dirty)" "$(meminfo Writeback)"
}
pid=$(spawn writer)
mem "boot"
say "write a 600M file: the cache grows, MemAvailable stays high"
pctl "$pid" "write /data.bin 0 600M"
mem "after the write"
check "the file is cached" [ "$(meminfo Cached)" -ge $((600 << 10)) ]
check "MemAvailable counts the cache" [ "$(meminfo MemAvailable)" -gt $(( $(meminfo MemFree) + (400 << 10) )) ]
check "the flusher left dirty pages above dirty_background_ratio only" [ "$(meminfo Dirty)" -gt 0 ]
check "the flusher's writes are in flight (Writeback)" [ "$(meminfo Writeback)" -gt 0 ]
printf '  writer io: %s\n' "$(tr '\n' ' ' < "$MNT/$pid/io")"

say "sync, then drop_caches: the clean cache goes"
ctl sync
mem "after sync"
echo 1 > "$MNT/sys/vm/drop_caches"
mem "after drop_caches"
check "nothing dirty after sync" [ "$(meminfo Dirty)" -eq 0 ]
check "nothing under writeback after sync" [ "$(meminfo Writeback)" -eq 0 ]
check "the cache is gone" [ "$(meminfo Cached)" -lt 1024 ]

say "read it twice: the first read misses and reads ahead, the second hits"
in0=$(vmstat pgpgin)
pctl "$pid" "read /data.bin 0 600M"
in1=$(vmstat pgpgin)
pctl "$pid" "read /data.bin 0 600M"
in2=$(vmstat pgpgin)
printf '  pgpgin: first read %s kB, second read %s kB\n' "$((in1 - in0))" "$((in2 - in1))"
grep -E '^(Active|Inactive)\(file\)' "$MNT/meminfo"
check "the first read came from the disk" [ $((in1 - in0)) -ge $((600 << 10)) ]
check "the second read came from the cache" [ $((in2 - in1)) -eq 0 ]
check "the second access activated the pages" [ "$(meminfo 'Active(file)')" -ge $((600 << 10)) ]

say "a database maps 64M of the file: faults fill and map the cache"
echo 1 > "$MNT/sys/vm/drop_caches"
faults() { awk '{ printf "minflt %s majflt %s", $10, $12 }' "$MNT/$1/stat"; }
db=$(spawn db)
pctl "$db" "mmap 64M file=/data.bin prot=r name=db"
pctl "$db" "touch db 64M read"
grep data.bin "$MNT/$db/maps"
printf '  db: %s  RssFile %s kB\n' "$(faults "$db")" "$(status "$db" RssFile)"
check "read faults missed the cache" [ "$(awk '{ print $12 }' "$MNT/$db/stat")" -gt 0 ]
copy=$(spawn db2)
pctl "$copy" "mmap 64M file=/data.bin prot=r name=db"
pctl "$copy" "touch db 64M read"
printf '  db2: %s  RssFile %s kB  (the pages were cached)\n' "$(faults "$copy")" "$(status "$copy" RssFile)"
grep -E '^(Mapped|Cached)' "$MNT/meminfo"
check "the second process only had minor faults" [ "$(awk '{ print $12 }' "$MNT/$copy/stat")" -eq 0 ]
check "Mapped counts each page once" [ "$(meminfo Mapped)" -eq $((64 << 10)) ]
ctl "kill $copy"
pctl "$pid" "read /data.bin 0 600M"

say "a program needs 700M: reclaim takes the cache, no swap, no OOM"
app=$(spawn app)
pctl "$app" "mmap 700M name=big"
pctl "$app" "touch big 700M"
mem "after the program"
printf '  pgsteal_file %s  pswpout %s  oom_kill %s  db RssFile %s kB\n' "$(vmstat pgsteal_file)" "$(vmstat pswpout)" "$(vmstat oom_kill)" "$(status "$db" RssFile)"
check "file pages were reclaimed" [ "$(vmstat pgsteal_file)" -gt 0 ]
check "no OOM kill" [ "$(vmstat oom_kill)" -eq 0 ]
pass
