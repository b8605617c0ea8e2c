//! Swap I/O and swap files on the simulated root file system (Linux:
//! mm/page_io.c `swap_writepage`, `swap_read_folio`, the file systems'
//! `swap_activate` — ext4's `iomap_swapfile_activate`).
//!
//! A swap file of `/dev/sda1` (`mkswap MOUNT/fs/swapfile 64M`, or a file
//! that `dd` and mkswap(8) made through `MOUNT/fs/`) is mapped at swapon:
//! its dirty pages are written back, its cached pages dropped, and the
//! disk block of every page recorded ([`Backing::Vfs`]). From then on slot
//! N is the file's page N, read and written at its block in the disk
//! store, past the page cache, and counted on `sda1` in /proc/diskstats.
//! While the area is on the file may not be unlinked or renamed (EPERM),
//! written or shrunk (ETXTBSY), as Linux 6.18 refuses it for `S_SWAPFILE`
//! inodes; its reads go straight to the disk, so none of its pages enters
//! the cache through read(2). Mappings follow Linux 6.18 too: a new
//! shared writable mapping is ETXTBSY, shared read-only and private ones
//! are allowed (their read faults do cache pages, clean ones, dropped
//! again at swapoff), and a write through a shared mapping made before
//! swapon is a SIGBUS.

use super::Kernel;
use super::cputime;
use super::error::{MmError, MmResult};
use super::namei::FileKind;
use super::page_alloc::FLAG_DIRTY;
use super::swapfile::{
    Backing, PageBytes, SwapEntry, SwapHeader, SwapPath, check_file_header, check_file_size,
    check_swap_size,
};
use super::types::{MmSlot, PAGE_SHIFT, PAGE_SIZE, Pfn, ix};

/// (extents, span in pages) of a swap file's blocks, as swapon logs them:
/// runs of consecutive blocks over the whole file, and the distance from
/// the lowest to the highest block of the usable pages (the header page
/// excluded, so a contiguous file spans its usable pages exactly, as the
/// real kernel prints `across:8188k` for an 8 MiB file).
pub fn extents(blocks: &[u64]) -> (u64, u64) {
    let runs = 1 + blocks.windows(2).filter(|w| w[1] != w[0] + 1).count() as u64;
    let usable = blocks.get(1..).unwrap_or(&[]);
    let span = match (usable.iter().min(), usable.iter().max()) {
        (Some(lo), Some(hi)) => hi - lo + 1,
        _ => 0,
    };
    (runs, span)
}

impl Kernel {
    /// Pages dirty in the cache that have no disk block yet: like ext4's
    /// delayed allocation they are promised blocks, which a new swap
    /// file may not take.
    fn delalloc_blocks(&self) -> u64 {
        self.vfs
            .iter()
            // The disk's cache writes to its own (metadata) blocks.
            .filter(|i| i.ino != super::buffer::BDEV_INO)
            .map(|i| {
                i.dirty
                    .iter()
                    .filter(|index| !i.blocks.contains_key(index))
                    .count() as u64
            })
            .sum()
    }

    /// `fallocate -l SIZE PATH && mkswap PATH` inside the machine (PATH as
    /// seen inside it): a new file of the simulated file system with a
    /// disk block for every page (a swap file may have no holes) and the
    /// header mkswap(8) writes, put straight on the disk. EEXIST if PATH
    /// exists, ENOSPC if the disk cannot hold it; on any failure nothing
    /// is left behind.
    pub fn mkswap_vfs(&mut self, path: &str, bytes: u64) -> MmResult<()> {
        let pages = check_swap_size(bytes)?;
        let (dir, name) = self.vfs_resolve_parent(path)?;
        if self.vfs_lookup(dir, name).is_ok() {
            return Err(MmError::Exists(format!(
                "{path} already exists; mkswap never overwrites a file"
            )));
        }
        let free = self
            .vfs
            .data_pages()
            .saturating_sub(self.vfs.blocks_used())
            .saturating_sub(self.delalloc_blocks());
        if pages > free {
            return Err(MmError::NoSpace(format!(
                "/dev/sda1: no space left on device for a swap file of {pages} pages ({free} blocks free)"
            )));
        }
        let ino = self.vfs_create(dir, name, FileKind::Regular)?;
        let header = SwapHeader::new(pages, path).to_page();
        if let Err(err) = self.fill_swapfile(ino, pages, &header) {
            // The name goes, and with its last link the blocks.
            self.vfs_unlink(dir, name)?;
            return Err(err);
        }
        Ok(())
    }

    /// Give the new file `ino` a block per page and write the header page.
    fn fill_swapfile(&mut self, ino: u32, pages: u64, header: &PageBytes) -> MmResult<()> {
        let mut blocks = std::collections::BTreeMap::new();
        for index in 0..pages {
            match self.vfs.alloc_block() {
                Ok(block) => {
                    blocks.insert(index, block);
                }
                Err(err) => {
                    for block in blocks.into_values() {
                        self.vfs.free_block(block);
                    }
                    return Err(err);
                }
            }
        }
        let first = blocks[&0];
        let now = self.clock_ns;
        let inode = self.vfs.inode_mut(ino)?;
        inode.blocks = blocks;
        inode.size = pages * PAGE_SIZE;
        inode.mtime_ns = now;
        let dir = self.swap.swapdir.clone();
        self.vfs
            .store
            .put(&dir, first, header)
            .map_err(|e| MmError::Io(format!("/dev/sda1: write error: {e}")))?;
        // mkswap's one page write, waited for (it fsyncs).
        self.vfs.stats.disk_writes += 1;
        self.account_iowait(cputime::SWAP_PAGE_IO_NS);
        Ok(())
    }

    /// The bytes of page `index` of `ino` as a read would see them, without
    /// a read: the cached page (dirty or not), else the disk block, else
    /// zeros.
    fn peek_file_page(&self, ino: u32, index: u64) -> MmResult<PageBytes> {
        let inode = self.vfs.inode(ino)?;
        // A lazy cached page's bytes are still its block's: read below.
        if let Some(pfn) = inode.pages.get(index)
            && self.page_contents.lazy_block(pfn).is_none()
        {
            return Ok(self
                .page_contents
                .get(pfn)
                .map(|b| Box::new(**b))
                .unwrap_or_else(|| Box::new([0; PAGE_SIZE as usize])));
        }
        let stored = match inode.blocks.get(&index) {
            Some(&block) => self
                .vfs
                .store
                .take_copy(block)
                .map_err(|e| MmError::Io(format!("/dev/sda1: read error: {e}")))?,
            None => None,
        };
        Ok(stored.unwrap_or_else(|| Box::new([0; PAGE_SIZE as usize])))
    }

    /// `swapon` of the file `path` of the simulated file system (path
    /// inside the machine): the checks Linux makes (a regular file, not
    /// on already, a valid header, no holes: EINVAL "has unallocated
    /// extents" as ext4's iomap_swapfile_activate says), then its dirty
    /// pages written back (swap_activate fsyncs), its cached pages dropped
    /// (swap I/O bypasses the cache) and its blocks mapped. Returns the
    /// new area's index.
    pub fn swapon_vfs(&mut self, path: &str, prio: Option<i32>) -> MmResult<usize> {
        let ino = self.vfs_resolve(path).map_err(|e| match e {
            MmError::NotFound(_) => MmError::NotFound(format!("{path} does not exist")),
            other => other,
        })?;
        let inode = self.vfs.inode(ino)?;
        if inode.kind == FileKind::Directory {
            return Err(MmError::Invalid(format!("{path} is a directory")));
        }
        if self.swap.is_swapfile(ino) {
            return Err(MmError::Busy(format!("{path} is already in use as swap")));
        }
        let size = inode.size;
        check_file_size(path, size)?;
        let page = self.peek_file_page(ino, 0)?;
        let (header, file_pages) = check_file_header(path, &page[..], size)?;
        // A dirty page without a block gets one at the writeback below.
        let inode = self.vfs.inode(ino)?;
        let has_hole = (0..size.div_ceil(PAGE_SIZE))
            .any(|i| !inode.blocks.contains_key(&i) && !inode.dirty.contains(&i));
        if has_hole {
            return Err(MmError::Invalid(format!(
                "swapon: file {path} has unallocated extents (a swap file may have no holes: \
                 fill it with dd, or make it with mkswap PATH SIZE)"
            )));
        }
        self.writeback_inode(ino)?;
        let max = file_pages.min(u64::from(header.last_page) + 1);
        let inode = self.vfs.inode(ino)?;
        let blocks: Option<Vec<u64>> = (0..max).map(|i| inode.blocks.get(&i).copied()).collect();
        let blocks = blocks.ok_or_else(|| {
            MmError::Invalid(format!("swapon: file {path} has unallocated extents"))
        })?;
        self.invalidate_inode_pages(ino)?;
        self.swap
            .add_area(path, Backing::Vfs { ino, blocks }, &header, max, None, prio)
    }

    /// Drop the clean cached pages of `ino` that no process maps
    /// (`invalidate_mapping_pages`). Pages still mapped (a mapping made
    /// before swapon) stay, clean and write-protected.
    pub(crate) fn invalidate_inode_pages(&mut self, ino: u32) -> MmResult<()> {
        let inode = self.vfs.inode(ino)?;
        let frames = &self.page_alloc.frames;
        let unmapped: Vec<(u64, Pfn)> = inode
            .pages
            .iter()
            .filter(|&(_, pfn)| frames.mapcount(pfn) == 0 && !frames.has_flag(pfn, FLAG_DIRTY))
            .collect();
        for (index, pfn) in unmapped {
            self.vfs.inode_mut(ino)?.pages.remove(index);
            self.delete_from_page_cache(ino, pfn);
        }
        Ok(())
    }

    /// A write fault on a shared mapping of an active swap file: Linux
    /// refuses the write notification (`page_mkwrite`) and the process
    /// gets SIGBUS (EFAULT here; it lives on).
    pub(crate) fn swapfile_sigbus(&self, slot: MmSlot, vpn: u64) -> MmError {
        let pid = self.procs.get(slot).map_or(0, |p| p.pid.0);
        MmError::Fault(format!(
            "SIGBUS: pid {pid} wrote {:#x}, a shared mapping of an active swap file",
            vpn << PAGE_SHIFT
        ))
    }

    /// The active area that `path` names when it is not the name /proc/swaps
    /// shows: a host file under any spelling, or a file of the simulated
    /// file system named through `MOUNT/fs/`.
    pub fn find_swapfile(&self, path: &str) -> Option<usize> {
        match self.swap.locate(path).ok()? {
            SwapPath::Host(_) => self.swap.find_file(path),
            SwapPath::Machine(inside) => self.swap.find_ino(self.vfs_resolve(&inside).ok()?),
        }
    }

    /// `swap_writepage`: a page to its slot. On a file of the simulated
    /// file system it goes to the file's block (a page never written
    /// through `mem` leaves the block reading as zeros); elsewhere to the
    /// area's own store. On failure the bytes come back with the error.
    pub(crate) fn swap_writepage(
        &mut self,
        entry: SwapEntry,
        bytes: Option<PageBytes>,
    ) -> Result<(), (MmError, Option<PageBytes>)> {
        let Some(block) = self.swap.vfs_block(entry) else {
            return self.swap.write_page(entry, bytes);
        };
        match &bytes {
            None => self.vfs.store.discard(block),
            Some(page) => {
                let dir = self.swap.swapdir.clone();
                if let Err(e) = self.vfs.store.put(&dir, block, page) {
                    let err = MmError::Io(format!(
                        "write error on /dev/sda1 block {block} (swap slot {}): {e}",
                        entry.offset
                    ));
                    return Err((err, bytes));
                }
            }
        }
        self.swap.fs_io.writes += 1;
        Ok(())
    }

    /// `swap_read_folio`: a page back from its slot (None: all zeros),
    /// counted as a disk read of its device.
    pub(crate) fn swap_read_folio(&mut self, entry: SwapEntry) -> MmResult<Option<PageBytes>> {
        let Some(block) = self.swap.vfs_block(entry) else {
            return self.swap.read_page(entry);
        };
        let bytes = self.read_swap_block(block, entry)?;
        self.swap.fs_io.reads += 1;
        Ok(bytes)
    }

    fn read_swap_block(&self, block: u64, entry: SwapEntry) -> MmResult<Option<PageBytes>> {
        self.vfs.store.take_copy(block).map_err(|e| {
            MmError::Io(format!(
                "read error on /dev/sda1 block {block} (swap slot {}): {e}",
                entry.offset
            ))
        })
    }

    /// A read of an active swap file (bytes `off..end`, within the file):
    /// straight from its blocks, so none of its pages enters the page
    /// cache while swap I/O bypasses it. Returns the bytes read.
    pub(crate) fn swapfile_read(
        &mut self,
        ino: u32,
        off: u64,
        end: u64,
        mut out: Option<&mut Vec<u8>>,
    ) -> MmResult<u64> {
        for index in off / PAGE_SIZE..end.div_ceil(PAGE_SIZE) {
            let block = self.vfs.inode(ino)?.blocks.get(&index).copied();
            let bytes = match block {
                Some(block) => {
                    self.account_iowait(cputime::SWAP_PAGE_IO_NS);
                    self.vfs.stats.disk_reads += 1;
                    self.events.pgpgin += PAGE_SIZE / 1024;
                    self.vfs
                        .store
                        .take_copy(block)
                        .map_err(|e| MmError::Io(format!("/dev/sda1: read error: {e}")))?
                }
                None => None,
            };
            self.account_system(cputime::TOUCH_PAGE_NS);
            let Some(out) = out.as_deref_mut() else {
                continue;
            };
            let page_start = index * PAGE_SIZE;
            let from = ix(off.max(page_start) - page_start);
            let to = ix(end.min(page_start + PAGE_SIZE) - page_start);
            match bytes {
                Some(page) => out.extend_from_slice(&page[from..to]),
                None => out.resize(out.len() + (to - from), 0),
            }
        }
        Ok(end - off)
    }

    /// Swap files of the simulated file system: the inode is there, none
    /// of its cached pages (only a mapping's reads bring any) is dirty,
    /// and its blocks are still those swapon mapped.
    pub fn check_swapfiles(&self) -> Result<(), String> {
        for area in self.swap.active() {
            let Backing::Vfs { ino, blocks } = &area.backing else {
                continue;
            };
            let inode = self
                .vfs
                .inode(*ino)
                .map_err(|_| format!("swap file {} (inode {ino}) is gone", area.path))?;
            if !inode.dirty.is_empty() {
                return Err(format!(
                    "swap file {} has {} dirty pages in the page cache",
                    area.path,
                    inode.dirty.len()
                ));
            }
            if blocks.len() as u64 != area.max
                || blocks
                    .iter()
                    .enumerate()
                    .any(|(i, b)| inode.blocks.get(&(i as u64)) != Some(b))
            {
                return Err(format!("swap file {} changed its blocks", area.path));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::namei::ROOT_INO;
    use crate::mm::process::testing::*;
    use crate::mm::types::Pid;

    /// A machine whose own mount is `MNT` (a path under the temp dir
    /// that does not exist: nothing below it is ever touched on the host)
    /// with one process, and the host path of `fs/NAME`.
    fn machine() -> (crate::ctl::Machine, Pid, String) {
        let (mut k, pid) = setup();
        let mnt = std::env::temp_dir().join("mmfs-page-io-unit-mnt");
        k.swap.own_mount = Some(mnt.clone());
        k.swap.swapdir = std::env::temp_dir();
        (k, pid, format!("{}/fs", mnt.display()))
    }

    fn swap_used(k: &Kernel) -> u64 {
        k.swap.active().map(|a| a.inuse_pages).sum()
    }

    #[test]
    fn mkswap_allocates_every_block_and_writes_the_header() {
        let (mut k, _pid, fs) = machine();
        let used = k.vfs.blocks_used();
        sys(&mut k, &format!("mkswap {fs}/swapfile 1M")).unwrap();
        let ino = k.vfs_resolve("/swapfile").unwrap();
        let inode = k.vfs.inode(ino).unwrap();
        assert_eq!(inode.size, 1 << 20);
        assert_eq!(inode.blocks.len(), 256, "no holes");
        assert!(inode.pages.is_empty(), "written to the disk, not cached");
        assert_eq!(k.vfs.blocks_used(), used + 256);
        let page = k.peek_file_page(ino, 0).unwrap();
        let header = SwapHeader::parse(&page[..]).unwrap();
        assert_eq!(header, SwapHeader::new(256, "/swapfile"));
        // Read back through the page cache, as `cat` would.
        let bytes = k.filemap_read(ino, 4086, 10).unwrap();
        assert_eq!(bytes, b"SWAPSPACE2");
        // EEXIST, and the file is left as it was.
        let err = sys(&mut k, &format!("mkswap {fs}/swapfile 2M")).unwrap_err();
        assert_eq!(err.errno(), libc::EEXIST);
        assert_eq!(k.vfs.inode(ino).unwrap().size, 1 << 20);
        // Elsewhere in the mount is EINVAL, as before.
        let mnt = fs.trim_end_matches("/fs");
        let err = sys(&mut k, &format!("mkswap {mnt}/swapfile 1M")).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
        let err = sys(&mut k, &format!("mkswap {fs}/../x 1M")).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
        // `..` stays inside the machine's tree.
        k.vfs_create(ROOT_INO, "d", FileKind::Directory).unwrap();
        sys(&mut k, &format!("mkswap {fs}/d/../second 1M")).unwrap();
        assert!(k.vfs_resolve("/second").is_ok());
    }

    #[test]
    fn mkswap_larger_than_the_disk_is_enospc_and_leaves_nothing() {
        let (mut k, _pid, fs) = machine();
        k.vfs.disk_pages = 1000;
        let (used, inodes) = (k.vfs.blocks_used(), k.vfs.nr_inodes());
        let err = sys(&mut k, &format!("mkswap {fs}/big 4M")).unwrap_err();
        assert_eq!(err.errno(), libc::ENOSPC);
        assert_eq!((k.vfs.blocks_used(), k.vfs.nr_inodes()), (used, inodes));
        assert!(k.vfs_resolve("/big").is_err());
        assert!(
            k.dmesg.last().unwrap().contains("mkswap"),
            "dmesg quotes it"
        );
    }

    #[test]
    fn swap_io_goes_to_the_files_blocks_and_counts_on_sda1() {
        let (mut k, pid, fs) = machine();
        sys(&mut k, &format!("mkswap {fs}/swapfile 4M")).unwrap();
        sys(&mut k, &format!("swapon {fs}/swapfile")).unwrap();
        let area = k.swap.active().next().unwrap();
        assert_eq!(area.path, "/swapfile");
        assert!(area.backing.is_file());
        assert_eq!(area.pages, 1023);
        let line = k.dmesg.last().unwrap().to_string();
        assert!(
            line.contains("Adding 4092k swap on /swapfile.  Priority:-2 extents:1 across:4092k"),
            "{line}"
        );
        run(&mut k, pid, "mmap 64K name=buf").unwrap();
        run(&mut k, pid, "touch buf 64K").unwrap();
        let a = addr(&k, pid, "buf");
        k.write_mem(pid, a + 5, b"hello swap file").unwrap();
        let (reads, writes) = (k.vfs.stats.disk_reads, k.vfs.stats.disk_writes);
        run(&mut k, pid, "madvise buf 64K pageout").unwrap();
        assert_eq!(swap_used(&k), 16);
        assert_eq!(k.swap.fs_io.writes, 16);
        assert_eq!(k.vfs.stats.disk_writes, writes, "not page-cache I/O");
        // The page with bytes is at its slot's block of the file.
        let mm_slot = k.procs.slot_of(pid).unwrap();
        let pte = k.pte(mm_slot, a / PAGE_SIZE);
        assert!(pte.is_swap(), "swapped out");
        let slot = pte.swp_entry();
        let ino = k.vfs_resolve("/swapfile").unwrap();
        let block = k.vfs.inode(ino).unwrap().blocks[&slot.offset];
        let stored = k.vfs.store.take_copy(block).unwrap().unwrap();
        assert_eq!(&stored[5..20], b"hello swap file");
        // Reading the active file goes around the cache.
        let bytes = k
            .filemap_read(ino, slot.offset * PAGE_SIZE + 5, 15)
            .unwrap();
        assert_eq!(bytes, b"hello swap file");
        assert!(k.vfs.inode(ino).unwrap().pages.is_empty());
        assert_eq!(k.vfs.stats.disk_reads, reads + 1);
        // Once the writes are done a second pageout drops the clean
        // pages; swap-in reads the block back (with cluster readahead:
        // a swap file counts as rotational).
        sys(&mut k, "tick").unwrap();
        run(&mut k, pid, "touch buf 64K read").unwrap();
        assert_eq!(k.swap.fs_io.reads, 0, "minor faults from the swap cache");
        run(&mut k, pid, "madvise buf 64K pageout").unwrap();
        assert!(k.swap.cache.is_empty());
        assert_eq!(k.swap.fs_io.writes, 16, "clean pages are not written again");
        let pswpin = k.events.pswpin;
        run(&mut k, pid, "touch buf 4K read").unwrap();
        assert_eq!(k.read_mem(pid, a + 5, 15).unwrap(), b"hello swap file");
        assert_eq!(k.swap.fs_io.reads, k.events.pswpin - pswpin);
        assert!(k.swap.fs_io.reads > 1, "read ahead");
        let text = crate::procfs::diskstats::diskstats(&k);
        let sda1: Vec<&str> = text
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some("sda1"))
            .unwrap()
            .split_whitespace()
            .collect();
        let swap_reads = k.swap.fs_io.reads;
        assert_eq!(sda1[3], (reads + 1 + swap_reads).to_string(), "{text}");
        assert_eq!(sda1[7], (writes + 16).to_string(), "{text}");
        // swapoff brings the rest back; the file is ordinary again.
        sys(&mut k, "swapoff /swapfile").unwrap();
        assert_eq!(mm(&k, pid).swap_ents, 0);
        assert_eq!(k.read_mem(pid, a + 5, 15).unwrap(), b"hello swap file");
        k.filemap_write(ino, 0, b"x").unwrap();
        sys(&mut k, &format!("mkswap {fs}/other 1M")).unwrap();
        k.vfs_unlink(ROOT_INO, "swapfile").unwrap();
    }

    /// The errnos measured on this machine's Linux 6.18 kernel (an 8 MiB
    /// swap file on ext4, swapon, then the calls): unlink EPERM, rename
    /// of or over it EPERM, write and O_TRUNC ETXTBSY, truncate to a
    /// smaller or the same size ETXTBSY, to a larger size allowed, read
    /// allowed; swapon of a file with holes EINVAL ("has unallocated
    /// extents"); a second swapon EBUSY.
    #[test]
    fn an_active_swap_file_is_protected_as_on_linux() {
        let (mut k, pid, fs) = machine();
        sys(&mut k, &format!("mkswap {fs}/sf 1M")).unwrap();
        sys(&mut k, &format!("swapon {fs}/sf prio=5")).unwrap();
        let err = sys(&mut k, &format!("swapon {fs}/sf")).unwrap_err();
        assert_eq!(err.errno(), libc::EBUSY);
        let ino = k.vfs_resolve("/sf").unwrap();
        k.vfs_create(ROOT_INO, "other", FileKind::Regular).unwrap();
        let errno = |r: MmResult<()>| r.unwrap_err().errno();
        assert_eq!(errno(k.vfs_unlink(ROOT_INO, "sf")), libc::EPERM);
        assert_eq!(
            errno(k.vfs_rename(ROOT_INO, "sf", ROOT_INO, "sf2")),
            libc::EPERM
        );
        assert_eq!(
            errno(k.vfs_rename(ROOT_INO, "other", ROOT_INO, "sf")),
            libc::EPERM
        );
        assert_eq!(errno(k.vfs_truncate(ino, 4096)), libc::ETXTBSY);
        assert_eq!(errno(k.vfs_truncate(ino, 1 << 20)), libc::ETXTBSY);
        assert_eq!(
            errno(k.filemap_write(ino, 0, b"x").map(drop)),
            libc::ETXTBSY
        );
        let err = run(&mut k, pid, "write /sf 0 4K").unwrap_err();
        assert_eq!(err.errno(), libc::ETXTBSY);
        assert!(k.dmesg.last().unwrap().contains("write /sf 0 4K"));
        k.vfs_truncate(ino, 2 << 20).unwrap();
        assert_eq!(k.filemap_read(ino, 4086, 10).unwrap(), b"SWAPSPACE2");
        k.check_invariants().unwrap();
        // Swapoff by the host path; then everything is allowed again.
        sys(&mut k, &format!("swapoff {fs}/sf")).unwrap();
        k.vfs_truncate(ino, 1 << 20).unwrap();
        k.vfs_rename(ROOT_INO, "sf", ROOT_INO, "sf2").unwrap();
        k.vfs_unlink(ROOT_INO, "sf2").unwrap();
    }

    #[test]
    fn files_with_holes_or_no_header_are_refused() {
        let (mut k, _pid, fs) = machine();
        // `truncate -s 1M` + a header written at the start: holes.
        let ino = k.vfs_create(ROOT_INO, "holey", FileKind::Regular).unwrap();
        k.vfs_truncate(ino, 1 << 20).unwrap();
        let header = SwapHeader::new(256, "x").to_page();
        k.filemap_write(ino, 0, &header[..]).unwrap();
        let err = sys(&mut k, &format!("swapon {fs}/holey")).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
        assert!(k.dmesg.last().unwrap().contains("has unallocated extents"));
        assert_eq!(k.swap.active().count(), 0);
        // Zeros everywhere (dd if=/dev/zero): no signature.
        let ino = k.vfs_create(ROOT_INO, "zeros", FileKind::Regular).unwrap();
        k.filemap_write(ino, 0, &vec![0; 1 << 20]).unwrap();
        let err = sys(&mut k, &format!("swapon {fs}/zeros")).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
        assert!(k.dmesg.last().unwrap().contains("signature"));
        // The header written through the cache (mkswap(8) through the
        // mount), still dirty: swapon writes it back and drops the pages.
        k.filemap_write(ino, 0, &header[..]).unwrap();
        assert!(!k.vfs.inode(ino).unwrap().dirty.is_empty());
        sys(&mut k, &format!("swapon {fs}/zeros")).unwrap();
        let inode = k.vfs.inode(ino).unwrap();
        assert!(inode.pages.is_empty() && inode.dirty.is_empty());
        assert_eq!(k.swap.active().next().unwrap().pages, 255);
        for missing in ["nope", "d/x"] {
            let err = sys(&mut k, &format!("swapon {fs}/{missing}")).unwrap_err();
            assert_eq!(err.errno(), libc::ENOENT, "{missing}");
        }
        let err = sys(&mut k, &format!("swapon {fs}")).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL, "the root directory");
    }

    /// Measured on this machine's Linux 6.18 kernel: on an active swap
    /// file mmap MAP_SHARED with PROT_WRITE is ETXTBSY, MAP_SHARED
    /// read-only and MAP_PRIVATE (written: copy on write) work; swapon
    /// succeeds while a shared writable mapping exists, and the next
    /// write through that mapping is a SIGBUS.
    #[test]
    fn mappings_of_an_active_swap_file_behave_as_on_linux() {
        let (mut k, pid, fs) = machine();
        sys(&mut k, &format!("mkswap {fs}/sf 1M")).unwrap();
        run(&mut k, pid, "mmap 8K file=/sf shared name=before").unwrap();
        run(&mut k, pid, "touch before 8K write").unwrap();
        sys(&mut k, &format!("swapon {fs}/sf")).unwrap();
        let ino = k.vfs_resolve("/sf").unwrap();
        let inode = k.vfs.inode(ino).unwrap();
        assert!(inode.dirty.is_empty(), "written back at swapon");
        assert_eq!(inode.pages.len(), 2, "mapped pages stay cached");
        run(&mut k, pid, "touch before 8K read").unwrap();
        let err = run(&mut k, pid, "touch before 4K write").unwrap_err();
        assert_eq!(err.errno(), libc::EFAULT);
        assert!(k.dmesg.last().unwrap().contains("SIGBUS"));
        let err = run(&mut k, pid, "mmap 8K file=/sf shared").unwrap_err();
        assert_eq!(err.errno(), libc::ETXTBSY);
        run(&mut k, pid, "mmap 8K file=/sf shared prot=r name=ro").unwrap();
        run(&mut k, pid, "touch ro 8K read").unwrap();
        run(&mut k, pid, "mmap 8K file=/sf name=private").unwrap();
        run(&mut k, pid, "touch private 8K write").unwrap();
        assert!(k.vfs.inode(ino).unwrap().dirty.is_empty());
        run(&mut k, pid, "munmap before 8K").unwrap();
        run(&mut k, pid, "munmap ro 8K").unwrap();
        run(&mut k, pid, "munmap private 8K").unwrap();
        sys(&mut k, "swapoff /sf").unwrap();
        assert!(k.vfs.inode(ino).unwrap().pages.is_empty(), "dropped");
        run(&mut k, pid, "mmap 8K file=/sf shared name=after").unwrap();
        run(&mut k, pid, "touch after 4K write").unwrap();
    }

    #[test]
    fn kill_frees_the_slots_and_extents_count_runs() {
        let (mut k, pid, fs) = machine();
        sys(&mut k, &format!("mkswap {fs}/sf 1M")).unwrap();
        sys(&mut k, &format!("swapon {fs}/sf")).unwrap();
        run(&mut k, pid, "mmap 32K name=b").unwrap();
        run(&mut k, pid, "touch b 32K").unwrap();
        run(&mut k, pid, "madvise b 32K pageout").unwrap();
        assert_eq!(swap_used(&k), 8);
        sys(&mut k, &format!("kill {}", pid.0)).unwrap();
        // The writes are in flight: the pages stay in the swap cache, and
        // hold their slots, until they complete and reclaim frees them.
        assert_eq!(swap_used(&k), 8);
        assert_eq!(k.swap.cache.len(), 8);
        sys(&mut k, "tick").unwrap();
        // Anon only. The slab shrinker's pages count as reclaimed too, and
        // get_scan_count scans a few pages of a short list per pass, so a
        // small reclaim may take a few rounds; completed writes were
        // rotated to the tail, so these pages go first.
        for _ in 0..64 {
            if k.swap.cache.is_empty() {
                break;
            }
            let _ = sys(&mut k, "reclaim 32K swappiness=max");
        }
        assert_eq!(swap_used(&k), 0);
        assert!(k.swap.cache.is_empty());
        sys(&mut k, "swapoff /sf").unwrap();
        assert_eq!(extents(&[7, 8, 9, 10]), (1, 3));
        assert_eq!(extents(&[7, 3, 4, 9]), (3, 7));
        assert_eq!(extents(&[7]), (1, 0));
    }
}
