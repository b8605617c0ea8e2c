//! Bytes of simulated pages. Only pages written through `PID/mem` or a
//! file write, or read from a disk block that holds bytes, carry them;
//! every other page reads as zeros, so host memory stays small. The bytes
//! move with the page to swap and back.
//!
//! The bytes live in one 4 KiB slot per frame, in chunks of
//! [`CHUNK_PAGES`] frames allocated (zeroed, untouched: the host maps
//! nothing until a slot is written) the first time a frame of the chunk
//! gets bytes. A frame's slot never moves, so a readahead reads from the
//! disk straight into it, and the slots of freed pages are reused by the
//! next owners of the frames: no malloc, free or host page fault per page,
//! and 1 bit of bookkeeping per frame of a chunk (which slots hold bytes).
//! Chunks stay once allocated: the host memory of page bytes is at most
//! that of the frames that ever held bytes, as the heap's was.
//!
//! A page-cache page read from a disk block that holds bytes may be
//! *lazy*: it records the block (4 bytes) and its slot is filled from the
//! disk store only when someone looks at or changes its bytes
//! (`Kernel::folio_materialize`, mm/filemap.rs), so a readahead miss
//! costs no host copy. [`PageContents::get`] does not see a lazy page's
//! bytes: every reader of page-cache bytes materializes first.

use std::ops::{Deref, DerefMut};

use super::Kernel;
use super::swapfile::PageBytes;
use super::types::{PAGE_SIZE, Pfn};

/// Frames per chunk of slots (2 MiB of bytes).
pub const CHUNK_PAGES: usize = 512;
const WORDS: usize = CHUNK_PAGES / 64;

/// The bytes of one page, in its frame's slot. Dereferences to the byte
/// array, as a [`PageBytes`] box does.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct PageSlot(pub [u8; PAGE_SIZE as usize]);

impl Deref for PageSlot {
    type Target = [u8; PAGE_SIZE as usize];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for PageSlot {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl std::fmt::Debug for PageSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageSlot(..)")
    }
}

/// The slots of [`CHUNK_PAGES`] consecutive frames and which hold bytes.
struct Chunk {
    slots: Box<[PageSlot]>,
    present: [u64; WORDS],
    /// Frames whose bytes are still their disk block's (see
    /// [`PageContents::set_lazy`]).
    lazy: [u64; WORDS],
    /// Those frames' disk blocks; allocated with the first lazy frame.
    blocks: Vec<u32>,
}

impl Chunk {
    fn new() -> Box<Chunk> {
        // Zeroed by the allocator (calloc: fresh mappings, not written), so
        // the host gives memory only to the slots that get written.
        let slots = Box::<[PageSlot]>::new_zeroed_slice(CHUNK_PAGES);
        // SAFETY: an all-zero PageSlot is a valid array of bytes.
        let slots = unsafe { slots.assume_init() };
        Box::new(Chunk {
            slots,
            present: [0; WORDS],
            lazy: [0; WORDS],
            blocks: Vec::new(),
        })
    }
}

/// pfn → bytes, for pages that hold data.
#[derive(Default)]
pub struct PageContents {
    /// Chunk `pfn / CHUNK_PAGES`, once a frame of it held bytes.
    chunks: Vec<Option<Box<Chunk>>>,
    /// Pages that hold bytes, in their slot or (lazy) on the disk.
    count: usize,
}

impl std::fmt::Debug for PageContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageContents")
            .field("pages", &self.count)
            .finish()
    }
}

/// Chunk, word and bit of a frame.
fn position(pfn: Pfn) -> (usize, usize, usize, u64) {
    // Frames are numbered by the simulated RAM, far below usize::MAX.
    let pfn = pfn.0 as usize;
    let within = pfn % CHUNK_PAGES;
    (pfn / CHUNK_PAGES, within, within / 64, 1 << (within % 64))
}

impl PageContents {
    /// Pages that carry bytes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no page carries bytes.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Host bytes the slots take (all chunks allocated so far): at most
    /// 4 KiB per frame that ever held bytes, and resident only where a
    /// slot was written.
    pub fn slot_bytes(&self) -> u64 {
        let chunks = self.chunks.iter().filter(|c| c.is_some()).count() as u64;
        chunks * CHUNK_PAGES as u64 * PAGE_SIZE
    }

    /// The bytes of a page, if it has any.
    pub fn get(&self, pfn: Pfn) -> Option<&PageSlot> {
        let (c, i, w, bit) = position(pfn);
        let chunk = self.chunks.get(c)?.as_ref()?;
        (chunk.present[w] & bit != 0).then(|| &chunk.slots[i])
    }

    /// The chunk of `pfn`, allocated on first use.
    fn chunk_mut(&mut self, c: usize) -> &mut Chunk {
        if self.chunks.len() <= c {
            self.chunks.resize_with(c + 1, || None);
        }
        self.chunks[c].get_or_insert_with(Chunk::new)
    }

    /// The bytes of a page for writing, created zero-filled on first use.
    /// A lazy page must be read first (`Kernel::folio_materialize`): its
    /// bytes would be lost.
    pub fn get_or_zero(&mut self, pfn: Pfn) -> &mut PageSlot {
        let (c, i, w, bit) = position(pfn);
        debug_assert!(
            self.lazy_block(pfn).is_none(),
            "pfn {pfn} written while lazy"
        );
        let chunk = self.chunk_mut(c);
        if chunk.present[w] & bit == 0 {
            chunk.present[w] |= bit;
            // The slot still holds the bytes of the frame's last owner.
            chunk.slots[i].0.fill(0);
            self.count += 1;
        }
        let chunk = self.chunks[c].as_mut().expect("allocated above");
        &mut chunk.slots[i]
    }

    /// Forget the bytes of a page (it reads as zeros again), in its slot
    /// or lazy.
    pub fn clear(&mut self, pfn: Pfn) -> bool {
        let (c, _, w, bit) = position(pfn);
        match self.chunks.get_mut(c).and_then(Option::as_mut) {
            Some(chunk) if (chunk.present[w] | chunk.lazy[w]) & bit != 0 => {
                chunk.present[w] &= !bit;
                chunk.lazy[w] &= !bit;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }

    /// A page just read ahead from disk block `block`: its bytes are the
    /// block's until someone looks at them, so a miss costs no copy (the
    /// simulated read is charged all the same). False, and nothing
    /// changed, when the block number does not fit the 4-byte record:
    /// the caller reads the bytes now.
    pub fn set_lazy(&mut self, pfn: Pfn, block: u64) -> bool {
        let Ok(block) = u32::try_from(block) else {
            return false;
        };
        self.clear(pfn);
        let (c, i, w, bit) = position(pfn);
        let chunk = self.chunk_mut(c);
        if chunk.blocks.is_empty() {
            chunk.blocks = vec![0; CHUNK_PAGES];
        }
        chunk.blocks[i] = block;
        chunk.lazy[w] |= bit;
        self.count += 1;
        true
    }

    /// The disk block whose bytes a lazy page still has to read.
    pub fn lazy_block(&self, pfn: Pfn) -> Option<u64> {
        let (c, i, w, bit) = position(pfn);
        let chunk = self.chunks.get(c)?.as_ref()?;
        (chunk.lazy[w] & bit != 0).then(|| u64::from(chunk.blocks[i]))
    }

    /// Fill the slots of the distinct frames `pfns` by `fill`, which gets
    /// them in order and writes every byte of each. A page filled with
    /// zeros holds no bytes, every other one what `fill` wrote; if `fill`
    /// fails, none holds bytes. Bytes the pages held before are gone either
    /// way, and the slots are not zeroed first: the fill is the only write.
    pub fn fill_with<E>(
        &mut self,
        pfns: &[Pfn],
        fill: impl FnOnce(&mut [&mut [u8; PAGE_SIZE as usize]]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut sorted: Vec<u64> = pfns.iter().map(|p| p.0).collect();
        sorted.sort_unstable();
        assert!(
            sorted.windows(2).all(|w| w[0] != w[1]),
            "fill_with: a frame given twice"
        );
        for &pfn in pfns {
            self.clear(pfn);
            let (c, ..) = position(pfn);
            self.chunk_mut(c);
        }
        // One base pointer per chunk, taken once: every slot reference
        // below derives from it, so none invalidates another.
        let mut bases: Vec<(usize, *mut PageSlot)> = Vec::new();
        let mut slots: Vec<&mut [u8; PAGE_SIZE as usize]> = Vec::with_capacity(pfns.len());
        for &pfn in pfns {
            let (c, i, _, _) = position(pfn);
            let base = match bases.iter().find(|b| b.0 == c) {
                Some(&(_, base)) => base,
                None => {
                    let chunk = self.chunks[c].as_mut().expect("allocated above");
                    let base = chunk.slots.as_mut_ptr();
                    bases.push((c, base));
                    base
                }
            };
            // SAFETY: `i < CHUNK_PAGES`, the length of the chunk's slots,
            // which live in a boxed slice that neither moves nor goes
            // while `self` is mutably borrowed here; no two references
            // alias, since the frames are distinct (asserted above) and so
            // are their slots.
            slots.push(unsafe { &mut (*base.add(i)).0 });
        }
        let filled = fill(&mut slots);
        drop(slots);
        filled?;
        for &pfn in pfns {
            let (c, i, w, bit) = position(pfn);
            let chunk = self.chunks[c].as_mut().expect("allocated above");
            if chunk.slots[i].0.iter().any(|&b| b != 0) {
                chunk.present[w] |= bit;
                self.count += 1;
            }
        }
        Ok(())
    }
}

impl Kernel {
    /// Detach the bytes of a page (None if it only ever read as zeros).
    pub fn take_page_bytes(&mut self, pfn: Pfn) -> Option<PageBytes> {
        let bytes = self.page_contents.get(pfn).map(|b| Box::new(b.0));
        if bytes.is_some() {
            self.page_contents.clear(pfn);
        }
        bytes
    }

    /// Forget the bytes of a page being freed: [`Self::take_page_bytes`]
    /// without the copy.
    pub fn drop_page_bytes(&mut self, pfn: Pfn) {
        self.page_contents.clear(pfn);
    }

    /// Attach bytes to a page (after swap-in); all-zero pages need none.
    pub fn put_page_bytes(&mut self, pfn: Pfn, bytes: PageBytes) {
        if bytes.iter().any(|&b| b != 0) {
            self.page_contents.get_or_zero(pfn).0 = *bytes;
        } else {
            self.page_contents.clear(pfn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_zero_on_first_use_and_reused_without_old_bytes() {
        let mut pc = PageContents::default();
        assert!(pc.get(Pfn(700)).is_none());
        pc.get_or_zero(Pfn(700))[5] = 9;
        assert_eq!(pc.len(), 1);
        assert_eq!(pc.get(Pfn(700)).unwrap()[5], 9);
        assert!(pc.clear(Pfn(700)));
        assert!(!pc.clear(Pfn(700)));
        assert!(pc.is_empty());
        assert!(pc.get(Pfn(700)).is_none());
        // The frame's next owner starts from zeros, not the 9.
        assert_eq!(pc.get_or_zero(Pfn(700))[5], 0);
    }

    #[test]
    fn fill_keeps_only_pages_that_are_not_zero() {
        let mut pc = PageContents::default();
        pc.get_or_zero(Pfn(3))[0] = 1;
        pc.clear(Pfn(3));
        let pfns = [Pfn(3), Pfn(4), Pfn(1 << 20)];
        pc.fill_with::<()>(&pfns, |slots| {
            slots[0].fill(0);
            slots[1].fill(7);
            slots[2].fill(0);
            slots[2][4095] = 1;
            Ok(())
        })
        .unwrap();
        assert!(pc.get(Pfn(3)).is_none());
        assert_eq!(pc.get(Pfn(4)).unwrap()[100], 7);
        assert_eq!(pc.get(Pfn(1 << 20)).unwrap()[4095], 1);
        assert_eq!(pc.len(), 2);
        // A failed fill leaves nothing behind.
        assert_eq!(pc.fill_with(&[Pfn(9)], |_| Err("eio")), Err("eio"));
        assert!(pc.get(Pfn(9)).is_none());
        assert_eq!(pc.len(), 2);
    }
}
