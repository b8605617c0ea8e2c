#!/usr/bin/env bash
# Several swap areas: the highest priority fills first; equal priorities take
# turns page by page. One area is a real host file made by util-linux mkswap.
. "$(dirname "$0")/lib.sh" "$@"
# A fixed path, so that the output (and /proc/swaps) is the same every run.
file=/tmp/mmfs-workload-06.swap
# However the script ends, the file is switched off and removed.
trap 'echo "swapoff $file" > "$MNT/ctl" 2>/dev/null || true; rm -f "$file"' EXIT
rm -f "$file"
# Written out, not sparse: mkswap(8) warns about files with holes (the
# kernel may refuse them).
(umask 077 && dd if=/dev/zero of="$file" bs=1M count=64 status=none)
mkswap "$file" >/dev/null
ctl "mkswap /dev/sdc1 64M"
ctl "mkswap /dev/sdd1 64M"
ctl "swapon $file prio=10"
ctl "swapon /dev/sdc1 prio=5"
ctl "swapon /dev/sdd1 prio=5"
say "three areas"
cat "$MNT/swaps"

pid=$(spawn pager)
pctl "$pid" "mmap 160M name=data"
pctl "$pid" "touch data 160M"
pctl "$pid" "madvise data 32M pageout"
say "32M paged out: all to the prio-10 file"
cat "$MNT/swaps"
used() { awk -v p="$1" '$1 == p { print $4 }' "$MNT/swaps"; }
check "the file took the pages" [ "$(used "$file")" -eq 32768 ]
check "the partitions are untouched" [ "$(used /dev/sdc1)" -eq 0 ]

pctl "$pid" "madvise data+32M 96M pageout"
say "96M more: the file fills (65532K), the two prio-5 partitions share the rest"
cat "$MNT/swaps"
c=$(used /dev/sdc1); d=$(used /dev/sdd1)
check "file full" [ "$(used "$file")" -eq 65532 ]
check "equal priorities alternate (sdc1 $c kB, sdd1 $d kB)" [ $(( c - d )) -le 4 ] 
check "swapon -s parses it" bash -c "LIBMOUNT_SWAPS='$MNT/swaps' swapon -s | grep -q sdc1"
LIBMOUNT_SWAPS="$MNT/swaps" swapon --show

say "swapoff of the file brings its pages back; the file is removed"
ctl "swapoff $file"
rm -f "$file"
cat "$MNT/swaps"
check "the file is off" [ -z "$(used "$file")" ]
pass
