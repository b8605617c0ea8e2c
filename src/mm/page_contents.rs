//! Bytes of simulated pages. Only pages written through `PID/mem` carry a
//! buffer; every other page reads as zeros, so host memory stays small.
//! The buffer moves with the page to swap and back.

use std::collections::HashMap;

use super::Kernel;
use super::swapfile::PageBytes;
use super::types::Pfn;

/// pfn → bytes, for pages that hold written data. Never iterated into
/// output, so a HashMap keeps lookups O(1) without breaking determinism.
#[derive(Debug, Default)]
pub struct PageContents {
    pages: HashMap<u64, PageBytes>,
}

impl PageContents {
    /// Pages that carry bytes.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// True when no page carries bytes.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The bytes of a page, if it has any.
    pub fn get(&self, pfn: Pfn) -> Option<&PageBytes> {
        self.pages.get(&pfn.0)
    }

    /// The bytes of a page for writing, created zero-filled on first use.
    pub fn get_or_zero(&mut self, pfn: Pfn) -> &mut PageBytes {
        self.pages
            .entry(pfn.0)
            .or_insert_with(|| Box::new([0u8; super::types::PAGE_SIZE as usize]))
    }
}

impl Kernel {
    /// Detach the bytes of a page (None if it only ever read as zeros).
    pub fn take_page_bytes(&mut self, pfn: Pfn) -> Option<PageBytes> {
        self.page_contents.pages.remove(&pfn.0)
    }

    /// Attach bytes to a page (after swap-in); all-zero pages need none.
    pub fn put_page_bytes(&mut self, pfn: Pfn, bytes: PageBytes) {
        if bytes.iter().any(|&b| b != 0) {
            self.page_contents.pages.insert(pfn.0, bytes);
        } else {
            self.page_contents.pages.remove(&pfn.0);
        }
    }
}
