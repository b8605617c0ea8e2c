//! The page-cache index of one file (Linux: `mapping->i_pages`, the xarray
//! of lib/xarray.c as the page cache uses it): page index → the frame of
//! the cached page, or, in a slot whose page reclaim evicted, a *shadow*
//! entry (mm/workingset.c) for refault detection.
//!
//! Like the xarray, slots come in nodes of [`XA_CHUNK_SIZE`] consecutive
//! indices; a node holds one `u64` a slot (a pfn or a packed shadow) and
//! two bitmaps saying which. The xarray's upper levels are a `BTreeMap`
//! keyed by `index / 64`, which keeps huge sparse files cheap and
//! iteration in file order. A densely cached file costs 8 bytes a page
//! plus 1/64 of a node's header and map entry: the old `BTreeMap<u64, Pfn>`
//! cost about 34 (issue 13 wants at most 16).
//!
//! Nodes that hold shadow entries and no pages are counted as the kernel
//! counts them on its `shadow_nodes` list (`workingset_update_node`):
//! vmstat's `workingset_nodes`.

use std::collections::BTreeMap;

use super::types::Pfn;

/// log2 of the slots of a node (XA_CHUNK_SHIFT).
pub const XA_CHUNK_SHIFT: u32 = 6;
/// Slots of a node (XA_CHUNK_SIZE).
pub const XA_CHUNK_SIZE: u64 = 1 << XA_CHUNK_SHIFT;
const SLOT_MASK: u64 = XA_CHUNK_SIZE - 1;

/// What `workingset_eviction` packs into a shadow entry: the node's
/// nonresident age at eviction and whether the page was part of the
/// workingset (PG_workingset) when it left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shadow {
    /// `lruvec->nonresident_age` when the page was evicted.
    pub eviction: u64,
    /// The page had PG_workingset (it had been active).
    pub workingset: bool,
}

impl Shadow {
    fn pack(self) -> u64 {
        (self.eviction << 1) | u64::from(self.workingset)
    }

    fn unpack(raw: u64) -> Shadow {
        Shadow {
            eviction: raw >> 1,
            workingset: raw & 1 != 0,
        }
    }
}

/// One slot's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A cached page.
    Page(Pfn),
    /// An evicted page's shadow.
    Shadow(Shadow),
}

/// A node of 64 slots (`struct xa_node` at the leaf level).
#[derive(Debug)]
struct XaNode {
    /// Slots holding pages.
    pages: u64,
    /// Slots holding shadow entries (disjoint from `pages`).
    shadows: u64,
    /// The pfn or the packed shadow of each occupied slot.
    slots: [u64; XA_CHUNK_SIZE as usize],
}

impl XaNode {
    fn new() -> Box<XaNode> {
        Box::new(XaNode {
            pages: 0,
            shadows: 0,
            slots: [0; XA_CHUNK_SIZE as usize],
        })
    }

    /// On the kernel's `shadow_nodes` list: `node->count ==
    /// node->nr_values`, and not empty.
    fn shadow_only(&self) -> bool {
        self.pages == 0 && self.shadows != 0
    }

    fn is_empty(&self) -> bool {
        self.pages == 0 && self.shadows == 0
    }
}

/// The index of one file's page cache.
#[derive(Debug, Default)]
pub struct PageIndex {
    nodes: BTreeMap<u64, Box<XaNode>>,
    nr_pages: u64,
    nr_shadows: u64,
    shadow_nodes: u64,
}

fn split(index: u64) -> (u64, u64) {
    (index >> XA_CHUNK_SHIFT, index & SLOT_MASK)
}

impl PageIndex {
    /// An empty index.
    pub fn new() -> PageIndex {
        PageIndex::default()
    }

    /// Cached pages.
    pub fn len(&self) -> u64 {
        self.nr_pages
    }

    /// True when no page is cached (shadows may remain).
    pub fn is_empty(&self) -> bool {
        self.nr_pages == 0
    }

    /// Shadow entries.
    pub fn nr_shadows(&self) -> u64 {
        self.nr_shadows
    }

    /// Nodes holding shadow entries only (`WORKINGSET_NODES`).
    pub fn shadow_nodes(&self) -> u64 {
        self.shadow_nodes
    }

    /// Nodes in use (for the memory accounting of tests and benches).
    pub fn nr_nodes(&self) -> u64 {
        self.nodes.len() as u64
    }

    /// The slot at `index`.
    pub fn entry(&self, index: u64) -> Option<Entry> {
        let (key, slot) = split(index);
        let node = self.nodes.get(&key)?;
        let bit = 1 << slot;
        if node.pages & bit != 0 {
            Some(Entry::Page(Pfn(node.slots[slot as usize])))
        } else if node.shadows & bit != 0 {
            Some(Entry::Shadow(Shadow::unpack(node.slots[slot as usize])))
        } else {
            None
        }
    }

    /// The cached page at `index`.
    pub fn get(&self, index: u64) -> Option<Pfn> {
        let (key, slot) = split(index);
        let node = self.nodes.get(&key)?;
        (node.pages & (1 << slot) != 0).then(|| Pfn(node.slots[slot as usize]))
    }

    /// True when a page is cached at `index`.
    pub fn contains(&self, index: u64) -> bool {
        self.get(index).is_some()
    }

    /// The shadow entry at `index`.
    pub fn shadow(&self, index: u64) -> Option<Shadow> {
        match self.entry(index) {
            Some(Entry::Shadow(s)) => Some(s),
            _ => None,
        }
    }

    /// Change the slot at `index` with `f` on its node, keeping the
    /// counters and the shadow-node count right and dropping a node left
    /// empty. `f` returns what the caller gets back.
    fn modify<T>(&mut self, index: u64, create: bool, f: impl FnOnce(&mut XaNode, u64) -> T) -> T
    where
        T: Default,
    {
        let (key, slot) = split(index);
        let node = if create {
            self.nodes.entry(key).or_insert_with(XaNode::new)
        } else {
            match self.nodes.get_mut(&key) {
                Some(node) => node,
                None => return T::default(),
            }
        };
        let (pages, shadows, was) = (node.pages, node.shadows, node.shadow_only());
        let out = f(node, slot);
        self.nr_pages =
            self.nr_pages + u64::from(node.pages.count_ones()) - u64::from(pages.count_ones());
        self.nr_shadows = self.nr_shadows + u64::from(node.shadows.count_ones())
            - u64::from(shadows.count_ones());
        match (was, node.shadow_only()) {
            (false, true) => self.shadow_nodes += 1,
            (true, false) => self.shadow_nodes -= 1,
            _ => {}
        }
        if node.is_empty() {
            self.nodes.remove(&key);
        }
        out
    }

    /// `__xa_store` over a present page (`folio_migrate_mapping`): the
    /// slot at `index` now holds `pfn`. False when no page is cached there.
    pub fn replace(&mut self, index: u64, pfn: Pfn) -> bool {
        let (key, slot) = split(index);
        match self.nodes.get_mut(&key) {
            Some(node) if node.pages & (1 << slot) != 0 => {
                node.slots[slot as usize] = pfn.0;
                true
            }
            _ => false,
        }
    }

    /// Store a page at `index` (`__filemap_add_folio`); the shadow entry
    /// it replaces comes back. The slot must not hold a page.
    pub fn insert(&mut self, index: u64, pfn: Pfn) -> Option<Shadow> {
        self.modify(index, true, |node, slot| {
            let bit = 1 << slot;
            debug_assert!(node.pages & bit == 0, "page {index} is cached twice");
            let old = (node.shadows & bit != 0).then(|| Shadow::unpack(node.slots[slot as usize]));
            node.shadows &= !bit;
            node.pages |= bit;
            node.slots[slot as usize] = pfn.0;
            old
        })
    }

    /// Take the page at `index` out, leaving the slot empty
    /// (`page_cache_delete` without a shadow).
    pub fn remove(&mut self, index: u64) -> Option<Pfn> {
        self.modify(index, false, |node, slot| {
            let bit = 1 << slot;
            if node.pages & bit == 0 {
                return None;
            }
            node.pages &= !bit;
            Some(Pfn(node.slots[slot as usize]))
        })
    }

    /// Replace the page at `index` by a shadow entry (`__remove_mapping`
    /// of reclaim); the page comes back.
    pub fn evict(&mut self, index: u64, shadow: Shadow) -> Option<Pfn> {
        self.modify(index, false, |node, slot| {
            let bit = 1 << slot;
            if node.pages & bit == 0 {
                return None;
            }
            node.pages &= !bit;
            node.shadows |= bit;
            let pfn = Pfn(node.slots[slot as usize]);
            node.slots[slot as usize] = shadow.pack();
            Some(pfn)
        })
    }

    /// Empty every slot from `index` on (`truncate_inode_pages_range`);
    /// the pages that were there come back, in file order.
    pub fn truncate(&mut self, index: u64) -> Vec<Pfn> {
        let (key, slot) = split(index);
        let mut pages = Vec::new();
        // The node holding `index` keeps its slots below it.
        if slot != 0 {
            let keep = (1u64 << slot) - 1;
            pages = self.modify(index, false, |node, _| {
                let gone = node.pages & !keep;
                node.pages &= keep;
                node.shadows &= keep;
                bits(gone).map(|s| Pfn(node.slots[s as usize])).collect()
            });
        }
        let first = if slot != 0 { key + 1 } else { key };
        for (_, node) in self.nodes.split_off(&first) {
            self.nr_pages -= u64::from(node.pages.count_ones());
            self.nr_shadows -= u64::from(node.shadows.count_ones());
            if node.shadow_only() {
                self.shadow_nodes -= 1;
            }
            pages.extend(bits(node.pages).map(|s| Pfn(node.slots[s as usize])));
        }
        pages
    }

    /// The cached pages in file order: (index, frame).
    pub fn iter(&self) -> impl Iterator<Item = (u64, Pfn)> + '_ {
        self.nodes.iter().flat_map(|(&key, node)| {
            bits(node.pages)
                .map(move |s| ((key << XA_CHUNK_SHIFT) | s, Pfn(node.slots[s as usize])))
        })
    }
}

/// The set bits of a word, lowest first.
fn bits(mut word: u64) -> impl Iterator<Item = u64> {
    std::iter::from_fn(move || {
        if word == 0 {
            return None;
        }
        let bit = u64::from(word.trailing_zeros());
        word &= word - 1;
        Some(bit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shadow(eviction: u64, workingset: bool) -> Shadow {
        Shadow {
            eviction,
            workingset,
        }
    }

    /// Slots 0..=63 are node 0, 64..=127 node 1:
    /// ```text
    ///   node 0: [P0 P1 .. P63]      node 1: [P64 . . .]
    /// ```
    #[test]
    fn pages_and_shadows_share_slots_and_nodes_count_shadow_only() {
        let mut x = PageIndex::new();
        for i in 0..65 {
            assert_eq!(x.insert(i, Pfn(1000 + i)), None);
        }
        assert_eq!((x.len(), x.nr_nodes(), x.shadow_nodes()), (65, 2, 0));
        assert_eq!(x.get(64), Some(Pfn(1064)));
        assert_eq!(x.get(65), None);
        // Evict 64: node 1 holds one shadow and no page.
        assert_eq!(x.evict(64, shadow(7, true)), Some(Pfn(1064)));
        assert_eq!(x.shadow_nodes(), 1);
        assert_eq!(x.entry(64), Some(Entry::Shadow(shadow(7, true))));
        // Evict half of node 0: it still holds pages.
        for i in 0..32 {
            x.evict(i, shadow(i, false));
        }
        assert_eq!((x.len(), x.nr_shadows(), x.shadow_nodes()), (32, 33, 1));
        // The rest of node 0 goes: two shadow-only nodes.
        for i in 32..64 {
            x.evict(i, shadow(i, false));
        }
        assert_eq!((x.len(), x.nr_shadows(), x.shadow_nodes()), (0, 65, 2));
        // A refault replaces the shadow and takes node 1 off the list.
        assert_eq!(x.insert(64, Pfn(5)), Some(shadow(7, true)));
        assert_eq!(x.shadow_nodes(), 1);
        assert_eq!(x.iter().collect::<Vec<_>>(), [(64, Pfn(5))]);
        // Removing the page without a shadow frees node 1.
        assert_eq!(x.remove(64), Some(Pfn(5)));
        assert_eq!((x.nr_nodes(), x.shadow_nodes()), (1, 1));
    }

    #[test]
    fn truncate_cuts_pages_and_shadows_at_any_index() {
        let mut x = PageIndex::new();
        for i in (0..300).step_by(3) {
            x.insert(i, Pfn(i));
        }
        x.evict(150, shadow(1, false));
        // Node 4 (256..) is the last; 200 lies inside node 3 (192..255).
        let gone = x.truncate(200);
        let want: Vec<Pfn> = (201..300).step_by(3).map(Pfn).collect();
        assert_eq!(gone, want);
        assert_eq!(x.len(), 67 - 1);
        assert_eq!(x.nr_shadows(), 1);
        assert_eq!(x.iter().last(), Some((198, Pfn(198))));
        let rest = x.truncate(0);
        assert_eq!(rest.len(), 66);
        assert_eq!(
            (x.len(), x.nr_shadows(), x.nr_nodes(), x.shadow_nodes()),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn huge_sparse_indices_cost_one_node_each() {
        let mut x = PageIndex::new();
        x.insert((1 << 32) - 1, Pfn(1));
        x.insert(0, Pfn(2));
        assert_eq!(x.nr_nodes(), 2);
        assert_eq!(
            x.iter().collect::<Vec<_>>(),
            [(0, Pfn(2)), ((1 << 32) - 1, Pfn(1))]
        );
    }
}
