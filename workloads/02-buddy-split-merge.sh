#!/usr/bin/env bash
# The buddy allocator: an order-3 request splits a bigger free block, keeping
# the lower half and freeing the upper halves; freeing merges the buddies back.
. "$(dirname "$0")/lib.sh" "$@"

say "boot state"
cat "$MNT/buddyinfo"
before=$(cat "$MNT/buddyinfo")

say "alloc_pages 3 count=10: order-3 blocks (32K each) split from larger ones"
ctl "alloc_pages 3 count=10 tag=split"
cat "$MNT/buddyinfo"
check "buddyinfo changed" [ "$(cat "$MNT/buddyinfo")" != "$before" ]

say "free them: every buddy merges back"
ctl "free_pages tag=split"
cat "$MNT/buddyinfo"
check "buddyinfo identical to boot" [ "$(cat "$MNT/buddyinfo")" = "$before" ]

say "fragmentation: take 512 single pages, give back every other one"
ctl "alloc_pages 0 count=512 tag=odd"
for i in $(seq 1 256); do ctl "alloc_pages 0 tag=hold$((i % 2))"; done
ctl "free_pages tag=hold0"
cat "$MNT/buddyinfo"
check "MemFree equals buddyinfo" [ "$(awk '{for(o=0;o<=10;o++) s+=$(5+o)*2^o*4} END{print s}' "$MNT/buddyinfo")" = "$(meminfo MemFree)" ]
pass
