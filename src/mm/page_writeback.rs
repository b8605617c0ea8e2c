//! Dirty pages and their write-back (Linux: mm/page-writeback.c,
//! fs/fs-writeback.c, `folio_end_writeback` of mm/filemap.c).
//!
//! Writing a page back is asynchronous, as on Linux: `writepage` clears
//! PG_dirty, sets PG_writeback and hands the page to the disk
//! (`folio_clear_dirty_for_io`, `__folio_start_writeback`, `submit_bio`);
//! the page counts in meminfo `Writeback` / vmstat `nr_writeback` until the
//! disk completes the write, [`SWAP_PAGE_IO_NS`] per page after the one
//! before it (the disk is one queue, served in order), on the simulated
//! clock. Completions are taken as time passes — at the end of every
//! command, on `tick` and the wall clock's ticks — and when someone waits
//! for them: fsync, `sync`, a writer above `dirty_ratio`, reclaim that
//! finds nothing but pages under writeback. Waiting moves the simulated
//! clock as iowait of the waiting task; nothing really sleeps. The
//! completion (`folio_end_writeback`) counts `nr_written` and the disk's
//! write (diskstats), clears PG_writeback and rotates a page that reclaim
//! marked PG_reclaim to the tail of the inactive list.
//!
//! The disk takes at most [`MAX_WRITEBACK_PAGES`] pages at once (the block
//! layer's request queue); the flusher submits while there is room and
//! goes on as completions make room, so Writeback stays within what a
//! real disk queue holds while Dirty drains.
//!
//! A page may be dirty and under writeback at once — dirtied again while
//! its write is in flight, which Linux allows for disks without stable
//! writes (ext4 on a plain disk): the flusher (WB_SYNC_NONE) skips it,
//! fsync and `sync` (WB_SYNC_ALL) wait for the write in flight and write
//! it again.
//!
//! Only the flusher writes page-cache pages (and fsync/sync/the writers
//! it throttles): reclaim never does (Linux 6.18's `pageout` returns
//! PAGE_ACTIVATE for file folios). It marks a dirty page PG_reclaim,
//! activates it and wakes the flusher when a whole batch it scanned was
//! dirty (`wakeup_flusher_threads(WB_REASON_VMSCAN)`).

use std::collections::VecDeque;

use super::Kernel;
use super::buffer::BDEV_INO;
use super::cputime::{ClockMode, SWAP_PAGE_IO_NS};
use super::error::{MmError, MmResult};
use super::page_alloc::{FLAG_ACTIVE, FLAG_DIRTY, FLAG_LRU};
use super::types::{PAGE_SIZE, Pfn};

/// Pages in flight to the disk at most: the block layer's queue. Linux
/// 6.18 on this machine, ext4 on a loop device, showed 16–56 MiB under
/// writeback at a time while `sync` wrote 400M
/// (tests/reference/linux-samples/writeback/dd-writeback.txt); 32 MiB.
pub const MAX_WRITEBACK_PAGES: usize = 8192;
/// The flusher refills the queue once it has drained to this: a
/// submitter blocked on a full queue is woken when requests free up in
/// batches, not one by one.
const REFILL_AT: usize = MAX_WRITEBACK_PAGES / 2;
/// Background writeback's chunk (`MIN_WRITEBACK_PAGES`, 4 MiB): the
/// flusher writes this much before it looks at the threshold again.
const MIN_WRITEBACK_PAGES: u64 = 1024;
/// Zones a machine may have (`MAX_NR_ZONES`): DMA, DMA32, Normal,
/// HighMem, Movable, Device.
pub const MAX_NR_ZONES: usize = 6;
/// HZ/10: the longest a reclaimer waits for writeback to make progress
/// (`reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK)`).
const THROTTLE_WRITEBACK_NS: u64 = 100_000_000;
/// Completions that end a reclaimer's throttle early: Linux wakes the
/// throttled tasks once SWAP_CLUSTER_MAX pages per waiter are written.
const THROTTLE_WRITTEN: u64 = super::vmscan::SWAP_CLUSTER_MAX;

/// One page write in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WbIo {
    /// When the disk completes it (simulated ns).
    done_ns: u64,
    /// The page: (inode, index) and its frame.
    ino: u32,
    index: u64,
    pfn: Pfn,
}

/// The flusher's work in progress (`struct wb_writeback_work`s queued on
/// the bdi): what it still has to submit once the queue has room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlusherWork {
    /// kupdate (`wb_check_old_data_flush`): the inodes first dirtied at or
    /// before this time.
    pub expired_before: Option<u64>,
    /// Background writeback: down to `dirty_background_ratio`.
    pub background: bool,
    /// Everything dirty (`wb_check_start_all`: `wakeup_flusher_threads`).
    pub all: bool,
}

impl FlusherWork {
    fn is_idle(&self) -> bool {
        *self == FlusherWork::default()
    }
}

/// The disk's write queue and the flusher's state.
#[derive(Clone, Debug, Default)]
pub struct Writeback {
    /// Writes in flight, in completion order (the disk serves them in
    /// turn, so the times never decrease).
    queue: VecDeque<WbIo>,
    /// When the disk finishes the last write queued.
    busy_until_ns: u64,
    /// The flusher's unfinished work.
    pub work: FlusherWork,
}

impl Writeback {
    /// Pages whose write is in flight.
    pub fn in_flight(&self) -> u64 {
        self.queue.len() as u64
    }

    /// When the next write completes, if one is in flight.
    pub fn next_completion(&self) -> Option<u64> {
        self.queue.front().map(|io| io.done_ns)
    }

    /// The frames whose write is in flight (PG_writeback), for migration
    /// to leave alone.
    pub fn pfns_in_flight(&self) -> impl Iterator<Item = Pfn> + '_ {
        self.queue.iter().map(|io| io.pfn)
    }

    fn room(&self) -> usize {
        MAX_WRITEBACK_PAGES.saturating_sub(self.queue.len())
    }
}

impl Kernel {
    /// `folio_mark_dirty`: the page of `ino` becomes dirty (again). The
    /// task dirtying it is charged the write (`folio_account_dirtied` →
    /// `task_io_account_write`), and a PG_reclaim mark from reclaim goes:
    /// the page is in use again.
    pub(crate) fn set_page_dirty(&mut self, ino: u32, pfn: Pfn) {
        if self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY) {
            return;
        }
        self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, true);
        let now = self.clock_ns;
        let index = self.page_alloc.frames.rmap(pfn).1.0;
        if let Ok(inode) = self.vfs.inode_mut(ino) {
            if inode.dirty.is_empty() {
                inode.dirtied_when_ns = now;
            }
            inode.dirty.insert(index);
            inode.reclaim.remove(&index);
        }
        if let Some(zone) = self.page_alloc.zone_of(pfn) {
            self.vfs.stats.zone_dirty[zone] += 1;
        }
        self.vfs.stats.nr_dirty += 1;
        self.vfs.stats.nr_dirtied += 1;
        self.trace_writeback_folio(true, ino, index);
        if let Some(io) = self.running_ioac() {
            io.write_bytes += PAGE_SIZE;
        }
    }

    /// The dirty bit of a page goes without a write (truncate, or the
    /// write being started).
    pub(crate) fn clear_page_dirty(&mut self, ino: u32, index: u64, pfn: Pfn) {
        if !self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY) {
            return;
        }
        self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, false);
        if let Ok(inode) = self.vfs.inode_mut(ino) {
            inode.dirty.remove(&index);
        }
        if let Some(zone) = self.page_alloc.zone_of(pfn) {
            self.vfs.stats.zone_dirty[zone] -= 1;
        }
        self.vfs.stats.nr_dirty -= 1;
    }

    /// Is page `index` of `ino` under writeback (PG_writeback)?
    pub fn page_under_writeback(&self, ino: u32, index: u64) -> bool {
        self.vfs
            .inode(ino)
            .is_ok_and(|i| i.writeback.contains(&index))
    }

    /// Start writing one dirty page of `ino` that is not under writeback
    /// (`folio_clear_dirty_for_io` + `__folio_start_writeback` +
    /// `submit_bio`): its block is allocated on first write (ENOSPC when
    /// the disk is full) and its bytes go to the disk store now; the page
    /// is clean and under writeback until the disk completes the write,
    /// after the writes queued before it (`at`: when it is submitted). A
    /// failure leaves the page dirty.
    fn writepage(&mut self, ino: u32, index: u64, pfn: Pfn, at: u64) -> MmResult<()> {
        // The disk's own cache (metadata) goes to its home block; only its
        // presence is modelled, not its bytes.
        if ino != BDEV_INO {
            let block = match self.vfs.inode(ino)?.blocks.get(&index) {
                Some(&b) => b,
                None => {
                    let b = self.vfs.alloc_block()?;
                    self.vfs.inode_mut(ino)?.blocks.insert(index, b);
                    b
                }
            };
            // A page dirtied through a mapping may still have its bytes on
            // the disk (lazy): its own block already holds them.
            let lazy = self.page_contents.lazy_block(pfn);
            if lazy.is_some() && lazy != Some(block) {
                self.folio_materialize(&[pfn])?;
            }
            if lazy != Some(block) {
                match self.page_contents.get(pfn) {
                    Some(bytes) => {
                        let dir = self.swap.swapdir.clone();
                        let bytes: [u8; PAGE_SIZE as usize] = **bytes;
                        self.vfs
                            .store
                            .put(&dir, block, &bytes)
                            .map_err(|e| MmError::Io(format!("/dev/sda1: write error: {e}")))?;
                    }
                    // A page of zeros is a hole on the disk.
                    None => self.vfs.store.discard(block),
                }
            }
            // folio_clear_dirty_for_io write-protects the mappings.
            self.page_mkclean(pfn);
        }
        self.clear_page_dirty(ino, index, pfn);
        self.vfs.inode_mut(ino)?.writeback.insert(index);
        if let Some(zone) = self.page_alloc.zone_of(pfn) {
            self.vfs.stats.zone_writeback[zone] += 1;
        }
        self.vfs.stats.nr_writeback += 1;
        // submit_bio counts the pages going out.
        self.events.pgpgout += PAGE_SIZE / 1024;
        let wb = &mut self.vfs.wb;
        let done_ns = wb.busy_until_ns.max(at) + SWAP_PAGE_IO_NS;
        wb.busy_until_ns = done_ns;
        wb.queue.push_back(WbIo {
            done_ns,
            ino,
            index,
            pfn,
        });
        Ok(())
    }

    /// `folio_end_writeback`: the disk has written page `index` of `ino`.
    /// It leaves PG_writeback and counts as written (NR_WRITTEN, the
    /// disk's completed writes); a page reclaim marked PG_reclaim while it
    /// was dirty or in flight goes to the tail of the inactive list
    /// (`folio_rotate_reclaimable`: `lru_move_tail`, PGROTATED) so the
    /// next scan frees it — unless it was dirtied again or is off the LRU.
    fn folio_end_writeback(&mut self, io: WbIo) {
        let Ok(inode) = self.vfs.inode_mut(io.ino) else {
            self.printk(format!(
                "BUG: writeback of inode {} page {} ended after the inode",
                io.ino, io.index
            ));
            return;
        };
        if !inode.writeback.remove(&io.index) {
            return;
        }
        let rotate = inode.reclaim.remove(&io.index);
        let cached = inode.pages.get(io.index) == Some(io.pfn);
        self.vfs.stats.nr_writeback -= 1;
        self.vfs.stats.nr_written += 1;
        self.vfs.stats.disk_writes += 1;
        let zone = self.page_alloc.zone_of(io.pfn);
        if let Some(zone) = zone {
            self.vfs.stats.zone_writeback[zone] -= 1;
        }
        let pfn = io.pfn;
        let frames = &mut self.page_alloc.frames;
        if rotate
            && cached
            && !frames.has_flag(pfn, FLAG_DIRTY)
            && frames.has_flag(pfn, FLAG_LRU)
            && let Some(zone) = zone
        {
            let lists = &mut self.lru.zones[zone];
            if frames.has_flag(pfn, FLAG_ACTIVE) {
                lists.active_file.remove(frames, pfn);
            } else {
                lists.inactive_file.remove(frames, pfn);
            }
            // lru_move_tail: PG_referenced stays (folio_check_references
            // reclaims an unmapped page that has it if clean).
            frames.set_flag(pfn, FLAG_ACTIVE, false);
            lists.inactive_file.push_tail(frames, pfn);
            self.vfs.stats.pgrotated += 1;
        }
    }

    /// Take the completions of the writes the disk has finished by `now`,
    /// in order; as the queue drains the flusher submits more of its
    /// work, at the time the room appeared.
    pub fn end_writeback_io(&mut self, now: u64) {
        while let Some(&io) = self.vfs.wb.queue.front() {
            if io.done_ns > now {
                break;
            }
            self.vfs.wb.queue.pop_front();
            self.folio_end_writeback(io);
            if self.vfs.wb.queue.len() <= REFILL_AT && !self.vfs.wb.work.is_idle() {
                self.flusher_submit_logged(io.done_ns);
            }
        }
    }

    /// Wait for the next write in flight to complete (`folio_wait_bit` on
    /// PG_writeback): the running task's iowait on the simulated clock.
    /// False when nothing is in flight.
    fn wait_one_writeback(&mut self) -> bool {
        let Some(done) = self.vfs.wb.next_completion() else {
            return false;
        };
        if done > self.clock_ns {
            self.account_iowait(done - self.clock_ns);
        }
        self.end_writeback_io(self.clock_ns);
        true
    }

    /// `folio_wait_writeback`: wait until page `index` of `ino` is no
    /// longer under writeback.
    pub(crate) fn folio_wait_writeback(&mut self, ino: u32, index: u64) {
        while self.page_under_writeback(ino, index) {
            self.trace_writeback_folio(false, ino, index);
            if !self.wait_one_writeback() {
                self.printk(format!(
                    "BUG: inode {ino} page {index} is under writeback with no write in flight"
                ));
                if let Ok(inode) = self.vfs.inode_mut(ino) {
                    inode.writeback.remove(&index);
                }
                return;
            }
        }
    }

    /// `truncate_inode_pages_range`'s wait: every page of `ino` from
    /// `first` on that is under writeback completes first (a page leaves
    /// the cache only once its write is done).
    pub(crate) fn wait_on_writeback_from(&mut self, ino: u32, first: u64) {
        while let Some(&index) = self
            .vfs
            .inode(ino)
            .ok()
            .and_then(|i| i.writeback.range(first..).next_back())
        {
            // The disk serves writes in order: once the last of them is
            // done, so are the others.
            self.folio_wait_writeback(ino, index);
        }
    }

    /// `reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK)`: reclaim found the
    /// pages it could free under writeback, so the reclaimer waits until
    /// SWAP_CLUSTER_MAX of the writes in flight complete or HZ/10 has
    /// passed (iowait of the reclaimer on the simulated clock). False when
    /// nothing is in flight: waiting cannot help.
    pub fn reclaim_throttle(&mut self) -> bool {
        if self.vfs.wb.queue.is_empty() {
            return false;
        }
        let deadline = self.clock_ns + THROTTLE_WRITEBACK_NS;
        let written = self.vfs.stats.nr_written;
        while self.vfs.stats.nr_written - written < THROTTLE_WRITTEN {
            match self.vfs.wb.next_completion() {
                Some(done) if done <= deadline => {
                    self.wait_one_writeback();
                }
                _ => {
                    self.account_iowait(deadline.saturating_sub(self.clock_ns));
                    self.end_writeback_io(self.clock_ns);
                    break;
                }
            }
        }
        true
    }

    /// `filemap_write_and_wait` (WB_SYNC_ALL) of `ino`, or of every inode
    /// (`sync`): write every dirty page — one whose earlier write is still
    /// in flight after that write completes — and wait until none of them
    /// is under writeback. The caller waits (iowait) while the disk works.
    fn write_and_wait(&mut self, only: Option<u32>) -> MmResult<()> {
        loop {
            self.end_writeback_io(self.clock_ns);
            let inos: Vec<u32> = match only {
                Some(ino) => vec![ino],
                None => self
                    .vfs
                    .iter()
                    .filter(|i| !i.dirty.is_empty())
                    .map(|i| i.ino)
                    .collect(),
            };
            let now = self.clock_ns;
            for ino in inos {
                for (index, pfn) in self.writable_pages(ino, self.vfs.wb.room())? {
                    self.writepage(ino, index, pfn, now)?;
                }
            }
            let busy = match only {
                Some(ino) => {
                    let inode = self.vfs.inode(ino)?;
                    !inode.dirty.is_empty() || !inode.writeback.is_empty()
                }
                None => self.vfs.stats.nr_dirty > 0 || !self.vfs.wb.queue.is_empty(),
            };
            if !busy {
                return Ok(());
            }
            // filemap_fdatawait_range / wait_sb_inodes: the task waits on
            // a page under writeback (folio_wait_writeback).
            let waited = match only {
                Some(ino) => self
                    .vfs
                    .inode(ino)
                    .ok()
                    .and_then(|i| i.writeback.first().copied())
                    .map(|index| (ino, index)),
                None => self.vfs.wb.queue.front().map(|io| (io.ino, io.index)),
            };
            if let Some((ino, index)) = waited {
                self.trace_writeback_folio(false, ino, index);
            }
            if !self.wait_one_writeback() {
                // Dirty pages left and nothing in flight: pages whose
                // dirty mark has no cached page, which writepage skips.
                return Ok(());
            }
        }
    }

    /// Up to `max` dirty pages of `ino` not under writeback, in file
    /// order.
    fn writable_pages(&self, ino: u32, max: usize) -> MmResult<Vec<(u64, Pfn)>> {
        let inode = self.vfs.inode(ino)?;
        Ok(inode
            .dirty
            .iter()
            .filter(|i| !inode.writeback.contains(i))
            .filter_map(|&i| inode.pages.get(i).map(|p| (i, p)))
            .take(max)
            .collect())
    }

    /// `filemap_write_and_wait`: every dirty page of `ino` to disk, waited
    /// for.
    pub fn writeback_inode(&mut self, ino: u32) -> MmResult<()> {
        self.write_and_wait(Some(ino))
    }

    /// `fsync`.
    pub fn vfs_fsync(&mut self, ino: u32) -> MmResult<()> {
        self.writeback_inode(ino)?;
        // ext4_sync_file: the running transaction commits (its buffers
        // are dirty then, for the flusher).
        self.jbd2_commit();
        Ok(())
    }

    /// `sync`: the journal commits, then every dirty page of every file
    /// and of the disk's cache is written, and the caller waits until the
    /// disk has written them all.
    pub fn ksys_sync(&mut self) -> MmResult<()> {
        self.jbd2_commit();
        self.write_and_wait(None)
    }

    /// `global_dirtyable_memory`: free pages plus the file LRUs, less the
    /// kernel's reserve.
    fn dirtyable_memory(&self) -> u64 {
        let x = self.page_alloc.total_free() + self.lru.active_file() + self.lru.inactive_file();
        x.saturating_sub(self.page_alloc.total_reserve_pages())
    }

    /// `domain_dirty_limits`: (background, limit) thresholds in pages.
    pub fn dirty_thresholds(&self) -> (u64, u64) {
        let dirtyable = self.dirtyable_memory();
        let limit = dirtyable * self.sysctl.dirty_ratio / 100;
        let mut background = dirtyable * self.sysctl.dirty_background_ratio / 100;
        if background >= limit {
            background = limit / 2;
        }
        (background, limit)
    }

    /// `balance_dirty_pages`: above `dirty_background_ratio` (dirty pages
    /// only: what is in flight does not count) the flusher is woken — on
    /// the simulated clock it gets its turn at once, as if on the other
    /// CPU (kswapd is treated alike). A writer that finds dirty plus
    /// writeback pages above `dirty_ratio` kicks the flusher itself and
    /// pauses (`io_schedule_timeout`: iowait on its CPU; nothing sleeps)
    /// until completions bring them an eighth below the limit, so the next
    /// pages do not stop again at once (Linux pauses a ratelimited batch).
    pub(crate) fn balance_dirty_pages(&mut self) -> MmResult<()> {
        self.end_writeback_io(self.clock_ns);
        let (background, limit) = self.dirty_thresholds();
        if self.vfs.stats.nr_dirty > background && self.clock_mode == ClockMode::Sim {
            self.vfs.wb.work.background = true;
            self.flusher_submit(self.clock_ns)?;
        }
        let pending = |k: &Kernel| k.vfs.stats.nr_dirty + k.vfs.stats.nr_writeback;
        if pending(self) <= limit {
            return Ok(());
        }
        self.vfs.wb.work.background = true;
        self.flusher_submit(self.clock_ns)?;
        let target = limit.saturating_sub(limit / 8);
        while pending(self) > target {
            if !self.wait_one_writeback() {
                break;
            }
        }
        // Pages the flusher could not write (a full disk) say so here.
        self.flusher_submit(self.clock_ns)
    }

    /// Submit the flusher's work while the disk queue has room: every
    /// dirty page for `all`, the expired inodes' pages for kupdate, and
    /// for background writeback until no more than `dirty_background_ratio`
    /// is dirty — oldest-dirtied inode first, each in file order, pages
    /// under writeback skipped (WB_SYNC_NONE). The work that is done is
    /// cleared; what the queue could not take stays for the next room.
    fn flusher_submit(&mut self, at: u64) -> MmResult<()> {
        let work = self.vfs.wb.work;
        // A full queue: nothing to do until completions make room (a
        // writer over the background ratio calls this for every page).
        if work.is_idle() || self.vfs.wb.room() == 0 {
            return Ok(());
        }
        let (background, _) = self.dirty_thresholds();
        let mut inos: Vec<(u64, u32)> = self
            .vfs
            .iter()
            .filter(|i| !i.dirty.is_empty())
            .map(|i| (i.dirtied_when_ns, i.ino))
            .collect();
        inos.sort_unstable();
        for (dirtied_when, ino) in inos {
            let expired = work.expired_before.is_some_and(|t| dirtied_when <= t);
            let room = self.vfs.wb.room();
            if room == 0 {
                return Ok(());
            }
            // Background writeback goes in chunks of MIN_WRITEBACK_PAGES
            // and checks the threshold after each (`wb_writeback`).
            let over = self.vfs.stats.nr_dirty.saturating_sub(background);
            let wanted = if work.all || expired {
                room
            } else if work.background && over > 0 {
                room.min(over.next_multiple_of(MIN_WRITEBACK_PAGES) as usize)
            } else {
                continue;
            };
            for (index, pfn) in self.writable_pages(ino, wanted)? {
                if let Err(e) = self.writepage(ino, index, pfn, at) {
                    // The disk is full or failing: the rest would fail
                    // alike; the pages stay dirty for the next try.
                    self.vfs.wb.work = FlusherWork::default();
                    return Err(e);
                }
            }
            if self.vfs.wb.room() == 0 {
                return Ok(());
            }
        }
        self.vfs.wb.work = FlusherWork::default();
        Ok(())
    }

    /// [`Self::flusher_submit`] where nobody waits for the answer: a lost
    /// write is logged (rate limited), as the kernel's async write errors.
    fn flusher_submit_logged(&mut self, at: u64) {
        if let Err(e) = self.flusher_submit(at) {
            let (print, _) = self.swap_write_ratelimit.allow(self.clock_ns);
            if print {
                self.printk(format!(
                    "Buffer I/O error on dev sda1, lost async page write: {e}"
                ));
            }
        }
    }

    /// The flusher (`wb_workfn`) as time passes (`tick`, the wall clock):
    /// the inodes dirty for longer than `dirty_expire_centisecs`
    /// (kupdate), then background writeback down to
    /// `dirty_background_ratio`, and whatever work is left over.
    pub fn wb_workfn(&mut self) {
        self.jbd2_tick();
        let expire = self.sysctl.dirty_expire_centisecs * 10_000_000;
        let now = self.clock_ns;
        let cutoff = now.saturating_sub(expire);
        if self
            .vfs
            .iter()
            .any(|i| !i.dirty.is_empty() && i.dirtied_when_ns <= cutoff)
        {
            self.vfs.wb.work.expired_before = Some(cutoff);
        }
        let (background, _) = self.dirty_thresholds();
        if self.vfs.stats.nr_dirty > background {
            self.vfs.wb.work.background = true;
        }
        self.flusher_submit_logged(now);
    }

    /// The flusher at the end of a command (as kswapd: on a real machine
    /// it works beside the writer): background writeback only, so a
    /// refused command, which dirtied nothing, never starts I/O.
    pub fn wb_background(&mut self) {
        let (background, _) = self.dirty_thresholds();
        if self.vfs.stats.nr_dirty > background {
            self.vfs.wb.work.background = true;
        }
        self.flusher_submit_logged(self.clock_ns);
    }

    /// `wakeup_flusher_threads(WB_REASON_VMSCAN)`: reclaim found only
    /// dirty pages nobody is writing; the flusher writes everything dirty.
    /// On the simulated clock it gets its turn at once (the other CPU); on
    /// the wall clock at its next tick.
    pub fn wakeup_flusher_threads(&mut self) {
        self.vfs.wb.work.all = true;
        if self.clock_mode == ClockMode::Sim {
            self.flusher_submit_logged(self.clock_ns);
        }
    }

    /// Check the writeback state against the page cache: every write in
    /// flight is a cached page under writeback, one write each, and the
    /// counters (per node and per zone) add up.
    pub fn check_writeback(&self) -> Result<(), String> {
        let mut writeback = 0;
        let mut zone_dirty = [0u64; MAX_NR_ZONES];
        let mut zone_writeback = [0u64; MAX_NR_ZONES];
        for inode in self.vfs.iter() {
            for &index in &inode.writeback {
                let Some(pfn) = inode.pages.get(index) else {
                    return Err(format!(
                        "inode {} page {index} is under writeback but not cached",
                        inode.ino
                    ));
                };
                if let Some(z) = self.page_alloc.zone_of(pfn) {
                    zone_writeback[z] += 1;
                }
            }
            for &index in &inode.dirty {
                let Some(pfn) = inode.pages.get(index) else {
                    return Err(format!(
                        "inode {} page {index} is marked dirty but not cached",
                        inode.ino
                    ));
                };
                if let Some(z) = self.page_alloc.zone_of(pfn) {
                    zone_dirty[z] += 1;
                }
            }
            writeback += inode.writeback.len() as u64;
        }
        let queued = self.vfs.wb.in_flight();
        if writeback != queued || writeback != self.vfs.stats.nr_writeback {
            return Err(format!(
                "{writeback} pages under writeback, {queued} writes in flight, counted {}",
                self.vfs.stats.nr_writeback
            ));
        }
        if zone_dirty != self.vfs.stats.zone_dirty
            || zone_writeback != self.vfs.stats.zone_writeback
        {
            return Err(format!(
                "per-zone dirty {zone_dirty:?} / writeback {zone_writeback:?}, counted {:?} / {:?}",
                self.vfs.stats.zone_dirty, self.vfs.stats.zone_writeback
            ));
        }
        let times: Vec<u64> = self.vfs.wb.queue.iter().map(|io| io.done_ns).collect();
        if times.windows(2).any(|w| w[0] > w[1]) {
            return Err("the disk's writes complete out of order".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::{Machine, Scope};
    use crate::mm::namei::{FileKind, ROOT_INO};
    use crate::mm::process::testing::boot_tmp as boot;

    /// A file of `pages` pages of bytes, written (dirty, nothing under
    /// writeback yet: the flusher is kept out by a high background ratio).
    fn dirty_file(k: &mut Machine, name: &str, pages: u64) -> u32 {
        let ino = k.vfs_create(ROOT_INO, name, FileKind::Regular).unwrap();
        k.filemap_write(ino, 0, &vec![b'w'; (pages * PAGE_SIZE) as usize])
            .unwrap();
        ino
    }

    fn wb(k: &Kernel) -> (u64, u64, u64) {
        let s = k.node_stats();
        (s.nr_dirty, s.nr_writeback, s.nr_written)
    }

    /// Start writing every dirty page the disk queue takes, as the
    /// flusher woken by reclaim does.
    fn start_all(k: &mut Machine) {
        k.vfs.wb.work.all = true;
        let now = k.clock_ns;
        k.flusher_submit(now).unwrap();
    }

    /// The scenario, as `dd bs=1M count=200` does it through
    /// `MOUNT/fs/` on a 1G machine with the default ratios: Dirty climbs,
    /// the flusher puts pages under writeback above the background ratio,
    /// the writer waits for the disk above dirty_ratio, and `sync` leaves
    /// neither dirty nor writeback pages. nr_written counts completions
    /// only: right after dd it lags what was submitted (Linux 6.18 showed
    /// 16 MiB under writeback while 72 MiB were written,
    /// tests/reference/linux-samples/writeback/dd-writeback.txt).
    #[test]
    fn a_200m_write_goes_dirty_then_under_writeback_and_sync_settles_both() {
        let mut k = boot(1 << 30);
        let ino = k.vfs_create(ROOT_INO, "big", FileKind::Regular).unwrap();
        let chunk = vec![0x5a; 1 << 20];
        let mut seen_writeback = 0;
        for i in 0..200u64 {
            k.vfs_call(|k| k.filemap_write(ino, i << 20, &chunk))
                .unwrap();
            seen_writeback = seen_writeback.max(k.node_stats().nr_writeback);
            k.check_invariants().unwrap();
        }
        let (dirty, writeback, written) = wb(&k);
        assert!(seen_writeback > 0 && writeback > 0, "{writeback}");
        assert!(seen_writeback <= MAX_WRITEBACK_PAGES as u64);
        assert!(dirty > 0);
        let (_, limit) = k.dirty_thresholds();
        // The writer paused until dirty + writeback fell below the limit.
        assert!(
            dirty + writeback <= limit + 256,
            "{dirty}+{writeback} > {limit}"
        );
        assert!(written > 0, "the disk completed writes while dd waited");
        assert_eq!(dirty + writeback + written, 51200 + bdev_pages(&k));
        // pgpgout counts at submission, nr_written at completion.
        assert_eq!(k.events.pgpgout / 4, written + writeback);
        // Time passes: the disk completes (100 µs a page), the flusher
        // refills its queue.
        k.execute_line(Scope::System, "tick 10").unwrap();
        let (_, _, later) = wb(&k);
        assert!(later >= written + 900, "{written} -> {later}");
        let iowait = k.sched.cpus[0].iowait_ns;
        k.execute_line(Scope::System, "sync").unwrap();
        assert_eq!(wb(&k).0, 0);
        assert_eq!(wb(&k).1, 0);
        assert_eq!(k.vfs.wb.in_flight(), 0);
        // sync waited for the disk: its iowait, 100 µs a page.
        assert!(k.sched.cpus[0].iowait_ns > iowait + 1_000_000_000);
        k.check_invariants().unwrap();
        let meminfo = crate::procfs::meminfo::meminfo(&k);
        assert!(
            meminfo.contains("\nWriteback:             0 kB\n"),
            "{meminfo}"
        );
    }

    /// Pages of the disk's own cache that were written or are dirty
    /// (metadata: the inode, bitmaps, journal).
    fn bdev_pages(k: &Kernel) -> u64 {
        k.vfs.stats.nr_dirtied - 51200
    }

    #[test]
    fn writeback_shows_in_meminfo_vmstat_and_zoneinfo_until_it_completes() {
        let mut k = boot(1 << 30);
        k.write_sysctl("vm/dirty_background_ratio", "50").unwrap();
        k.write_sysctl("vm/dirty_ratio", "60").unwrap();
        let ino = dirty_file(&mut k, "f", 100);
        start_all(&mut k);
        let (dirty, writeback, written) = wb(&k);
        assert_eq!((writeback, written), (dirty_before(&k, ino) + 100, 0));
        assert_eq!(dirty, 0);
        let meminfo = crate::procfs::meminfo::meminfo(&k);
        let kb = |key: &str| -> u64 {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap()
                .trim()
                .trim_end_matches(" kB")
                .parse()
                .unwrap()
        };
        assert_eq!(kb("Writeback:"), writeback * 4);
        let vmstat = crate::procfs::vmstat::vmstat(&k);
        assert!(vmstat.contains(&format!("\nnr_writeback {writeback}\n")));
        assert!(vmstat.contains(&format!("\nnr_zone_write_pending {writeback}\n")));
        let zoneinfo = crate::procfs::zoneinfo::zoneinfo(&k);
        assert!(zoneinfo.contains(&format!("nr_writeback {writeback}\n")));
        k.check_invariants().unwrap();
        // The disk takes 100 µs a page, in order: half the time, half done.
        let start = k.clock_ns;
        k.end_writeback_io(start + 50 * SWAP_PAGE_IO_NS);
        assert_eq!(wb(&k).2, 50);
        k.end_writeback_io(start + 1000 * SWAP_PAGE_IO_NS);
        assert_eq!(wb(&k), (0, 0, writeback));
        assert_eq!(k.vfs.stats.disk_writes, writeback);
        k.check_invariants().unwrap();
    }

    /// Dirty metadata pages of the disk's cache at the moment (created with
    /// the file, committed by nothing yet: 0).
    fn dirty_before(k: &Kernel, _ino: u32) -> u64 {
        k.vfs.inode(BDEV_INO).unwrap().writeback.len() as u64
    }

    /// Linux lets a page be dirtied again while its write is in flight
    /// (no stable writes on a plain disk): it is then dirty and under
    /// writeback at once, the flusher leaves it, and fsync waits for the
    /// write in flight before it writes the page again.
    #[test]
    fn a_page_dirtied_under_writeback_is_both_and_fsync_writes_it_again() {
        let mut k = boot(1 << 30);
        k.write_sysctl("vm/dirty_background_ratio", "50").unwrap();
        k.write_sysctl("vm/dirty_ratio", "60").unwrap();
        let ino = dirty_file(&mut k, "f", 1);
        start_all(&mut k);
        assert_eq!(wb(&k), (0, 1, 0));
        k.filemap_write(ino, 0, b"again").unwrap();
        assert_eq!(wb(&k), (1, 1, 0));
        assert!(k.page_under_writeback(ino, 0));
        k.check_invariants().unwrap();
        // WB_SYNC_NONE skips it.
        start_all(&mut k);
        assert_eq!(k.vfs.wb.in_flight(), 1);
        let iowait = k.sched.cpus[0].iowait_ns;
        k.vfs_fsync(ino).unwrap();
        k.flush_cputime();
        let inode = k.vfs.inode(ino).unwrap();
        assert!(inode.dirty.is_empty() && inode.writeback.is_empty());
        assert_eq!(wb(&k).2, 2);
        assert!(k.sched.cpus[0].iowait_ns - iowait >= SWAP_PAGE_IO_NS);
        assert_eq!(&k.filemap_read(ino, 0, 5).unwrap(), b"again");
        k.check_invariants().unwrap();
    }

    /// shrink_folio_list in 6.18: reclaim does not write file pages. A
    /// dirty page it meets is marked PG_reclaim (nr_vmscan_immediate_reclaim)
    /// and activated, a batch of nothing else wakes the flusher; pages
    /// under writeback are activated too, and rotated to the inactive tail
    /// when their write completes (pgrotated), where the next pass frees
    /// them. Nothing is written by reclaim itself (nr_vmscan_write 0).
    #[test]
    fn reclaim_leaves_dirty_pages_to_the_flusher_and_frees_them_once_written() {
        let mut k = boot(256 << 20);
        k.write_sysctl("vm/dirty_background_ratio", "50").unwrap();
        k.write_sysctl("vm/dirty_ratio", "60").unwrap();
        let ino = dirty_file(&mut k, "f", 4096);
        let cached = k.vfs.inode(ino).unwrap().pages.len();
        // Each round of memory.reclaim that frees nothing waits for 32
        // writes (reclaim_throttle), so 16 rounds may fall short: EAGAIN.
        let _ = k.execute_line(Scope::System, "reclaim 4M");
        let vmstat = |k: &Kernel, key: &str| -> u64 {
            crate::procfs::vmstat::vmstat(k)
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key} ")))
                .unwrap()
                .parse()
                .unwrap()
        };
        // get_scan_count at DEF_PRIORITY scans 4096 >> 12 = 1 page of the
        // list: the first batches are all dirty pages, marked PG_reclaim,
        // and wake the flusher, which puts the rest under writeback.
        assert!(vmstat(&k, "nr_vmscan_immediate_reclaim") > 0);
        assert_eq!(vmstat(&k, "nr_vmscan_write"), 0);
        assert!(vmstat(&k, "pgrotated") > 0);
        assert!(vmstat(&k, "nr_written") > 0, "the flusher wrote them");
        // Every page freed was first written by the flusher and rotated.
        let freed = cached - k.vfs.inode(ino).unwrap().pages.len();
        assert!(freed >= 128, "{freed}");
        assert_eq!(vmstat(&k, "pgsteal_file"), freed);
        assert!(vmstat(&k, "pgrotated") >= freed);
        k.check_invariants().unwrap();
        k.ksys_sync().unwrap();
        k.check_invariants().unwrap();
    }

    #[test]
    fn reclaim_activates_a_page_under_writeback_and_marks_it() {
        let mut k = boot(1 << 30);
        k.write_sysctl("vm/dirty_background_ratio", "50").unwrap();
        k.write_sysctl("vm/dirty_ratio", "60").unwrap();
        let ino = dirty_file(&mut k, "f", 2);
        start_all(&mut k);
        let pfn = k.vfs.inode(ino).unwrap().pages.get(0).unwrap();
        assert_eq!(
            k.reclaim_file_page(pfn),
            crate::mm::filemap::FileReclaim::Writeback { immediate: false }
        );
        assert!(k.vfs.inode(ino).unwrap().reclaim.contains(&0));
        // Dirtied again: the mark goes (the page is in use).
        k.filemap_write(ino, 0, b"x").unwrap();
        assert!(!k.vfs.inode(ino).unwrap().reclaim.contains(&0));
        k.ksys_sync().unwrap();
        k.check_invariants().unwrap();
    }

    /// truncate and unlink wait for the writes in flight
    /// (`truncate_inode_pages_range`), drop_caches leaves pages under
    /// writeback (`mapping_evict_folio`).
    #[test]
    fn truncate_waits_for_writeback_and_drop_caches_leaves_it() {
        let mut k = boot(1 << 30);
        k.write_sysctl("vm/dirty_background_ratio", "50").unwrap();
        k.write_sysctl("vm/dirty_ratio", "60").unwrap();
        let ino = dirty_file(&mut k, "f", 64);
        start_all(&mut k);
        assert_eq!(k.drop_pagecache(), 0);
        assert_eq!(k.vfs.inode(ino).unwrap().pages.len(), 64);
        let now = k.clock_ns;
        k.vfs_truncate(ino, 0).unwrap();
        assert_eq!(wb(&k).2, 64, "the writes completed first");
        assert!(k.clock_ns >= now + 64 * SWAP_PAGE_IO_NS - SWAP_PAGE_IO_NS);
        assert_eq!(k.vfs.inode(ino).unwrap().pages.len(), 0);
        k.check_invariants().unwrap();
        let ino = dirty_file(&mut k, "g", 8);
        start_all(&mut k);
        k.vfs_unlink(ROOT_INO, "g").unwrap();
        assert!(k.vfs.inode(ino).is_err());
        k.check_invariants().unwrap();
    }

    /// The disk queue holds MAX_WRITEBACK_PAGES: the flusher submits that
    /// much and goes on as completions make room.
    #[test]
    fn the_flusher_keeps_the_disk_queue_bounded() {
        let mut k = boot(1 << 30);
        k.write_sysctl("vm/dirty_background_ratio", "50").unwrap();
        k.write_sysctl("vm/dirty_ratio", "60").unwrap();
        dirty_file(&mut k, "f", 20_000);
        start_all(&mut k);
        assert_eq!(k.vfs.wb.in_flight(), MAX_WRITEBACK_PAGES as u64);
        assert!(k.vfs.wb.work.all, "work left for later");
        let now = k.clock_ns;
        k.end_writeback_io(now + 5000 * SWAP_PAGE_IO_NS);
        let (dirty, writeback, written) = wb(&k);
        assert_eq!(written, 5000);
        assert!(writeback <= MAX_WRITEBACK_PAGES as u64 && writeback > REFILL_AT as u64);
        assert_eq!(dirty + writeback + written, 20_000 + dirty_meta(&k));
        k.execute_line(Scope::System, "tick 300").unwrap();
        assert_eq!(wb(&k).1, 0);
        assert!(!k.vfs.wb.work.all);
        k.check_invariants().unwrap();
    }

    fn dirty_meta(k: &Kernel) -> u64 {
        k.vfs.stats.nr_dirtied - 20_000
    }
}
