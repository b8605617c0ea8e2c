#!/usr/bin/env bash
# Fragmentation: plenty of free memory, yet no free block of 64K. A process
# fills memory page by page from two mappings in turn and unmaps one: every
# other page is free. An order-4 request then stalls in direct compaction,
# which moves pages to make a block; compact_memory defragments the rest.
. "$(dirname "$0")/lib.sh" "$@"

# zone FIELD [ZONE]: a field of a zone in zoneinfo (free, min, low, high, or
# protection: its second value, the reserve against DMA32 requests).
zone() { awk -v f="$1" -v want="${2:-DMA32}" '/^Node/ { z = $4 }
    z == want && $1 == "pages" && $2 == f { print $3; exit }
    z == want && $1 == f { print $2; exit }
    z == want && $1 == "protection:" && f == "protection" { gsub(/[(,]/, " "); print $3; exit }' "$MNT/zoneinfo"; }
# big ORDER [ZONE]: free blocks of at least ORDER in ZONE (DMA32), in blocks of ORDER.
big() { awk -v o="$1" -v z="${2:-DMA32}" '$4 == z { for (i = o; i <= 10; i++) s += $(5 + i) * 2^(i - o) } END { print s + 0 }' "$MNT/buddyinfo"; }

pid=$(spawn frag)
pctl "$pid" "mmap 480M addr=0x10000000 name=a"
pctl "$pid" "mmap 480M addr=0x80000000 name=b"
pairs=$(( ($(zone free) - $(zone high) - 2048) / 2 ))
say "fill: $pairs pages of a and of b, touched in turn (a gets every other frame)"
plan=$(mktemp)
trap 'rm -f "$plan"' EXIT
for ((i = 0; i < pairs; i++)); do
    echo "touch a+$((i * 4096)) 4K"
    echo "touch b+$((i * 4096)) 4K"
done > "$plan"
cat "$plan" > "$MNT/$pid/ctl"
pctl "$pid" "munmap b 480M"
# The kernel takes what is left in big blocks (unmovable, order 4), and
# enough of DMA that its lowmem reserve keeps DMA32 requests out of it.
ctl "alloc_pages 4 zone=DMA32 count=$(big 4) tag=hold"
dma_hold=$(( ($(zone free DMA) - $(zone min DMA) - $(zone protection DMA)) / 16 + 1 ))
ctl "alloc_pages 4 zone=DMA count=$dma_hold tag=hold"
say "every other page free: $(meminfo MemFree) kB free, no block of order 4 or more"
cat "$MNT/buddyinfo"
grep -E "^Node    0, zone    DMA32|^Number|^Node 0, zone    DMA32" "$MNT/pagetypeinfo"
cat "$MNT/extfrag/unusable_index"
check "hundreds of MB free" [ "$(meminfo MemFree)" -gt 300000 ]
check "no free block of order >= 4 in DMA32" [ "$(big 4)" = 0 ]

say "alloc_pages 4 zone=DMA32: the free lists fail it; direct compaction makes a block"
ctl "alloc_pages 4 zone=DMA32 tag=big"
grep -E "^(compact_(stall|success|fail|migrate_scanned|free_scanned|isolated)|pgmigrate_success) " "$MNT/vmstat"
check "one compaction stall, and it succeeded" [ "$(vmstat compact_stall)" = 1 ] && [ "$(vmstat compact_success)" = 1 ]

say "echo 1 > sys/vm/compact_memory: the movable pages move to the top of the zone"
echo 1 > "$MNT/sys/vm/compact_memory"
cat "$MNT/buddyinfo"
grep -E "^Node    0, zone    DMA32|^Number|^Node 0, zone    DMA32" "$MNT/pagetypeinfo"
cat "$MNT/extfrag/unusable_index"
grep -E "^pgmigrate_success " "$MNT/vmstat"
check "free memory is in big blocks again" [ "$(big 9)" -gt 100 ]
expect_fail "Invalid argument" "echo 2 > '$MNT/sys/vm/compact_memory'"
pass
