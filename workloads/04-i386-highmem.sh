#!/usr/bin/env bash
# 32-bit x86: the kernel maps only the first 896M (lowmem). User pages come
# from HighMem; page tables and kernel objects must live in lowmem.
. "$(dirname "$0")/lib.sh" "$@"
MMFS=${MMFS:-$(dirname "$0")/../target/release/mmfs}
dir=$(mktemp -d /tmp/mmfs-i386.XXXXXX)
trap '"$MMFS" umount "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null; rmdir "$dir"' EXIT
"$MMFS" mount "$dir" --arch i386 --mem 2G
M=$dir

say "zones of a 2G i386 machine"
cat "$M/buddyinfo"
grep -E '^(HighTotal|HighFree|LowTotal|LowFree):' "$M/meminfo"
grep -A3 'virtual kernel memory layout' "$M/dmesg" || true
grep 'lowmem  :' "$M/dmesg"

high0=$(awk '$1=="HighFree:"{print $2}' "$M/meminfo")
low0=$(awk '$1=="LowFree:"{print $2}' "$M/meminfo")
echo "spawn app" > "$M/ctl"; pid=$(cat "$M/sys/kernel/ns_last_pid")
echo "mmap 256M name=data" > "$M/$pid/ctl"
echo "touch data 256M" > "$M/$pid/ctl"

say "after touching 256M"
grep -E '^(HighFree|LowFree|PageTables):' "$M/meminfo"
high1=$(awk '$1=="HighFree:"{print $2}' "$M/meminfo")
low1=$(awk '$1=="LowFree:"{print $2}' "$M/meminfo")
check "user pages came from HighMem (HighFree fell by 256M)" [ $(( high0 - high1 )) -ge 262144 ]
check "page tables came from lowmem (LowFree fell a little)" [ $(( low0 - low1 )) -gt 0 ] 
check "lowmem barely moved" [ $(( low0 - low1 )) -lt 16384 ]

say "user space ends at 3G: a 4G mapping cannot fit"
expect_fail "Cannot allocate memory" "echo 'mmap 4G' > '$M/$pid/ctl'"
pass
