//! Swap areas (Linux: mm/swapfile.c): simulated partitions and real host
//! swap files, priorities, slot allocation, the swap header.
//!
//! A swap entry is (type, offset): `type` is the area's index in
//! `swap_info[]` (the order of swapon, freed indices reused), `offset` the
//! page slot in the area. Slot 0 holds the header and is never handed out.
//!
//! Host files: only the slot range of a file with a valid `SWAPSPACE2`
//! header is ever written, at byte offset `slot * 4096`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::{MmError, MmResult};
use super::types::{MmSlot, PAGE_SIZE, Vpn, ix};

pub use super::swap_store::PageBytes;
use super::swap_store::{DEFAULT_SWAPDIR, DiskStore};

/// Swap areas the kernel can hold at once (MAX_SWAPFILES on a typical
/// x86_64 config: 32 minus the special swap-entry types).
pub const MAX_SWAPFILES: usize = 29;
/// Highest explicit priority (SWAP_FLAG_PRIO_MASK).
pub const MAX_PRIORITY: i32 = 32767;
/// Offset of the version field in the header page.
const VERSION_OFFSET: usize = 1024;
/// Offset of the magic in a 4 KiB header page.
const MAGIC_OFFSET: usize = PAGE_SIZE as usize - 10;
/// The swap signature.
pub const SWAP_MAGIC: &[u8; 10] = b"SWAPSPACE2";
/// Largest number of bad pages the header can list.
pub const MAX_BADPAGES: usize = (PAGE_SIZE as usize - 1536 - 10) / 4;
/// Smallest area mkswap(8) accepts, in pages (40 KiB).
pub const MIN_SWAP_PAGES: u64 = 10;
/// Largest area mkswap(8) accepts, in pages.
pub const MAX_SWAP_PAGES: u64 = u32::MAX as u64;

const SLOT_FREE: u64 = 0;
const SLOT_UNUSABLE: u64 = u64::MAX;
/// A used slot's word: its owner + 1 in the low 56 bits, the references
/// beyond the first (`swap_map` count − 1, fork's `swap_duplicate`) in
/// bits 56..63 (bit 63 stays clear, so a word is never SLOT_UNUSABLE).
const SLOT_OWNER_MASK: u64 = (1 << 56) - 1;
const SLOT_COUNT_SHIFT: u32 = 56;
/// SWAP_MAP_MAX-like limit of references a slot can count here.
pub const SWAP_MAP_MAX: u64 = 128;
/// Slots per chunk of the slot map (512 KiB of host memory once used).
const CHUNK_SLOTS: u64 = 1 << 16;

/// The per-slot words of an area, in chunks allocated on first use, so an
/// area of 2^32 − 1 pages costs a few hundred KiB until pages go there,
/// and scans skip chunks that are empty or full.
#[derive(Debug)]
struct SlotMap {
    /// Slots in the area.
    max: u64,
    /// Chunk i holds slots [i × CHUNK_SLOTS, (i + 1) × CHUNK_SLOTS).
    chunks: Vec<Option<Box<[u64]>>>,
    /// Slots of each chunk that are not free (used, header or bad).
    taken: Vec<u32>,
}

impl SlotMap {
    fn new(max: u64) -> MmResult<SlotMap> {
        let count = max.div_ceil(CHUNK_SLOTS) as usize;
        let mut chunks = Vec::new();
        let mut taken = Vec::new();
        if chunks.try_reserve_exact(count).is_err() || taken.try_reserve_exact(count).is_err() {
            return Err(MmError::NoMemory(format!(
                "no host memory for a slot map of {max} slots"
            )));
        }
        chunks.resize_with(count, || None);
        taken.resize(count, 0);
        Ok(SlotMap { max, chunks, taken })
    }

    fn chunk_len(&self, chunk: usize) -> u64 {
        (self.max - chunk as u64 * CHUNK_SLOTS).min(CHUNK_SLOTS)
    }

    fn get(&self, slot: u64) -> u64 {
        let (c, i) = ((slot / CHUNK_SLOTS) as usize, (slot % CHUNK_SLOTS) as usize);
        self.chunks
            .get(c)
            .and_then(|ch| ch.as_ref())
            .map_or(SLOT_FREE, |ch| ch[i])
    }

    fn set(&mut self, slot: u64, value: u64) {
        let (c, i) = ((slot / CHUNK_SLOTS) as usize, (slot % CHUNK_SLOTS) as usize);
        if self.chunks[c].is_none() {
            if value == SLOT_FREE {
                return;
            }
            self.chunks[c] = Some(vec![SLOT_FREE; self.chunk_len(c) as usize].into_boxed_slice());
        }
        let chunk = self.chunks[c].as_mut().expect("allocated above");
        let old = std::mem::replace(&mut chunk[i], value);
        match (old == SLOT_FREE, value == SLOT_FREE) {
            (true, false) => self.taken[c] += 1,
            (false, true) => {
                self.taken[c] -= 1;
                if self.taken[c] == 0 {
                    // Give an all-free chunk's memory back.
                    self.chunks[c] = None;
                }
            }
            _ => {}
        }
    }

    /// The first free slot at or after `from`, wrapping to 1.
    fn next_free(&self, from: u64) -> Option<u64> {
        let start = from.clamp(1, self.max.max(1));
        self.free_in(start, self.max)
            .or_else(|| self.free_in(1, start))
    }

    fn free_in(&self, lo: u64, hi: u64) -> Option<u64> {
        let mut slot = lo;
        while slot < hi {
            let c = (slot / CHUNK_SLOTS) as usize;
            let chunk_end = ((c as u64 + 1) * CHUNK_SLOTS).min(hi);
            match &self.chunks[c] {
                None => return Some(slot),
                Some(_) if u64::from(self.taken[c]) == self.chunk_len(c) => {}
                Some(chunk) => {
                    let base = c as u64 * CHUNK_SLOTS;
                    let from = (slot - base) as usize;
                    let to = (chunk_end - base) as usize;
                    if let Some(i) = chunk[from..to].iter().position(|&v| v == SLOT_FREE) {
                        return Some(slot + i as u64);
                    }
                }
            }
            slot = chunk_end;
        }
        None
    }

    /// Used slots (not free, not header or bad) with their words, ascending.
    fn used(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().flat_map(move |chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v != SLOT_FREE && **v != SLOT_UNUSABLE)
                    .map(move |(i, v)| (c as u64 * CHUNK_SLOTS + i as u64, *v))
            })
        })
    }
}

/// The on-disk swap header (util-linux include/swapheader.h).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapHeader {
    /// Pages in the area minus one.
    pub last_page: u32,
    /// Page numbers of bad pages.
    pub badpages: Vec<u32>,
    /// Volume UUID.
    pub uuid: [u8; 16],
    /// Volume label (NUL padded).
    pub label: [u8; 16],
}

impl SwapHeader {
    /// A header as mkswap(8) writes it for an area of `pages` pages. The
    /// UUID is derived from `seed` (the path) so that runs are repeatable.
    pub fn new(pages: u64, seed: &str) -> SwapHeader {
        let mut uuid = [0u8; 16];
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (i, slot) in uuid.iter_mut().enumerate() {
            for b in seed.bytes().chain([i as u8]) {
                hash ^= b as u64;
                hash = hash.wrapping_mul(0x100_0000_01b3);
            }
            *slot = (hash >> 24) as u8;
        }
        // RFC 4122 version 4, variant 1, like libuuid's random UUIDs.
        uuid[6] = (uuid[6] & 0x0f) | 0x40;
        uuid[8] = (uuid[8] & 0x3f) | 0x80;
        SwapHeader {
            last_page: (pages - 1) as u32,
            badpages: Vec::new(),
            uuid,
            label: [0; 16],
        }
    }

    /// The bytes of the header page. mkswap writes bytes 1024..4096; the
    /// boot sector area is left as it was (zero in a new file).
    pub fn to_page(&self) -> PageBytes {
        let mut page: PageBytes = Box::new([0u8; PAGE_SIZE as usize]);
        page[VERSION_OFFSET..VERSION_OFFSET + 4].copy_from_slice(&1u32.to_ne_bytes());
        page[1028..1032].copy_from_slice(&self.last_page.to_ne_bytes());
        page[1032..1036].copy_from_slice(&(self.badpages.len() as u32).to_ne_bytes());
        page[1036..1052].copy_from_slice(&self.uuid);
        page[1052..1068].copy_from_slice(&self.label);
        for (i, bad) in self.badpages.iter().enumerate() {
            page[1536 + 4 * i..1540 + 4 * i].copy_from_slice(&bad.to_ne_bytes());
        }
        page[MAGIC_OFFSET..].copy_from_slice(SWAP_MAGIC);
        page
    }

    /// Parse a header page the way the kernel's `read_swap_header` does:
    /// the magic, version 1 (native or byte-swapped), a sane bad-page list.
    pub fn parse(page: &[u8]) -> MmResult<SwapHeader> {
        if page.len() < PAGE_SIZE as usize || &page[MAGIC_OFFSET..MAGIC_OFFSET + 10] != SWAP_MAGIC {
            return Err(MmError::Invalid(
                "Unable to find swap-space signature (no SWAPSPACE2 magic in the first page; run mkswap)".into(),
            ));
        }
        let word = |at: usize| u32::from_ne_bytes(page[at..at + 4].try_into().expect("4 bytes"));
        let swapped = word(VERSION_OFFSET).swap_bytes() == 1;
        let get = |at: usize| {
            if swapped {
                word(at).swap_bytes()
            } else {
                word(at)
            }
        };
        if get(VERSION_OFFSET) != 1 {
            return Err(MmError::Invalid(format!(
                "Unable to handle swap header version {}",
                word(VERSION_OFFSET)
            )));
        }
        let last_page = get(1028);
        let nr_badpages = get(1032) as usize;
        if last_page == 0 {
            return Err(MmError::Invalid("Empty swap-file (last_page is 0)".into()));
        }
        if nr_badpages > MAX_BADPAGES {
            return Err(MmError::Invalid(format!(
                "swap header lists {nr_badpages} bad pages, more than the {MAX_BADPAGES} that fit"
            )));
        }
        let badpages: Vec<u32> = (0..nr_badpages).map(|i| get(1536 + 4 * i)).collect();
        if badpages.iter().any(|&b| b == 0 || b > last_page) {
            return Err(MmError::Invalid(
                "swap header lists a bad page outside the area".into(),
            ));
        }
        Ok(SwapHeader {
            last_page,
            badpages,
            uuid: page[1036..1052].try_into().expect("16 bytes"),
            label: page[1052..1068].try_into().expect("16 bytes"),
        })
    }
}

/// BLOCK_EXT_MAJOR: block devices without a major of their own.
pub const BLOCK_EXT_MAJOR: u32 = 259;

/// `sdX` or `sdXN` (X a letter, N 1..=15): (disk index, partition number,
/// 0 for the whole disk). Other names (including partitions above 15,
/// which Linux numbers in BLOCK_EXT_MAJOR) are None.
pub fn sd_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("sd")?;
    let letter = *rest.as_bytes().first()?;
    if !letter.is_ascii_lowercase() {
        return None;
    }
    let index = u32::from(letter - b'a');
    let digits = &rest[1..];
    if digits.is_empty() {
        return Some((index, 0));
    }
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let part: u32 = digits.parse().ok().filter(|&p| (1..=15).contains(&p))?;
    Some((index, part))
}

/// The device number of disk `index`, partition `part` (`sd_major`:
/// 16 disks per major, 16 minors per disk).
pub fn sd_devt(index: u32, part: u32) -> (u32, u32) {
    let major = match index >> 4 {
        0 => 8,
        n => 64 + n,
    };
    (major, (index & 15) * 16 + part)
}

/// A simulated block device holding a swap signature (`mkswap /dev/NAME`).
#[derive(Debug)]
pub struct SimulatedDisk {
    /// Path, `/dev/NAME`.
    pub path: String,
    /// Block-device major number: 8 (SCSI_DISK0_MAJOR) for `sda`…`sdp`,
    /// 65 for `sdq`…`sdz`, 259 (BLOCK_EXT_MAJOR) for any other name.
    pub major: u32,
    /// Minor number: 16 × disk index + partition for `sdX[N]`, creation
    /// order among the others.
    pub minor: u32,
    /// Size in pages.
    pub pages: u64,
    /// Its header page.
    pub header: SwapHeader,
    /// Page contents stored on the device (only pages with bytes), in a
    /// sparse host file.
    pub stored: DiskStore,
    /// Completed I/O, as /proc/diskstats counts it.
    pub io: DiskIo,
    /// A spinning disk (`mkswap /dev/NAME SIZE rotational`): swap on it
    /// turns swap-in readahead from VMA-based to cluster readahead, as a
    /// device without QUEUE_FLAG_NONROT does (`nr_rotate_swap`).
    pub rotational: bool,
}

/// Sectors (512 bytes, the block layer's unit) in one page.
pub const SECTORS_PER_PAGE: u64 = PAGE_SIZE / 512;

/// The I/O a simulated disk completed (Linux: `struct disk_stats`). Every
/// swap page is one request of one page: nothing is merged, nothing is in
/// flight once a command returns. Times follow from the one cost table
/// ([`crate::mm::cputime::SWAP_PAGE_IO_NS`] per page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskIo {
    /// Reads completed (pages swapped in).
    pub reads: u64,
    /// Writes completed (pages swapped out).
    pub writes: u64,
}

impl DiskIo {
    /// Sectors read.
    pub fn read_sectors(&self) -> u64 {
        self.reads * SECTORS_PER_PAGE
    }

    /// Sectors written.
    pub fn write_sectors(&self) -> u64 {
        self.writes * SECTORS_PER_PAGE
    }

    /// Nanoseconds the disk spent reading.
    pub fn read_ns(&self) -> u64 {
        self.reads * super::cputime::SWAP_PAGE_IO_NS
    }

    /// Nanoseconds the disk spent writing.
    pub fn write_ns(&self) -> u64 {
        self.writes * super::cputime::SWAP_PAGE_IO_NS
    }

    /// The sum of two disks' counters (a whole disk and its partitions).
    pub fn add(&mut self, other: DiskIo) {
        self.reads += other.reads;
        self.writes += other.writes;
    }
}

/// Where an area keeps its pages.
#[derive(Debug)]
pub enum Backing {
    /// A simulated partition (its bytes live in the disk's map).
    Partition,
    /// A host regular file, written at slot × 4096.
    File(File),
    /// A file of the simulated root file system (`MOUNT/fs/`): slot N is
    /// the file's page N, written straight to its disk block, past the
    /// page cache, as Linux's swap-file I/O goes to the extents that
    /// swapon mapped. The block map is taken at swapon and cannot change
    /// while the area is on: the file may not shrink, be written or be
    /// unlinked (ETXTBSY, EPERM).
    Vfs {
        /// The file's inode number.
        ino: u32,
        /// Disk block of `/dev/sda1` of each slot (the swap extents).
        blocks: Vec<u64>,
    },
}

impl Backing {
    /// True for swap files (host or simulated), false for partitions:
    /// the `Type` column of /proc/swaps.
    pub fn is_file(&self) -> bool {
        !matches!(self, Backing::Partition)
    }
}

/// One active swap area (swap_info_struct).
#[derive(Debug)]
pub struct SwapInfo {
    /// Path as /proc/swaps prints it.
    pub path: String,
    /// (st_dev, st_ino) of a host swap file: one file, one area, whatever
    /// the path's spelling (Linux's S_SWAPFILE).
    pub file_id: Option<(u64, u64)>,
    /// Partition or file.
    pub backing: Backing,
    /// Priority.
    pub prio: i32,
    /// Usable pages (header and bad pages excluded): /proc/swaps Size.
    pub pages: u64,
    /// Slots in the area (last_page + 1, limited by the file size).
    pub max: u64,
    /// Used slots.
    pub inuse_pages: u64,
    /// Per slot: 0 free, u64::MAX header or bad, else the owner + 1
    /// (packed mm slot and virtual page, see [`pack_owner`]).
    slots: SlotMap,
    /// Next slot to try (next fit, like `cluster_next`).
    cursor: u64,
    /// False while swapoff is bringing pages back.
    pub writeok: bool,
    /// Not SWP_SOLIDSTATE: a partition made `rotational`, or a swap file
    /// (the `SS` of the "Adding …k swap" line is printed for partitions
    /// only, so files are taken to sit on a spinning disk, as this
    /// machine's swap file on its rotational vda did).
    pub rotational: bool,
}

impl SwapInfo {
    /// Free slots.
    pub fn free_pages(&self) -> u64 {
        self.pages - self.inuse_pages
    }

    /// The owner of a used slot.
    pub fn owner(&self, offset: u64) -> Option<(MmSlot, Vpn)> {
        if offset >= self.max {
            return None;
        }
        match self.slots.get(offset) {
            SLOT_FREE | SLOT_UNUSABLE => None,
            v => Some(unpack_owner((v & SLOT_OWNER_MASK) - 1)),
        }
    }

    /// References to a slot (`swap_count`): 0 when free.
    pub fn count(&self, offset: u64) -> u64 {
        if offset >= self.max {
            return 0;
        }
        match self.slots.get(offset) {
            SLOT_FREE | SLOT_UNUSABLE => 0,
            v => (v >> SLOT_COUNT_SHIFT) + 1,
        }
    }

    /// Used slots with their owners, ascending.
    pub fn used_slots(&self) -> Vec<(u64, (MmSlot, Vpn))> {
        self.slots
            .used()
            .map(|(i, v)| (i, unpack_owner((v & SLOT_OWNER_MASK) - 1)))
            .collect()
    }

    fn scan_swap_map_slots(&mut self, owner: u64) -> Option<u64> {
        if self.inuse_pages == self.pages {
            return None;
        }
        let offset = self.slots.next_free(self.cursor)?;
        self.slots.set(offset, owner + 1);
        self.inuse_pages += 1;
        self.cursor = offset + 1;
        Some(offset)
    }
}

/// Pack (mm slot, virtual page number) into a slot's owner word.
pub fn pack_owner(mm_slot: MmSlot, vpn: Vpn) -> u64 {
    (u64::from(mm_slot.0) << 40) | (vpn.0 & ((1 << 40) - 1))
}

/// Unpack an owner word.
pub fn unpack_owner(word: u64) -> (MmSlot, Vpn) {
    (MmSlot((word >> 40) as u32), Vpn(word & ((1 << 40) - 1)))
}

/// A swap entry: area type and slot offset (`swp_entry_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwapEntry {
    /// Index in swap_info[].
    pub area: u8,
    /// Page slot.
    pub offset: u64,
}

/// All swap state: areas, the priority list, simulated disks.
#[derive(Debug)]
pub struct SwapState {
    /// swap_info[]: active areas by type index.
    pub areas: Vec<Option<SwapInfo>>,
    /// Area indices in allocation order: priority descending, equal
    /// priorities in their round-robin order (swap_avail_head).
    avail: Vec<usize>,
    /// The last automatic priority handed out (least_priority).
    least_priority: i32,
    /// Simulated block devices by path.
    pub disks: BTreeMap<String, SimulatedDisk>,
    /// swapoff is bringing pages back: like Linux's `set_current_oom_origin`
    /// the swapoff itself, not another process, pays for a lack of memory.
    pub swapoff_running: bool,
    /// Where simulated partitions keep their pages' bytes.
    pub swapdir: PathBuf,
    /// The mountpoint of this daemon's own mount: host paths inside it are
    /// never touched (that would loop back into the daemon).
    pub own_mount: Option<PathBuf>,
    /// Swap I/O to files of the simulated file system, which the block
    /// layer counts on `/dev/sda1` (and so `sda`) with its other I/O.
    pub fs_io: DiskIo,
    /// The swap cache: pages that have a swap slot and are in memory.
    pub cache: super::swap_state::SwapCache,
}

/// Where a swap command's host PATH leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwapPath {
    /// A host path, its directories resolved.
    Host(PathBuf),
    /// A file of the simulated root file system, named by a path under
    /// `MOUNT/fs/`: its path inside the machine (`MOUNT/fs/a/b` is `/a/b`).
    Machine(String),
}

impl Default for SwapState {
    fn default() -> Self {
        SwapState {
            areas: Vec::new(),
            avail: Vec::new(),
            least_priority: -1,
            disks: BTreeMap::new(),
            swapoff_running: false,
            swapdir: PathBuf::from(DEFAULT_SWAPDIR),
            own_mount: None,
            fs_io: DiskIo::default(),
            cache: super::swap_state::SwapCache::default(),
        }
    }
}

/// Kind of path a swap command names.
fn is_device_path(path: &str) -> bool {
    path.starts_with("/dev/")
}

impl SwapState {
    /// Σ usable pages (SwapTotal).
    pub fn total_pages(&self) -> u64 {
        self.active().map(|a| a.pages).sum()
    }

    /// Σ free pages of areas that take writes (SwapFree counts all areas).
    pub fn free_pages(&self) -> u64 {
        self.active().map(|a| a.free_pages()).sum()
    }

    /// Active areas in swap_info order.
    pub fn active(&self) -> impl Iterator<Item = &SwapInfo> {
        self.areas.iter().flatten()
    }

    /// Index of the active area with this path.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.areas
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| a.path == path))
    }

    /// Index of the active area that is the host file `path` names, under
    /// whatever spelling or link (swapoff finds the file, as Linux does).
    /// None for device paths, paths inside the own mount and missing files.
    pub fn find_file(&self, path: &str) -> Option<usize> {
        if is_device_path(path) {
            return None;
        }
        let resolved = self.resolve_host_path(path).ok()?;
        let meta = std::fs::symlink_metadata(resolved).ok()?;
        let id = (meta.dev(), meta.ino());
        self.areas
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| a.file_id == Some(id)))
    }

    /// The active area on the simulated file system's inode `ino`
    /// (Linux's `IS_SWAPFILE(inode)`).
    pub fn find_ino(&self, ino: u32) -> Option<usize> {
        self.areas.iter().position(|a| {
            a.as_ref()
                .is_some_and(|a| matches!(a.backing, Backing::Vfs { ino: i, .. } if i == ino))
        })
    }

    /// True while inode `ino` of the simulated file system is an active
    /// swap file (`IS_SWAPFILE`): it may not be unlinked, renamed,
    /// written or shrunk.
    pub fn is_swapfile(&self, ino: u32) -> bool {
        self.find_ino(ino).is_some()
    }

    /// The disk block of `/dev/sda1` behind `entry` when its area is a
    /// file of the simulated file system.
    pub fn vfs_block(&self, entry: SwapEntry) -> Option<u64> {
        match &self.areas.get(ix(entry.area))?.as_ref()?.backing {
            Backing::Vfs { blocks, .. } => blocks.get(ix(entry.offset)).copied(),
            _ => None,
        }
    }

    /// True if some area can take a page now.
    pub fn has_free_slot(&self) -> bool {
        self.avail.iter().any(|&i| {
            let a = self.areas[i].as_ref().expect("avail lists active areas");
            a.writeok && a.inuse_pages < a.pages
        })
    }

    /// `mkswap /dev/NAME SIZE`: a simulated partition with a swap header.
    pub fn mkswap_partition(&mut self, path: &str, bytes: u64) -> MmResult<()> {
        let pages = check_swap_size(bytes)?;
        let name = &path["/dev/".len()..];
        if name.is_empty() || name.contains('/') || name.len() > 31 {
            return Err(MmError::Invalid(format!(
                "bad device name '{path}': expected /dev/NAME"
            )));
        }
        if let Some(disk) = self.disks.get(path) {
            if self.find(path).is_some() {
                return Err(MmError::Busy(format!(
                    "{path} is in use as swap; swapoff it first"
                )));
            }
            let _ = disk;
            return Err(MmError::Exists(format!("{path} already exists")));
        }
        let (major, minor) = match sd_name(name) {
            Some((index, part)) => {
                // A whole disk and its partitions cannot both be swap.
                let whole = format!("/dev/sd{}", (b'a' + index as u8) as char);
                let taken = if part == 0 {
                    self.disks
                        .keys()
                        .find(|p| p.len() > whole.len() && p.starts_with(&whole))
                        .filter(|p| sd_name(&p["/dev/".len()..]).is_some())
                        .cloned()
                } else {
                    self.disks.contains_key(&whole).then_some(whole.clone())
                };
                if let Some(other) = taken {
                    return Err(MmError::Exists(format!(
                        "{path}: {other} already uses disk {whole} (a whole disk or its partitions, not both)"
                    )));
                }
                sd_devt(index, part)
            }
            None => {
                let minor = self
                    .disks
                    .values()
                    .filter(|d| d.major == BLOCK_EXT_MAJOR)
                    .map(|d| d.minor + 1)
                    .max()
                    .unwrap_or(0);
                (BLOCK_EXT_MAJOR, minor)
            }
        };
        self.disks.insert(
            path.to_string(),
            SimulatedDisk {
                path: path.to_string(),
                major,
                minor,
                pages,
                header: SwapHeader::new(pages, path),
                stored: DiskStore::default(),
                io: DiskIo::default(),
                rotational: false,
            },
        );
        Ok(())
    }

    /// List bad pages in the header of a new simulated partition (1..=last_page).
    pub fn set_badpages(&mut self, path: &str, badpages: &[u32]) -> MmResult<()> {
        let disk = self
            .disks
            .get_mut(path)
            .ok_or_else(|| MmError::NotFound(format!("no simulated device {path}")))?;
        if let Some(bad) = badpages
            .iter()
            .find(|&&b| b == 0 || b > disk.header.last_page)
        {
            return Err(MmError::Invalid(format!(
                "bad page {bad} outside the area (pages 1..{})",
                disk.header.last_page
            )));
        }
        let mut list = badpages.to_vec();
        list.sort_unstable();
        list.dedup();
        disk.header.badpages = list;
        Ok(())
    }

    /// `mkswap PATH SIZE` for a host path: a new sparse file, mode 0600,
    /// with exactly the header mkswap(8) writes.
    pub fn mkswap_file(&mut self, path: &str, bytes: u64) -> MmResult<()> {
        if !path.starts_with('/') {
            return Err(MmError::Invalid(format!(
                "swap file path '{path}' must be absolute"
            )));
        }
        let pages = check_swap_size(bytes)?;
        let resolved = self.resolve_host_path(path)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&resolved)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => MmError::Exists(format!(
                    "{path} already exists; mkswap never overwrites a file"
                )),
                _ => MmError::Io(format!("cannot create {path}: {e}")),
            })?;
        let header = SwapHeader::new(pages, path).to_page();
        let result = file
            .set_len(pages * PAGE_SIZE)
            .and_then(|_| file.write_all_at(&header[VERSION_OFFSET..], VERSION_OFFSET as u64))
            .and_then(|_| file.sync_data());
        if let Err(e) = result {
            let _ = std::fs::remove_file(&resolved);
            return Err(MmError::Io(format!(
                "cannot write the swap header to {path}: {e}"
            )));
        }
        Ok(())
    }

    /// The core of `swapon` (`claim_swapfile`, `read_swap_header`,
    /// `enable_swap_info`). `prio` None means the kernel chooses.
    /// Returns the new area's index.
    pub fn enable_swap_info(&mut self, path: &str, prio: Option<i32>) -> MmResult<usize> {
        if self.find(path).is_some() {
            return Err(MmError::Busy(format!("{path} is already in use as swap")));
        }
        let (backing, header, max, file_id) = if is_device_path(path) {
            let disk = self.disks.get(path).ok_or_else(|| {
                MmError::NotFound(format!(
                    "no simulated device {path}; create it with mkswap {path} SIZE"
                ))
            })?;
            (Backing::Partition, disk.header.clone(), disk.pages, None)
        } else {
            let resolved = self.resolve_host_path(path)?;
            let (file, header, max, id) = open_swap_file(path, &resolved)?;
            if let Some(other) = self.active().find(|a| a.file_id == Some(id)) {
                return Err(MmError::Busy(format!(
                    "{path} is already in use as swap (it is the same file as {})",
                    other.path
                )));
            }
            claim_swapfile(&file, path)?;
            (Backing::File(file), header, max, Some(id))
        };
        self.add_area(path, backing, &header, max, file_id, prio)
    }

    /// The end of `swapon` for every kind of area: the slot map (header
    /// and bad pages unusable), a `swap_info[]` index, the priority and
    /// the place on the allocation list. `max` is what the device or file
    /// holds, in pages; `path` is what /proc/swaps shows.
    pub fn add_area(
        &mut self,
        path: &str,
        backing: Backing,
        header: &SwapHeader,
        max: u64,
        file_id: Option<(u64, u64)>,
        prio: Option<i32>,
    ) -> MmResult<usize> {
        let max = max.min(header.last_page as u64 + 1);
        let mut slots = SlotMap::new(max)?;
        slots.set(0, SLOT_UNUSABLE);
        let mut bad = 0;
        for &b in &header.badpages {
            if (b as u64) < max && slots.get(b as u64) == SLOT_FREE {
                slots.set(b as u64, SLOT_UNUSABLE);
                bad += 1;
            }
        }
        let pages = max - 1 - bad;
        let rotational = match backing {
            Backing::Partition => self.disks.get(path).is_some_and(|d| d.rotational),
            Backing::File(_) | Backing::Vfs { .. } => true,
        };
        if pages == 0 {
            return Err(MmError::Invalid(format!(
                "{path}: swap area has no usable pages"
            )));
        }
        let index = match self.areas.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.areas.len() < MAX_SWAPFILES => {
                self.areas.push(None);
                self.areas.len() - 1
            }
            None => {
                return Err(MmError::Permission(format!(
                    "all {MAX_SWAPFILES} swap slots are in use; swapoff one first"
                )));
            }
        };
        let prio = match prio {
            Some(p) => p,
            None => {
                self.least_priority -= 1;
                self.least_priority
            }
        };
        self.areas[index] = Some(SwapInfo {
            path: path.to_string(),
            file_id,
            backing,
            prio,
            pages,
            max,
            inuse_pages: 0,
            slots,
            cursor: 1,
            writeok: true,
            rotational,
        });
        // Insert behind every area of higher or equal priority.
        let at = self
            .avail
            .iter()
            .position(|&i| self.areas[i].as_ref().expect("active").prio < prio)
            .unwrap_or(self.avail.len());
        self.avail.insert(at, index);
        Ok(index)
    }

    /// Take an area off the allocation list (start of swapoff).
    pub fn disable(&mut self, index: usize) {
        if let Some(a) = self.areas[index].as_mut() {
            a.writeok = false;
        }
    }

    /// Put an area back after a failed swapoff.
    pub fn enable(&mut self, index: usize) {
        if let Some(a) = self.areas[index].as_mut() {
            a.writeok = true;
        }
    }

    /// Remove an empty area (end of swapoff), renumbering automatic
    /// priorities as Linux does: every area after it gets prio + 1.
    pub fn remove(&mut self, index: usize) {
        let area = self.areas[index].take().expect("active area");
        debug_assert_eq!(area.inuse_pages, 0);
        let position = self.avail.iter().position(|&i| i == index).expect("listed");
        self.avail.remove(position);
        if area.prio < 0 {
            for &i in &self.avail[position..] {
                if let Some(a) = self.areas[i].as_mut() {
                    a.prio += 1;
                }
            }
            self.least_priority += 1;
        }
        while self.areas.last().is_some_and(Option::is_none) {
            self.areas.pop();
        }
    }

    /// `get_swap_page`: a slot on the highest-priority area with room;
    /// equal priorities take turns slot by slot (the area is requeued
    /// behind its equals after each allocation).
    pub fn get_swap_page(&mut self, owner: u64) -> Option<SwapEntry> {
        for pos in 0..self.avail.len() {
            let index = self.avail[pos];
            let area = self.areas[index]
                .as_mut()
                .expect("avail lists active areas");
            if !area.writeok {
                continue;
            }
            let prio = area.prio;
            let Some(offset) = area.scan_swap_map_slots(owner) else {
                continue;
            };
            // plist_requeue: move behind the last area of the same priority.
            let mut end = pos + 1;
            while end < self.avail.len()
                && self.areas[self.avail[end]].as_ref().expect("active").prio == prio
            {
                end += 1;
            }
            self.avail[pos..end].rotate_left(1);
            return Some(SwapEntry {
                area: index as u8,
                offset,
            });
        }
        None
    }

    /// `swap_duplicate`: one more PTE holds `entry` (fork copied it, or
    /// reclaim unmapped a page several processes shared). False when the
    /// slot is not in use or already counts SWAP_MAP_MAX references.
    pub fn swap_duplicate(&mut self, entry: SwapEntry) -> bool {
        let Some(area) = self.area_mut(entry) else {
            return false;
        };
        let word = area.slots.get(entry.offset);
        if word == SLOT_FREE
            || word == SLOT_UNUSABLE
            || (word >> SLOT_COUNT_SHIFT) + 1 >= SWAP_MAP_MAX
        {
            return false;
        }
        area.slots.set(entry.offset, word + (1 << SLOT_COUNT_SHIFT));
        true
    }

    /// References to `entry`'s slot from page tables (`swap_count` of the
    /// `swap_map`, without SWAP_HAS_CACHE): 0 when free or when only the
    /// swap cache holds it.
    pub fn swap_count(&self, entry: SwapEntry) -> u64 {
        self.swap_map_count(entry) - u64::from(self.cache.lookup(entry).is_some())
    }

    /// Every reference to `entry`'s slot: page tables plus the swap
    /// cache's one (0 when free).
    pub fn swap_map_count(&self, entry: SwapEntry) -> u64 {
        self.areas
            .get(entry.area as usize)
            .and_then(Option::as_ref)
            .map_or(0, |a| a.count(entry.offset))
    }

    /// `nr_rotate_swap`: active areas on rotational devices. Any one of
    /// them makes swap-in use cluster readahead (`swap_use_vma_readahead`).
    pub fn nr_rotate_swap(&self) -> usize {
        self.active().filter(|a| a.rotational).count()
    }

    /// `vm_swap_full`: less than half of the swap space is free.
    pub fn vm_swap_full(&self) -> bool {
        self.free_pages() * 2 < self.total_pages()
    }

    /// Mark a new simulated partition as a spinning disk.
    pub fn set_rotational(&mut self, path: &str) -> MmResult<()> {
        let disk = self
            .disks
            .get_mut(path)
            .ok_or_else(|| MmError::NotFound(format!("no simulated device {path}")))?;
        disk.rotational = true;
        Ok(())
    }

    /// Record who holds `entry` now (for swapoff's walk), when its owner
    /// let go of one of several references.
    pub fn set_owner(&mut self, entry: SwapEntry, owner: u64) {
        if let Some(area) = self.area_mut(entry) {
            let word = area.slots.get(entry.offset);
            if word != SLOT_FREE && word != SLOT_UNUSABLE {
                area.slots
                    .set(entry.offset, (word & !SLOT_OWNER_MASK) | (owner + 1));
            }
        }
    }

    /// The active area of `entry`, if its offset lies inside.
    fn area_mut(&mut self, entry: SwapEntry) -> Option<&mut SwapInfo> {
        self.areas
            .get_mut(entry.area as usize)
            .and_then(Option::as_mut)
            .filter(|a| entry.offset < a.max)
    }

    /// `swap_free`: drop one reference to a slot; the last gives it back
    /// (bytes stored for it on a partition are dropped). Returns the
    /// references left (the swap-cache one included), so a caller need
    /// not look the slot up again.
    pub fn free_slot(&mut self, entry: SwapEntry) -> u64 {
        let Some(area) = self
            .areas
            .get_mut(entry.area as usize)
            .and_then(Option::as_mut)
        else {
            return 0;
        };
        if entry.offset >= area.max {
            return 0;
        }
        let slot = area.slots.get(entry.offset);
        if slot == SLOT_FREE || slot == SLOT_UNUSABLE {
            return 0;
        }
        if slot >> SLOT_COUNT_SHIFT > 0 {
            let left = slot - (1 << SLOT_COUNT_SHIFT);
            area.slots.set(entry.offset, left);
            return (left >> SLOT_COUNT_SHIFT) + 1;
        }
        area.slots.set(entry.offset, SLOT_FREE);
        area.inuse_pages -= 1;
        if matches!(area.backing, Backing::Partition)
            && let Some(disk) = self.disks.get_mut(&area.path)
        {
            disk.stored.discard(entry.offset);
        }
        0
    }

    /// Write a page to its slot. `bytes` None means the page was never
    /// written through `mem`: files get zeros, partitions store nothing.
    /// On failure the bytes come back with the error.
    pub fn write_page(
        &mut self,
        entry: SwapEntry,
        bytes: Option<PageBytes>,
    ) -> Result<(), (MmError, Option<PageBytes>)> {
        let area = self.areas[ix(entry.area)].as_ref().expect("active area");
        match &area.backing {
            Backing::Partition => {
                // Fields apart: the area's path borrows `areas`, the disk
                // `disks` (no path copy per page written).
                let path = &area.path;
                let disk = self
                    .disks
                    .get_mut(path)
                    .expect("partition of an active area");
                match bytes {
                    None => {
                        // A page nobody wrote bytes into: the simulated
                        // disk still does the write, the host stores nothing.
                        disk.stored.discard(entry.offset);
                        disk.io.writes += 1;
                        Ok(())
                    }
                    Some(bytes) => match disk.stored.put(&self.swapdir, entry.offset, &bytes) {
                        Ok(()) => {
                            disk.io.writes += 1;
                            Ok(())
                        }
                        Err(e) => Err((
                            MmError::Io(format!(
                                "write error on {path} slot {} (its pages live in {}): {e}",
                                entry.offset,
                                self.swapdir.display()
                            )),
                            Some(bytes),
                        )),
                    },
                }
            }
            Backing::File(file) => {
                const ZERO: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];
                let data: &[u8] = bytes.as_deref().map(|b| &b[..]).unwrap_or(&ZERO);
                debug_assert!(entry.offset >= 1 && entry.offset < area.max);
                match file.write_all_at(data, entry.offset * PAGE_SIZE) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        let err = MmError::Io(format!(
                            "write error on swap file {} slot {}: {e}",
                            area.path, entry.offset
                        ));
                        Err((err, bytes))
                    }
                }
            }
            Backing::Vfs { .. } => Err((vfs_backing_error(area), bytes)),
        }
    }

    /// Read a page back from its slot: None for an all-zero page. A read
    /// from a simulated partition counts in its disk's I/O.
    pub fn read_page(&mut self, entry: SwapEntry) -> MmResult<Option<PageBytes>> {
        let area = self.areas[ix(entry.area)].as_ref().expect("active area");
        if matches!(area.backing, Backing::Partition) {
            // A copy: the slot keeps its bytes while it stays allocated
            // (the swap cache keeps the slot after a swap-in, and a clean
            // page is then dropped without a new write).
            let path = &area.path;
            let Some(disk) = self.disks.get_mut(path) else {
                return Ok(None);
            };
            disk.io.reads += 1;
            return disk.stored.take_copy(entry.offset).map_err(|e| {
                MmError::Io(format!("read error on {path} slot {}: {e}", entry.offset))
            });
        }
        self.load_page(entry)
    }

    /// Take back the bytes of a page just written, without a disk read
    /// (pageout undoing its own write: Linux still has the page then).
    pub fn load_page(&mut self, entry: SwapEntry) -> MmResult<Option<PageBytes>> {
        let area = self.areas[ix(entry.area)].as_ref().expect("active area");
        match &area.backing {
            Backing::Partition => {
                // Fields apart, as in write_page: no path copy per page.
                let path = &area.path;
                match self.disks.get_mut(path) {
                    None => Ok(None),
                    Some(disk) => disk.stored.take(entry.offset).map_err(|e| {
                        MmError::Io(format!("read error on {path} slot {}: {e}", entry.offset))
                    }),
                }
            }
            Backing::File(file) => {
                let mut page: PageBytes = Box::new([0u8; PAGE_SIZE as usize]);
                file.read_exact_at(&mut page[..], entry.offset * PAGE_SIZE)
                    .map_err(|e| {
                        MmError::Io(format!(
                            "read error on swap file {} slot {}: {e}",
                            area.path, entry.offset
                        ))
                    })?;
                Ok(page.iter().any(|&b| b != 0).then_some(page))
            }
            Backing::Vfs { .. } => Err(vfs_backing_error(area)),
        }
    }
}

/// The disk store of a simulated file system's swap file is the kernel's
/// (`Kernel::swap_writepage`, `Kernel::swap_read_folio`), not this state's.
fn vfs_backing_error(area: &SwapInfo) -> MmError {
    MmError::Io(format!(
        "{}: a swap file of /dev/sda1 is read and written through the kernel's swap I/O",
        area.path
    ))
}

/// mkswap(8)'s size limits: 40 KiB to 2^32 - 1 pages.
pub(crate) fn check_swap_size(bytes: u64) -> MmResult<u64> {
    let pages = bytes / PAGE_SIZE;
    if pages < MIN_SWAP_PAGES {
        return Err(MmError::Invalid(
            "swap area needs to be at least 40 KiB".into(),
        ));
    }
    if pages > MAX_SWAP_PAGES {
        return Err(MmError::Invalid(
            "swap area may hold at most 2^32 - 1 pages".into(),
        ));
    }
    Ok(pages)
}

/// Open a host swap file: absolute path, no symlink, a regular file, a
/// valid header that fits the file, at least 10 pages, and no bad pages
/// (Linux refuses bad pages in files). `resolved` is `path` with its
/// directories resolved ([`SwapState::resolve_host_path`]). Returns the
/// file, its header, the pages the file holds and its (st_dev, st_ino).
fn open_swap_file(path: &str, resolved: &Path) -> MmResult<(File, SwapHeader, u64, (u64, u64))> {
    let meta = std::fs::symlink_metadata(resolved).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => MmError::NotFound(format!("{path} does not exist")),
        _ => MmError::Io(format!("cannot stat {path}: {e}")),
    })?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(MmError::Invalid(format!(
            "{path} is a symbolic link; swap files must be regular files"
        )));
    }
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_block_device() {
            "a host block device (only simulated /dev/ devices are used)"
        } else {
            "not a regular file"
        };
        return Err(MmError::Invalid(format!("{path} is {what}")));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(resolved)
        .map_err(|e| MmError::Io(format!("cannot open {path}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| MmError::Io(format!("cannot stat {path}: {e}")))?;
    let size = meta.len();
    let id = (meta.dev(), meta.ino());
    let mut page = vec![0u8; ix(PAGE_SIZE)];
    check_file_size(path, size)?;
    file.read_exact_at(&mut page, 0)
        .map_err(|e| MmError::Io(format!("cannot read the header of {path}: {e}")))?;
    let (header, pages) = check_file_header(path, &page, size)?;
    Ok((file, header, pages, id))
}

/// A swap file must hold at least its header page.
pub(crate) fn check_file_size(path: &str, size: u64) -> MmResult<()> {
    if size < PAGE_SIZE {
        return Err(MmError::Invalid(format!(
            "{path} is smaller than one page: no swap header"
        )));
    }
    Ok(())
}

/// The checks `swapon` makes of a swap *file*'s header page (a host file
/// or a file of the simulated file system alike): a valid header, no bad
/// pages (Linux refuses them in files), at least 10 pages, and no more
/// pages than the file of `size` bytes holds. Returns the header and the
/// pages the file holds.
pub(crate) fn check_file_header(path: &str, page: &[u8], size: u64) -> MmResult<(SwapHeader, u64)> {
    let header = SwapHeader::parse(page).map_err(|e| MmError::Invalid(format!("{path}: {e}")))?;
    if !header.badpages.is_empty() {
        return Err(MmError::Invalid(format!(
            "{path}: a swap file may not list bad pages (Linux refuses them)"
        )));
    }
    let header_pages = u64::from(header.last_page) + 1;
    if header_pages < MIN_SWAP_PAGES {
        return Err(MmError::Invalid(format!(
            "{path}: swap area of {header_pages} pages is below mkswap's 40 KiB (10 pages)"
        )));
    }
    if size / PAGE_SIZE < header_pages {
        return Err(MmError::Invalid(format!(
            "{path}: the file holds {} pages but its swap header says {header_pages} (truncated?)",
            size / PAGE_SIZE
        )));
    }
    Ok((header, size / PAGE_SIZE))
}

/// Hold an exclusive `flock` on a host swap file while it is active, so a
/// second mmfs (or anything else honouring the lock) cannot swap on it
/// too. Released when the area's file is closed at swapoff.
fn claim_swapfile(file: &File, path: &str) -> MmResult<()> {
    // SAFETY: flock on a descriptor owned by `file`.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Err(MmError::Busy(format!(
            "{path} is in use as swap by another process (another mmfs holds its lock)"
        )));
    }
    Err(MmError::Io(format!("cannot lock {path}: {err}")))
}

/// Most symbolic links one path may pass through (Linux's MAXSYMLINKS).
const MAXSYMLINKS: u32 = 40;

impl SwapState {
    /// Resolve a host path component by component, following symbolic
    /// links of directories, and refuse it (EINVAL) when it leads into this
    /// daemon's own mount. Each prefix is compared with the mountpoint
    /// before it is touched: a `stat` of anything inside the mount is
    /// itself a request to this daemon, which is busy with this command.
    /// The last component is not followed and need not exist.
    pub fn resolve_host_path(&self, path: &str) -> MmResult<PathBuf> {
        match self.locate(path)? {
            SwapPath::Host(resolved) => Ok(resolved),
            SwapPath::Machine(_) => Err(self.inside_error(path)),
        }
    }

    fn inside_error(&self, path: &str) -> MmError {
        let mnt = self.own_mount.as_deref().unwrap_or(Path::new("?"));
        MmError::Invalid(format!(
            "{path} lies inside this mount ({}): mmfs never opens its own files on the host, that would wait on itself; only files of the simulated file system under {}/fs/ can be swap files",
            mnt.display(),
            mnt.display()
        ))
    }

    /// Where a swap command's PATH leads: a host path (resolved as in
    /// [`SwapState::resolve_host_path`]), or, when it passes through this
    /// daemon's own mount into `fs/`, a file of the simulated root file
    /// system, named by its path inside the machine (`..` is resolved
    /// within the machine's tree; climbing out of `fs/` is refused).
    /// Anywhere else inside the mount is EINVAL. Nothing inside the
    /// mount is touched on the host.
    pub fn locate(&self, path: &str) -> MmResult<SwapPath> {
        use std::ffi::OsString;
        use std::path::Component;
        if !path.starts_with('/') {
            return Err(MmError::Invalid(format!(
                "swap file path '{path}' must be absolute"
            )));
        }
        let is_mount = |p: &Path| self.own_mount.as_deref() == Some(p);
        let mut pending: Vec<OsString> = Path::new(path)
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .rev()
            .collect();
        let mut resolved = PathBuf::from("/");
        if is_mount(&resolved) {
            return Err(self.inside_error(path));
        }
        let mut links = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            let candidate = resolved.join(&part);
            if is_mount(&candidate) {
                return self.machine_path(path, pending);
            }
            if pending.is_empty() {
                // The file itself: not followed (swap files may not be links).
                return Ok(SwapPath::Host(candidate));
            }
            let meta = std::fs::symlink_metadata(&candidate).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    MmError::NotFound(format!("{path}: {} does not exist", candidate.display()))
                }
                _ => MmError::Io(format!("cannot stat {}: {e}", candidate.display())),
            })?;
            if meta.file_type().is_symlink() {
                links += 1;
                if links > MAXSYMLINKS {
                    return Err(MmError::Invalid(format!(
                        "{path}: too many levels of symbolic links"
                    )));
                }
                let target = std::fs::read_link(&candidate).map_err(|e| {
                    MmError::Io(format!("cannot read {}: {e}", candidate.display()))
                })?;
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push(OsString::from("..")),
                        _ => {}
                    }
                }
            } else {
                resolved = candidate;
            }
        }
        Ok(SwapPath::Host(resolved))
    }

    /// The rest of a path that reached the mountpoint (`rest` reversed, as
    /// [`SwapState::locate`] keeps it): `fs/...` is a path of the
    /// simulated file system (it has no symbolic links, so `..` is
    /// lexical), anything else is refused.
    fn machine_path(&self, path: &str, mut rest: Vec<std::ffi::OsString>) -> MmResult<SwapPath> {
        if rest.pop().is_none_or(|first| first != "fs") {
            return Err(self.inside_error(path));
        }
        let mut parts: Vec<String> = Vec::new();
        while let Some(part) = rest.pop() {
            let part = part.into_string().map_err(|_| {
                MmError::Invalid(format!(
                    "{path}: names of the simulated file system are UTF-8"
                ))
            })?;
            if part == ".." {
                // Climbing out of fs/ leads back into the mount.
                if parts.pop().is_none() {
                    return Err(self.inside_error(path));
                }
            } else {
                parts.push(part);
            }
        }
        Ok(SwapPath::Machine(format!("/{}", parts.join("/"))))
    }
}

impl super::Kernel {
    /// `mkswap PATH SIZE`: a simulated partition for `/dev/` paths (on a
    /// spinning disk with `rotational`), a new host file otherwise.
    pub fn mkswap(
        &mut self,
        path: &str,
        bytes: u64,
        badpages: &[u32],
        rotational: bool,
    ) -> MmResult<()> {
        // The root file system lives on /dev/sda1 (SPEC §8): mkswap(8)
        // will not overwrite a mounted device, nor the disk holding it.
        if path == "/dev/sda" || path == "/dev/sda1" {
            return Err(MmError::Busy(format!(
                "{path} holds the mounted root file system (/dev/sda1); \
                 use another partition such as /dev/sda2, or another disk"
            )));
        }
        if is_device_path(path) {
            self.swap.mkswap_partition(path, bytes)?;
            if let Err(err) = self.swap.set_badpages(path, badpages) {
                self.swap.disks.remove(path);
                return Err(err);
            }
            if rotational {
                self.swap.set_rotational(path)?;
            }
            Ok(())
        } else if rotational {
            // A file's disk is what it is: swap files are taken to be on a
            // rotational one (no SS in the swapon line).
            Err(MmError::Invalid(
                "rotational is for simulated partitions (/dev/NAME): swap files already count as rotational"
                    .into(),
            ))
        } else if !badpages.is_empty() {
            Err(MmError::Invalid(
                "badpages= is for simulated partitions: Linux refuses swap files with bad pages"
                    .into(),
            ))
        } else {
            match self.swap.locate(path)? {
                SwapPath::Host(_) => self.swap.mkswap_file(path, bytes),
                SwapPath::Machine(inside) => self.mkswap_vfs(&inside, bytes),
            }
        }
    }

    /// `swapon PATH [prio=N]`, logging Linux's "Adding …k swap" line.
    pub fn swapon(&mut self, path: &str, prio: Option<i32>) -> MmResult<()> {
        let index = if is_device_path(path) {
            self.swap.enable_swap_info(path, prio)?
        } else {
            match self.swap.locate(path)? {
                SwapPath::Host(_) => self.swap.enable_swap_info(path, prio)?,
                SwapPath::Machine(inside) => self.swapon_vfs(&inside, prio)?,
            }
        };
        let area = self.swap.areas[index].as_ref().expect("just added");
        // SWP_SOLIDSTATE: everything but a rotational device.
        let flags = if area.rotational { "" } else { "SS" };
        // Extents and span as the file system mapped them (a simulated
        // file's blocks need not be contiguous); one extent otherwise.
        let (extents, span) = match &area.backing {
            Backing::Vfs { blocks, .. } => super::page_io::extents(blocks),
            _ => (1, area.max - 1),
        };
        let line = format!(
            "Adding {}k swap on {}.  Priority:{} extents:{extents} across:{}k {}",
            area.pages * 4,
            area.path,
            area.prio,
            span * 4,
            flags
        );
        self.printk(line);
        Ok(())
    }
}

impl super::Kernel {
    /// `swapoff PATH`: stop new writes to the area, bring every page back
    /// into memory (`try_to_unuse`: pages still in the swap cache are
    /// mapped from there, the others read; each leaves the swap cache),
    /// then remove it. ENOMEM when memory cannot hold them: the pages
    /// already read stay in memory and the area stays on.
    pub fn swapoff(&mut self, path: &str) -> MmResult<()> {
        let index = self
            .swap
            .find(path)
            .or_else(|| self.find_swapfile(path))
            .ok_or_else(|| MmError::NotFound(format!("{path} is not an active swap area")))?;
        self.swap.disable(index);
        let used = self.swap.areas[index]
            .as_ref()
            .expect("active")
            .used_slots();
        for (offset, owner) in used {
            let entry = SwapEntry {
                area: index as u8,
                offset,
            };
            self.swap.swapoff_running = true;
            let result = self.unuse_swap_entry(entry, owner);
            self.swap.swapoff_running = false;
            if let Err(err) = result {
                self.swap.enable(index);
                return Err(match err {
                    MmError::NoMemory(_) => MmError::NoMemory(format!(
                        "swapoff {path}: not enough memory to bring its pages back; it stays on"
                    )),
                    other => other,
                });
            }
        }
        if self.swap.areas[index].as_ref().expect("active").inuse_pages > 0 {
            // Slots whose recorded owner was stale: find their PTEs.
            self.swap.swapoff_running = true;
            let result = self.unuse_area_by_walk(index);
            self.swap.swapoff_running = false;
            let left = self.swap.areas[index].as_ref().expect("active").inuse_pages;
            if let Err(err) = result.and_then(|()| {
                if left > 0 {
                    Err(MmError::Busy(format!(
                        "swapoff {path}: {left} slots are still in use"
                    )))
                } else {
                    Ok(())
                }
            }) {
                self.swap.enable(index);
                return Err(match err {
                    MmError::NoMemory(_) => MmError::NoMemory(format!(
                        "swapoff {path}: not enough memory to bring its pages back; it stays on"
                    )),
                    other => other,
                });
            }
        }
        let vfs_ino = match &self.swap.areas[index].as_ref().expect("active").backing {
            Backing::Vfs { ino, .. } => Some(*ino),
            _ => None,
        };
        self.swap.remove(index);
        if let Some(ino) = vfs_ino {
            // Pages a mapping read while swap wrote past the cache may
            // be stale: the next read goes to the disk.
            self.invalidate_inode_pages(ino)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(devs: &[(&str, Option<i32>)]) -> SwapState {
        let mut s = SwapState::default();
        for (path, prio) in devs {
            s.mkswap_partition(path, 1 << 20).unwrap();
            s.enable_swap_info(path, *prio).unwrap();
        }
        s
    }

    fn prios(s: &SwapState) -> Vec<(String, i32)> {
        s.active().map(|a| (a.path.clone(), a.prio)).collect()
    }

    #[test]
    fn header_round_trip_and_size() {
        let h = SwapHeader::new(262144, "/swapfile");
        let page = h.to_page();
        assert_eq!(&page[4086..], b"SWAPSPACE2");
        let parsed = SwapHeader::parse(&page[..]).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(parsed.last_page, 262143);
        let mut bad = page.clone();
        bad[4086] = b'X';
        assert_eq!(
            SwapHeader::parse(&bad[..]).unwrap_err().errno(),
            libc::EINVAL
        );
    }

    #[test]
    fn byte_swapped_header_is_accepted() {
        let mut page = SwapHeader::new(100, "x").to_page();
        for at in [1024usize, 1028, 1032] {
            let v = u32::from_ne_bytes(page[at..at + 4].try_into().unwrap()).swap_bytes();
            page[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(SwapHeader::parse(&page[..]).unwrap().last_page, 99);
    }

    #[test]
    fn one_mib_partition_has_255_usable_pages() {
        let s = state_with(&[("/dev/sdb1", None)]);
        assert_eq!(s.total_pages(), 255);
    }

    #[test]
    fn default_priorities_count_down_and_renumber() {
        let mut s = state_with(&[("/dev/a", None), ("/dev/b", None), ("/dev/c", None)]);
        assert_eq!(
            prios(&s),
            [
                ("/dev/a".to_string(), -2),
                ("/dev/b".to_string(), -3),
                ("/dev/c".to_string(), -4)
            ]
        );
        let b = s.find("/dev/b").unwrap();
        s.remove(b);
        assert_eq!(
            prios(&s),
            [("/dev/a".to_string(), -2), ("/dev/c".to_string(), -3)]
        );
        // The freed swap_info slot is reused, the counter continues at -4.
        s.enable_swap_info("/dev/b", None).unwrap();
        assert_eq!(s.find("/dev/b"), Some(1));
        assert_eq!(s.areas[1].as_ref().unwrap().prio, -4);
    }

    #[test]
    fn highest_priority_first() {
        let mut s = state_with(&[("/dev/low", Some(1)), ("/dev/high", Some(10))]);
        for _ in 0..10 {
            let e = s.get_swap_page(0).unwrap();
            assert_eq!(s.areas[e.area as usize].as_ref().unwrap().path, "/dev/high");
        }
    }

    #[test]
    fn equal_priorities_take_turns_slot_by_slot() {
        let mut s = state_with(&[
            ("/dev/a", Some(5)),
            ("/dev/b", Some(5)),
            ("/dev/c", Some(1)),
        ]);
        let got: Vec<(u8, u64)> = (0..4)
            .map(|_| s.get_swap_page(0).map(|e| (e.area, e.offset)).unwrap())
            .collect();
        assert_eq!(got, [(0, 1), (1, 1), (0, 2), (1, 2)]);
    }

    #[test]
    fn full_area_falls_through_and_slot_zero_is_never_used() {
        let mut s = state_with(&[("/dev/a", Some(5)), ("/dev/b", Some(1))]);
        let mut seen = Vec::new();
        for _ in 0..300 {
            seen.push(s.get_swap_page(7).unwrap());
        }
        assert!(seen.iter().all(|e| e.offset != 0));
        assert_eq!(seen.iter().filter(|e| e.area == 0).count(), 255);
        assert_eq!(s.areas[0].as_ref().unwrap().free_pages(), 0);
        let first = seen[0];
        s.free_slot(first);
        assert_eq!(s.areas[0].as_ref().unwrap().free_pages(), 1);
        assert_eq!(s.get_swap_page(7).unwrap(), first);
    }

    #[test]
    fn bad_pages_of_a_partition_are_never_used() {
        let mut s = SwapState::default();
        s.mkswap_partition("/dev/bad", 1 << 20).unwrap();
        s.set_badpages("/dev/bad", &[1, 2, 200]).unwrap();
        s.enable_swap_info("/dev/bad", None).unwrap();
        assert_eq!(s.total_pages(), 252);
        let mut got = Vec::new();
        while let Some(e) = s.get_swap_page(0) {
            got.push(e.offset);
        }
        assert_eq!(got.len(), 252);
        assert!(!got.contains(&1) && !got.contains(&2) && !got.contains(&200) && !got.contains(&0));
        assert!(s.set_badpages("/dev/bad", &[256]).is_err());
    }

    #[test]
    fn the_largest_area_costs_little_until_used() {
        let mut s = SwapState::default();
        s.mkswap_partition("/dev/huge", (u32::MAX as u64) * 4096)
            .unwrap();
        s.enable_swap_info("/dev/huge", None).unwrap();
        assert_eq!(s.total_pages(), u32::MAX as u64 - 1);
        let a = s.get_swap_page(5).unwrap();
        let b = s.get_swap_page(6).unwrap();
        assert_eq!((a.offset, b.offset), (1, 2));
        let area = s.areas[0].as_ref().unwrap();
        assert_eq!(
            area.used_slots(),
            vec![(1, unpack_owner(5)), (2, unpack_owner(6))]
        );
        s.free_slot(a);
        s.free_slot(b);
        assert!(s.areas[0].as_ref().unwrap().used_slots().is_empty());
        s.remove(0);
    }

    #[test]
    fn next_fit_wraps_and_skips_full_chunks() {
        let mut s = SwapState::default();
        s.mkswap_partition("/dev/a", (CHUNK_SLOTS * 2 + 10) * 4096)
            .unwrap();
        s.enable_swap_info("/dev/a", None).unwrap();
        let total = s.total_pages();
        let mut got = Vec::new();
        while let Some(e) = s.get_swap_page(1) {
            got.push(e);
        }
        assert_eq!(got.len() as u64, total);
        // Free one early slot: the cursor is at the end, the search wraps.
        s.free_slot(got[100]);
        assert_eq!(s.get_swap_page(1).unwrap(), got[100]);
    }

    #[test]
    fn errors() {
        let mut s = state_with(&[("/dev/a", None)]);
        assert_eq!(
            s.enable_swap_info("/dev/a", None).unwrap_err().errno(),
            libc::EBUSY
        );
        assert_eq!(
            s.enable_swap_info("/dev/zz", None).unwrap_err().errno(),
            libc::ENOENT
        );
        assert_eq!(
            s.mkswap_partition("/dev/a", 1 << 20).unwrap_err().errno(),
            libc::EBUSY
        );
        assert_eq!(
            s.mkswap_partition("/dev/q", 36 << 10).unwrap_err().errno(),
            libc::EINVAL
        );
        assert_eq!(
            s.mkswap_file("relative/path", 1 << 20).unwrap_err().errno(),
            libc::EINVAL
        );
    }

    #[test]
    fn host_file_round_trip() {
        let dir = std::env::temp_dir().join(format!("mmfs-swapfile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("swap.img");
        let path = path.to_str().unwrap();
        let _ = std::fs::remove_file(path);
        let mut s = SwapState::default();
        s.mkswap_file(path, 1 << 20).unwrap();
        assert_eq!(
            s.mkswap_file(path, 1 << 20).unwrap_err().errno(),
            libc::EEXIST
        );
        let i = s.enable_swap_info(path, Some(3)).unwrap();
        assert_eq!(s.areas[i].as_ref().unwrap().pages, 255);
        let e = s.get_swap_page(1).unwrap();
        let mut page: PageBytes = Box::new([0u8; 4096]);
        page[..5].copy_from_slice(b"hello");
        s.write_page(e, Some(page.clone()))
            .map_err(|(e, _)| e)
            .unwrap();
        let raw = std::fs::read(path).unwrap();
        assert_eq!(
            &raw[e.offset as usize * 4096..e.offset as usize * 4096 + 5],
            b"hello"
        );
        assert_eq!(&raw[4086..4096], b"SWAPSPACE2");
        assert_eq!(s.read_page(e).unwrap().unwrap()[..], page[..]);
        // A symlink to it is refused.
        let link = dir.join("link.img");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(path, &link).unwrap();
        assert_eq!(
            s.enable_swap_info(link.to_str().unwrap(), None)
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
        // A file without a header is refused and never written.
        let plain = dir.join("plain.img");
        std::fs::write(&plain, vec![7u8; 65536]).unwrap();
        assert_eq!(
            s.enable_swap_info(plain.to_str().unwrap(), None)
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
        assert!(std::fs::read(&plain).unwrap().iter().all(|&b| b == 7));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn header_written_by_util_linux_mkswap_is_accepted() {
        let dir = std::env::temp_dir().join(format!("mmfs-mkswap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("real.img");
        std::fs::write(&path, vec![0u8; 4 << 20]).unwrap();
        let status = std::process::Command::new("mkswap")
            .arg(&path)
            .output()
            .expect("util-linux mkswap must be installed (Debian package util-linux)");
        assert!(status.status.success(), "mkswap failed: {status:?}");
        let mut s = SwapState::default();
        let i = s.enable_swap_info(path.to_str().unwrap(), None).unwrap();
        assert_eq!(s.areas[i].as_ref().unwrap().pages, 1023);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
