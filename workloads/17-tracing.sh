#!/usr/bin/env bash
# Watching the memory manager with ftrace: enable two events, fault a few
# pages in, and read the ring buffer through MOUNT/tracing (tracefs, at
# /sys/kernel/tracing under `mmfs exec`). Each line is what a real 6.18
# kernel prints for the same event: a read of a never-written page maps
# the zero page (no allocation), the first write to it copies it (a
# protection fault, 0x7), a write to a page never touched allocates
# (0x6); the first fault of the range also allocates its page table.
. "$(dirname "$0")/lib.sh" "$@"
T=$MNT/tracing

pid=$(spawn demo)
pctl "$pid" "mmap 64K name=buf"

say "enable page faults and page allocations"
echo 'exceptions:page_fault_user kmem:mm_page_alloc' > "$T/set_event"
cat "$T/set_event"

say "read 8K, then write 16K"
pctl "$pid" "touch buf 8K read"
pctl "$pid" "touch buf 16K write"
cat "$T/trace"
trace=$(cat "$T/trace")
faults() { grep -c "page_fault_user: .*error_code=$1\$" <<< "$trace"; }
check "two read faults on the zero page (0x4)" [ "$(faults 0x4)" -eq 2 ]
check "two copy-on-write faults from the zero page (0x7)" [ "$(faults 0x7)" -eq 2 ]
check "two faults on never-touched pages (0x6)" [ "$(faults 0x6)" -eq 2 ]
check "one page table and four user pages allocated" \
    [ "$(grep -c 'GFP_KERNEL_ACCOUNT|__GFP_ZERO' <<< "$trace")" -eq 1 ] \
    && [ "$(grep -c 'GFP_HIGHUSER_MOVABLE' <<< "$trace")" -eq 4 ]
check "every line names the process" \
    [ "$(grep -vc '^#' <<< "$trace")" -eq "$(grep -c " demo-$pid " <<< "$trace")" ]

say "trace_pipe consumes what it reads; echo > trace clears"
echo "end of demo" > "$T/trace_marker"
tail -1 "$T/trace"
echo "  read from trace_pipe: $(dd if="$T/trace_pipe" bs=64K count=1 status=none | wc -l) lines"
grep -m1 entries-in-buffer "$T/trace"
echo > "$T/trace"
grep -m1 entries-in-buffer "$T/trace"
check "the buffer is empty" [ "$(grep -vc '^#' "$T/trace")" -eq 0 ]
echo > "$T/set_event"
pass
