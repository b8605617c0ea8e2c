#!/bin/bash
# Buffers (the block device's page cache) of an ext4 file system on a loop
# device, on the real kernel: pages cached / dirty in the bdev mapping
# (cachestat(2) on the device node) and the disk's reads/writes (diskstats
# fields 4 and 8: sectors read/written), step by step. Run as root.
set -e
N=${N:-1000}
here=$(cd "$(dirname "$0")" && pwd)
img=$(mktemp /tmp/buffers-img.XXXXXX)
mnt=$(mktemp -d /tmp/buffers-mnt.XXXXXX)
truncate -s 1G "$img"
mkfs.ext4 -q -F -b 4096 -I 256 -i 16384 "$img"
dev=$(losetup -f --show "$img")
trap 'set +e; cd /; umount "$mnt" 2>/dev/null; losetup -d "$dev"; rm -rf "$img" "$mnt"' EXIT
mount "$dev" "$mnt"
name=$(basename "$dev")
show() {
  local st; st=$(python3 "$here/cachestat.py" "$dev")
  local io; io=$(awk -v d="$name" '$3==d {print "sect_read=" $6 " sect_written=" $10}' /proc/diskstats)
  printf '%-44s %s %s\n' "$1" "$st" "$io"
}
dumpe2fs -h "$dev" 2>/dev/null | grep -E '^(Inode count|Block count|Inodes per group|Inode size|Blocks per group|Journal size|Reserved GDT blocks|Inode blocks per group)'
show "after mount"
sync; echo 3 > /proc/sys/vm/drop_caches
show "sync; drop_caches 3 (mounted)"
mkdir "$mnt/d"
show "mkdir d"
sync; echo 3 > /proc/sys/vm/drop_caches
show "sync; drop_caches 3"
t0=$(date +%s.%N)
for i in $(seq -w 1 $N); do : > "$mnt/d/f$i"; done
show "create $N empty files in d"
echo "d: $(stat -c 'size=%s blocks=%b' "$mnt/d") (512-byte blocks)"
grep -E "^Buffers" /proc/meminfo
sleep 1
show "... 1 s later"
sleep 6
show "... 7 s later (after a 5 s journal commit)"
sync
show "sync"
echo 1 > /proc/sys/vm/drop_caches
show "drop_caches 1"
stat "$mnt"/d/* > /dev/null
show "stat all (inodes still in icache)"
echo 3 > /proc/sys/vm/drop_caches
show "drop_caches 3"
ls "$mnt/d" > /dev/null
show "ls d (readdir only)"
echo 3 > /proc/sys/vm/drop_caches
show "drop_caches 3"
stat "$mnt"/d/f0001 > /dev/null
show "stat 1 file"
stat "$mnt"/d/* > /dev/null
show "stat all $N files"
echo 2 > /proc/sys/vm/drop_caches
show "drop_caches 2 (inodes go, buffers stay)"
stat "$mnt"/d/* > /dev/null
show "stat all $N files again"
echo 3 > /proc/sys/vm/drop_caches
show "drop_caches 3"
head -c 10000 /dev/zero > "$mnt/d/f0001"
show "write 10000 bytes to f0001"
sync
show "sync"
mv "$mnt/d/f0002" "$mnt/d/g0002"
show "rename f0002"
rm "$mnt/d/f0003"
show "unlink f0003"
sync
show "sync"
rm -f "$mnt"/d/*
show "unlink all"
sync; echo 3 > /proc/sys/vm/drop_caches
show "sync; drop_caches 3"
umount "$mnt"
show "umount"
