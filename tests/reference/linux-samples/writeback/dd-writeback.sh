#!/bin/bash
# Linux 6.18: dirty, under-writeback and written pages of one loop device
# (its bdi's stats in debugfs, so the rest of the machine does not count)
# while `dd bs=1M count=200` writes to ext4 on it, as the flusher expires
# the pages, and during `sync` of a second 200M. Samples every 0.1 s, a
# line when the numbers change. Run as root; everything is undone.
set -euo pipefail
img=/var/tmp/wb-exp.img mnt=/var/tmp/wb-exp.mnt dbg=/sys/kernel/debug
truncate -s 1G "$img"; mkfs.ext4 -q -F "$img"; mkdir -p "$mnt"
dev=$(losetup -f --show "$img"); mount "$dev" "$mnt"
mounted_dbg=0; [ -d $dbg/bdi ] || { mount -t debugfs none $dbg; mounted_dbg=1; }
trap 'umount "$mnt"; losetup -d "$dev"; rm -rf "$img" "$mnt"; [ $mounted_dbg = 0 ] || umount $dbg' EXIT
stats=$dbg/bdi/$(lsblk -no MAJ:MIN "$dev" | tr -d ' ')/stats
sync; sleep 1
start=$(date +%s.%N)
sample() {  # seconds since the first dd, then the bdi's dirty, writeback, written (kB)
  awk -v t="$(echo "$(date +%s.%N) - $start" | bc)" -v what="$1" '
    /^BdiReclaimable:/ {d=$2} /^BdiWriteback:/ {w=$2} /^BdiWritten:/ {n=$2}
    END {printf "%6.1f %9d %9d %9d  %s\n", t, d, w, n, what}' "$stats"
}
echo "     t  dirty_kB  wback_kB  written_kB"
sample "before dd"
dd if=/dev/zero of="$mnt/big" bs=1M count=200 status=none
sample "dd done"
for i in $(seq 1 400); do sleep 0.1; sample ""; done | awk '!seen[$2" "$3" "$4]++'
dd if=/dev/zero of="$mnt/big2" bs=1M count=200 status=none
sample "second dd done"
sync & while kill -0 $! 2>/dev/null; do sample "during sync"; sleep 0.01; done | awk '!seen[$2" "$3" "$4]++'
sample "after sync"
