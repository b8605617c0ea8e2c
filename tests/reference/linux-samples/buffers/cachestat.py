#!/usr/bin/env python3
"""Print the page cache of a block device (Linux's Buffers of that disk):
cachestat(2) on the device node counts the pages of the bdev inode's mapping."""
import ctypes, os, sys
class Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]
class Stat(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")]
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDONLY)
r, s = Range(0, 0), Stat()
if libc.syscall(451, fd, ctypes.byref(r), ctypes.byref(s), 0) != 0:
    raise OSError(ctypes.get_errno(), "cachestat")
os.close(fd)
print(f"cache={s.nr_cache} dirty={s.nr_dirty} writeback={s.nr_writeback}")
