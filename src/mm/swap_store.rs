//! Where a simulated partition keeps the bytes of its pages: a sparse,
//! unlinked file on the host's disk (in the swap directory, `/var/tmp`
//! unless `-o swapdir=DIR`), not the daemon's heap, so paging out 3 GiB
//! does not make a 3 GiB daemon. Zero pages cost nothing: only pages
//! written through `PID/mem` have bytes, and a slot's bytes are punched
//! out of the file when the slot is freed.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::types::PAGE_SIZE;

/// Page bytes as the simulation stores them.
pub type PageBytes = Box<[u8; PAGE_SIZE as usize]>;

/// Slots per chunk of the presence bitmap (8 KiB of bits).
const CHUNK_SLOTS: u64 = 1 << 16;
const WORDS: usize = (CHUNK_SLOTS / 64) as usize;

/// The default swap directory: on disk, not a tmpfs (which is RAM again).
pub const DEFAULT_SWAPDIR: &str = "/var/tmp";

/// The stored pages of one simulated partition. Host memory: one bit per
/// slot in 8 KiB chunks allocated on first use (≤ 32 KiB per simulated
/// GiB), plus the host's own caching of the file.
#[derive(Debug, Default)]
pub struct DiskStore {
    /// The backing file, created at the first page with bytes.
    file: Option<File>,
    /// Which slots hold bytes: chunk index → bits.
    present: BTreeMap<u64, Box<[u64; WORDS]>>,
    /// Slots holding bytes.
    count: u64,
}

/// Open an anonymous (already unlinked) file in `dir`.
fn create_unlinked(dir: &Path) -> std::io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
    {
        Ok(file) => Ok(file),
        Err(_) => {
            // File systems without O_TMPFILE: create a unique name, unlink it.
            for n in 0..1000u32 {
                let path: PathBuf = dir.join(format!(".mmfs-disk-{}-{n}", std::process::id()));
                match OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                {
                    Ok(file) => {
                        std::fs::remove_file(&path)?;
                        return Ok(file);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(std::io::Error::from_raw_os_error(libc::EEXIST))
        }
    }
}

impl DiskStore {
    /// Slots that hold bytes.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when no slot holds bytes.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True when `slot` holds bytes.
    pub fn contains(&self, slot: u64) -> bool {
        let (c, w, b) = Self::position(slot);
        self.present
            .get(&c)
            .is_some_and(|bits| bits[w] & (1 << b) != 0)
    }

    fn position(slot: u64) -> (u64, usize, u64) {
        let within = slot % CHUNK_SLOTS;
        // within < 2^16: the word index fits any usize.
        (slot / CHUNK_SLOTS, (within / 64) as usize, within % 64)
    }

    fn set(&mut self, slot: u64, on: bool) {
        let (c, w, b) = Self::position(slot);
        if on {
            let bits = self
                .present
                .entry(c)
                .or_insert_with(|| Box::new([0; WORDS]));
            if bits[w] & (1 << b) == 0 {
                bits[w] |= 1 << b;
                self.count += 1;
            }
        } else if let Some(bits) = self.present.get_mut(&c)
            && bits[w] & (1 << b) != 0
        {
            bits[w] &= !(1 << b);
            self.count -= 1;
            if bits.iter().all(|&x| x == 0) {
                self.present.remove(&c);
            }
        }
    }

    /// Store the bytes of `slot` in the backing file (created in `dir` on
    /// first use). On failure nothing is recorded.
    pub fn put(
        &mut self,
        dir: &Path,
        slot: u64,
        bytes: &[u8; PAGE_SIZE as usize],
    ) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(create_unlinked(dir)?);
        }
        let file = self.file.as_ref().expect("created above");
        file.write_all_at(bytes, slot * PAGE_SIZE)?;
        self.set(slot, true);
        Ok(())
    }

    /// Take the bytes of `slot` back (None: a zero page) and forget them.
    pub fn take_copy(&self, slot: u64) -> std::io::Result<Option<PageBytes>> {
        if !self.contains(slot) {
            return Ok(None);
        }
        let file = self.file.as_ref().expect("a slot with bytes has a file");
        let mut page: PageBytes = Box::new([0u8; PAGE_SIZE as usize]);
        file.read_exact_at(&mut page[..], slot * PAGE_SIZE)?;
        Ok(Some(page))
    }

    /// Read the consecutive slots from `first`, every one of which holds
    /// bytes, into `pages` (one page each, in order) in one host read
    /// (`preadv` straight into the pages: no buffer between).
    pub fn read_run_into(
        &self,
        first: u64,
        pages: &mut [&mut [u8; PAGE_SIZE as usize]],
    ) -> std::io::Result<()> {
        let file = self.file.as_ref().expect("a slot with bytes has a file");
        let offset = i64::try_from(first * PAGE_SIZE)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        let iov: Vec<libc::iovec> = pages
            .iter_mut()
            .map(|p| libc::iovec {
                iov_base: p.as_mut_ptr().cast(),
                iov_len: PAGE_SIZE as usize,
            })
            .collect();
        // At most IOV_MAX (1024) vectors a call; a readahead window is 32.
        let mut done = 0usize;
        for chunk in iov.chunks(1024) {
            // SAFETY: every iovec points at a distinct page of PAGE_SIZE
            // bytes borrowed mutably by `pages` for this whole call.
            let n = unsafe {
                libc::preadv(
                    file.as_raw_fd(),
                    chunk.as_ptr(),
                    chunk.len() as libc::c_int,
                    offset + (done as u64 * PAGE_SIZE) as i64,
                )
            };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let n = n as usize;
            if n < chunk.len() * PAGE_SIZE as usize {
                // A short read (rare on a regular file): the rest page by
                // page, each read to its end.
                let whole = n / PAGE_SIZE as usize;
                for (i, page) in pages[done + whole..].iter_mut().enumerate() {
                    let slot = first + (done + whole + i) as u64;
                    file.read_exact_at(&mut page[..], slot * PAGE_SIZE)?;
                }
                return Ok(());
            }
            done += chunk.len();
        }
        Ok(())
    }

    /// Read the bytes of `slot` and forget them.
    pub fn take(&mut self, slot: u64) -> std::io::Result<Option<PageBytes>> {
        if !self.contains(slot) {
            return Ok(None);
        }
        let file = self.file.as_ref().expect("a slot with bytes has a file");
        let mut page: PageBytes = Box::new([0u8; PAGE_SIZE as usize]);
        file.read_exact_at(&mut page[..], slot * PAGE_SIZE)?;
        self.discard(slot);
        Ok(Some(page))
    }

    /// Forget the bytes of `slot` and give their disk blocks back.
    pub fn discard(&mut self, slot: u64) {
        if !self.contains(slot) {
            return;
        }
        self.set(slot, false);
        if let Some(file) = &self.file {
            let offset = i64::try_from(slot * PAGE_SIZE).unwrap_or(i64::MAX);
            // SAFETY: fallocate on a file descriptor this store owns; a
            // failure only leaves stale bytes that are never read again.
            unsafe {
                libc::fallocate(
                    file.as_raw_fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    offset,
                    PAGE_SIZE as i64,
                );
            }
        }
    }

    /// Bytes of the backing file that hold data (its allocated blocks).
    pub fn disk_bytes(&self) -> u64 {
        self.file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_holes_are_punched() {
        let dir = std::env::temp_dir();
        let mut store = DiskStore::default();
        assert_eq!(store.take(5).unwrap(), None);
        let mut page = Box::new([0u8; PAGE_SIZE as usize]);
        page[0] = 7;
        page[4095] = 9;
        store.put(&dir, 5, &page).unwrap();
        store.put(&dir, (1 << 32) - 2, &page).unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.contains(5));
        assert_eq!(store.take(5).unwrap().unwrap()[..], page[..]);
        assert!(!store.contains(5));
        assert_eq!(store.take(5).unwrap(), None);
        store.discard((1 << 32) - 2);
        assert!(store.is_empty());
        assert!(store.present.is_empty(), "empty chunks are given back");
        // A 16 TiB sparse file holds next to nothing once punched.
        assert!(store.disk_bytes() <= 64 << 10, "{}", store.disk_bytes());
    }
}
