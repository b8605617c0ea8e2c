#!/usr/bin/env bash
# The swap cache and swap readahead: the experiment of
# tests/reference/linux-samples/swap-cache.c. MADV_PAGEOUT writes the
# pages and leaves them in the swap cache while the writes complete; a
# read finds them there (minor faults, no swap-in); a second pageout of
# the clean pages writes nothing and drops them, the slots stay; writing
# them again reads them back with readahead, a few major faults for many
# pages, and frees the slots. The same with page-cluster 0: no readahead.
. "$(dirname "$0")/lib.sh" "$@"

swap_used() { awk 'NR > 1 { s += $4 } END { print s + 0 }' "$MNT/swaps"; }
flt() { awk '{ print $10, $12 }' "$MNT/$1/stat"; }
snap() { echo "$(flt "$p") $(vmstat pswpin) $(vmstat pswpout) $(vmstat swap_ra) $(vmstat swap_ra_hit)"; }
row() { # row STEP BEFORE AFTER
    read -r mi0 ma0 in0 out0 ra0 hit0 <<< "$2"
    read -r mi1 ma1 in1 out1 ra1 hit1 <<< "$3"
    printf '  %-26s %6s %6s %6s %7s %7s %11s %10s %9s\n' "$1" $((mi1 - mi0)) $((ma1 - ma0)) \
        $((in1 - in0)) $((out1 - out0)) $((ra1 - ra0)) $((hit1 - hit0)) \
        "$(meminfo SwapCached)" "$(swap_used)"
}
do_step() { # do_step LABEL COMMAND
    local before; before=$(snap)
    pctl "$p" "$2"
    row "$1" "$before" "$(snap)"
}
header() {
    printf '  %-26s %6s %6s %6s %7s %7s %11s %10s %9s\n' step minflt majflt pswpin pswpout swap_ra \
        swap_ra_hit 'SwapCached' 'swap used'
}

ctl "mkswap /dev/sdb 256M"
ctl "swapon /dev/sdb"
p=$(spawn ref)
pctl "$p" "mmap 1M name=buf addr=0x40000000"

say "1M written, paged out, read, paged out again, written (kB for SwapCached and swap used)"
header
do_step "write 1M" "touch buf 1M write"
do_step "MADV_PAGEOUT" "madvise buf 1M pageout"
check "the written pages wait in the swap cache" [ "$(meminfo SwapCached)" -eq 1024 ]
ctl "tick 100"
do_step "read it back" "touch buf 1M read"
check "the read took nothing from swap" [ "$(vmstat pswpin)" -eq 0 ]
do_step "MADV_PAGEOUT again" "madvise buf 1M pageout"
check "the clean pages were not written again" [ "$(vmstat pswpout)" -eq 256 ]
check "their slots are still held" [ "$(swap_used)" -eq 1024 ]
do_step "write it sequentially" "touch buf 1M write"
check "readahead read most pages" [ "$(vmstat swap_ra)" -gt 200 ]
check "the writes freed every slot" [ "$(swap_used)" -eq 0 ]

say "page-cluster 0: one page a major fault"
echo 0 > "$MNT/sys/vm/page-cluster"
header
pctl "$p" "madvise buf 1M pageout"
ctl "tick 100"
pctl "$p" "touch buf 1M read"
pctl "$p" "madvise buf 1M pageout"
do_step "read it sequentially" "touch buf 1M read"
check "every page was a major fault" [ "$(awk '{ print $12 }' "$MNT/$p/stat")" -ge 256 ]
pass
