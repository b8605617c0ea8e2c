#!/usr/bin/env bash
# Slab over buddy: caches carve pages into objects. Interleaved allocations
# then frees of one kind leave partially used slabs that cannot go back.
. "$(dirname "$0")/lib.sh" "$@"

say "a cache of 256-byte objects"
ctl "kmem_cache_create demo_obj 256"
grep -E '^(# name|demo_obj)' "$MNT/slabinfo"
slab0=$(meminfo Slab)

say "1000 objects of tag a and 1000 of tag b, interleaved"
for i in $(seq 1 100); do
    ctl "kmem_cache_alloc demo_obj count=10 tag=a"
    ctl "kmem_cache_alloc demo_obj count=10 tag=b"
done
grep demo_obj "$MNT/slabinfo"
check "Slab grew" [ "$(meminfo Slab)" -gt "$slab0" ]

say "free tag a: every slab keeps some b objects, so no page is returned"
ctl "kmem_cache_free tag=a"
line=$(grep '^demo_obj ' "$MNT/slabinfo")
echo "$line"
active=$(echo "$line" | awk '{print $2}'); total=$(echo "$line" | awk '{print $3}')
check "partial slabs: active_objs $active < num_objs $total" [ "$active" -lt "$total" ]

say "free tag b: the empty slabs go back to the buddy allocator"
ctl "kmem_cache_free tag=b"
grep demo_obj "$MNT/slabinfo"
ctl "kmem_cache_destroy demo_obj"
check "cache gone" bash -c "! grep -q '^demo_obj ' '$MNT/slabinfo'"

say "kmalloc 20000: bigger than kmalloc-8k, straight from the buddy allocator (order 3)"
before=$(cat "$MNT/buddyinfo")
ctl "kmalloc 20000 tag=big"
cat "$MNT/buddyinfo"
check "buddyinfo changed" [ "$(cat "$MNT/buddyinfo")" != "$before" ]
ctl "kfree tag=big"
pass
