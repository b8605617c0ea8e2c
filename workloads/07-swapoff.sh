#!/usr/bin/env bash
# swapoff reads every page back into memory before the area goes away, and
# refuses (ENOMEM) when memory cannot hold them. Bytes survive the round trip.
. "$(dirname "$0")/lib.sh" "$@"
ctl "mkswap /dev/sde1 256M"
ctl "swapon /dev/sde1"
pid=$(spawn keeper)
pctl "$pid" "mmap 64M name=notes"
printf 'hello from page zero' | dd of="$MNT/$pid/mem" bs=1 seek=$((16#$(awk '/anon:notes/{split($1,a,"-"); print a[1]}' "$MNT/$pid/maps"))) conv=notrunc status=none
pctl "$pid" "touch notes 64M"
pctl "$pid" "madvise notes 64M pageout"
say "64M in swap"
cat "$MNT/swaps"
grep VmSwap "$MNT/$pid/status"
check "VmSwap is 64M" [ "$(status "$pid" VmSwap)" -eq 65536 ]

say "swapoff brings it all back"
ctl "swapoff /dev/sde1"
cat "$MNT/swaps"
grep -E '^(VmRSS|VmSwap):' "$MNT/$pid/status"
check "VmSwap is 0" [ "$(status "$pid" VmSwap)" -eq 0 ]
addr=$((16#$(awk '/anon:notes/{split($1,a,"-"); print a[1]}' "$MNT/$pid/maps")))
got=$(dd if="$MNT/$pid/mem" bs=1 skip=$addr count=20 status=none)
check "bytes survived: '$got'" [ "$got" = "hello from page zero" ]

say "a swapoff that cannot fit fails and the area stays on"
ctl "mkswap /dev/sdf1 1G"
ctl "swapon /dev/sdf1"
pid2=$(spawn big)
pctl "$pid2" "mmap 1G name=b"
pctl "$pid2" "touch b 900M"
expect_fail "Cannot allocate memory" "echo 'swapoff /dev/sdf1' > '$MNT/ctl'"
cat "$MNT/swaps"
check "still on" grep -q sdf1 "$MNT/swaps"
pass
