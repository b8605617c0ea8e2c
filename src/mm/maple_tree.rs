//! The ordered set of an address space's VMAs, augmented with gaps
//! (Linux: lib/maple_tree.c, and the `rb_subtree_gap` rbtree of
//! mm/mmap.c before 6.1).
//!
//! Linux keeps an mm's VMAs in a maple tree, a B-tree whose nodes record
//! the largest gap below them, so that `unmapped_area(_topdown)` descends
//! to a free range of a given length in O(log n) instead of walking every
//! VMA. This is the same idea as a treap (a binary search tree by start
//! address, balanced by random priorities) where every node keeps, for its
//! whole subtree, the largest gap below a VMA and the lowest start of a
//! VMA's guard.
//!
//! Why a treap and not a B-tree like the real one: insert, remove and the
//! augmented searches are each one short recursive function over an arena
//! of nodes (`u32` links into a `Vec`, no `unsafe`, no per-node heap
//! object), expected depth ~1.4·log2(n) (22 at 65,530 VMAs). A B-tree would
//! touch fewer cache lines, but the hot part of a node here is 72 bytes kept
//! apart from the [`Vma`] itself, and the bench (benches/scale.rs) meets
//! its target with it. The priorities come from a fixed-seed generator:
//! the shape of the tree never shows in any output, but it is the same on
//! every run anyway.
//!
//! The nodes are also threaded in address order (`prev`/`next`, Linux's
//! old `vm_prev`/`vm_next`), so iteration is O(1) a step and a node knows
//! its predecessor's end, which its gap needs.
//!
//! ## Gaps
//! The gap below a VMA `v` runs from its predecessor's end (0 for the
//! first VMA) to `vm_start_gap(v)`: a VM_GROWSDOWN VMA keeps
//! STACK_GUARD_GAP free below it ([`start_gap`]). When a guard reaches
//! below the predecessor's end the gap is empty (0).
//!
//! Invariants (checked by [`MapleTree::check`]): keys are the VMAs'
//! starts, in order; priorities form a max-heap; `prev`/`next` are the
//! in-order neighbours; every node's `prev_end`, `sg`, `max_gap` and
//! `min_sg` equal a recount from its VMA, its predecessor and its children.

use std::ops::{Bound, Deref, DerefMut, RangeBounds};

use super::mmap::{STACK_GUARD_GAP, Vma};

/// No node.
const NIL: u32 = u32::MAX;

/// `vm_start_gap`: the start of a VMA including its stack guard gap.
pub fn start_gap(vma: &Vma) -> u64 {
    if vma.flags.is_stack() {
        vma.start.saturating_sub(STACK_GUARD_GAP)
    } else {
        vma.start
    }
}

/// The part of a node that searches touch, apart from the (large) VMA.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// The VMA's start (the key).
    key: u64,
    /// The VMA's end.
    end: u64,
    /// `vm_start_gap` of the VMA.
    sg: u64,
    /// The predecessor's end, 0 for the first VMA: the bottom of the gap
    /// below this VMA (set when the threading changes, so that a pull
    /// reads only the children).
    prev_end: u64,
    /// The largest `sg - prev_end` (0 when negative) in the subtree.
    max_gap: u64,
    /// The lowest `sg` in the subtree.
    min_sg: u64,
    left: u32,
    right: u32,
    /// In-order neighbours.
    prev: u32,
    next: u32,
    /// Heap priority (larger is nearer the root).
    prio: u32,
}

/// What a step of a search says.
enum Flow {
    /// The answer.
    Found(u64),
    /// No answer anywhere further on.
    Stop,
    /// Nothing here; go on.
    Continue,
}

/// VMAs by start address with per-subtree gaps (see the module doc).
pub struct MapleTree {
    nodes: Vec<Node>,
    /// The VMA of each node (None for a free slot), apart from the nodes
    /// so that a descent reads only the small hot part.
    vmas: Vec<Option<Vma>>,
    /// Free slots of both vectors.
    free: Vec<u32>,
    root: u32,
    first: u32,
    last: u32,
    len: usize,
    /// xorshift64 state for the priorities.
    seed: u64,
}

impl Default for MapleTree {
    fn default() -> Self {
        MapleTree::new()
    }
}

impl std::fmt::Debug for MapleTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values()).finish()
    }
}

impl MapleTree {
    /// An empty tree.
    pub fn new() -> MapleTree {
        MapleTree {
            nodes: Vec::new(),
            vmas: Vec::new(),
            free: Vec::new(),
            root: NIL,
            first: NIL,
            last: NIL,
            len: 0,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Number of VMAs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No VMA.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn vma(&self, x: u32) -> &Vma {
        self.vmas[x as usize].as_ref().expect("live node")
    }

    fn n(&self, x: u32) -> &Node {
        &self.nodes[x as usize]
    }

    fn nm(&mut self, x: u32) -> &mut Node {
        &mut self.nodes[x as usize]
    }

    fn next_prio(&mut self) -> u32 {
        let mut s = self.seed;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.seed = s;
        (s >> 32) as u32
    }

    /// Recompute `x`'s subtree fields from its own gap and its children.
    fn pull(&mut self, x: u32) {
        let n = self.n(x);
        let mut max_gap = n.sg.saturating_sub(n.prev_end);
        let mut min_sg = n.sg;
        for c in [n.left, n.right] {
            if c != NIL {
                let c = self.n(c);
                max_gap = max_gap.max(c.max_gap);
                min_sg = min_sg.min(c.min_sg);
            }
        }
        let n = self.nm(x);
        n.max_gap = max_gap;
        n.min_sg = min_sg;
    }

    /// The node whose key is `key`.
    fn find(&self, key: u64) -> u32 {
        let mut t = self.root;
        while t != NIL {
            let n = self.n(t);
            if key < n.key {
                t = n.left;
            } else if key > n.key {
                t = n.right;
            } else {
                return t;
            }
        }
        NIL
    }

    /// The node with the smallest key ≥ `key`.
    fn first_ge(&self, key: u64) -> u32 {
        let (mut t, mut best) = (self.root, NIL);
        while t != NIL {
            let n = self.n(t);
            if n.key >= key {
                best = t;
                t = n.left;
            } else {
                t = n.right;
            }
        }
        best
    }

    /// The node with the largest key ≤ `key`.
    fn last_le(&self, key: u64) -> u32 {
        let (mut t, mut best) = (self.root, NIL);
        while t != NIL {
            let n = self.n(t);
            if n.key <= key {
                best = t;
                t = n.right;
            } else {
                t = n.left;
            }
        }
        best
    }

    /// The VMA starting at `start`.
    pub fn get(&self, start: &u64) -> Option<&Vma> {
        let x = self.find(*start);
        (x != NIL).then(|| self.vma(x))
    }

    /// The VMA starting at `start`, to change. A change of its start, end
    /// or stack flag moves it in the tree and fixes the gaps when the
    /// handle drops; the mm's counters are the caller's (edits that change
    /// the size go through `MmStruct::remove_vma`/`insert_vma`).
    pub fn get_mut(&mut self, start: &u64) -> Option<VmaMut<'_>> {
        let x = self.find(*start);
        if x == NIL {
            return None;
        }
        let v = self.vma(x);
        let old = (v.start, v.end, start_gap(v));
        Some(VmaMut { tree: self, x, old })
    }

    /// The VMA containing `addr` (`vma_lookup`).
    pub fn lookup(&self, addr: u64) -> Option<&Vma> {
        let x = self.last_le(addr);
        (x != NIL && self.n(x).end > addr).then(|| self.vma(x))
    }

    /// Add `vma` (keyed by its start); returns the VMA it replaces, if one
    /// started at the same address.
    pub fn insert(&mut self, vma: Vma) -> Option<Vma> {
        let key = vma.start;
        let mut pred = self.last_le(key);
        let mut old = None;
        if pred != NIL && self.n(pred).key == key {
            old = self.remove(&key);
            pred = self.last_le(key);
        }
        let succ = if pred == NIL {
            self.first
        } else {
            self.n(pred).next
        };
        let node = Node {
            key,
            end: vma.end,
            sg: start_gap(&vma),
            prev_end: if pred == NIL { 0 } else { self.n(pred).end },
            max_gap: 0,
            min_sg: 0,
            left: NIL,
            right: NIL,
            prev: pred,
            next: succ,
            prio: self.next_prio(),
        };
        let x = match self.free.pop() {
            Some(x) => {
                self.nodes[x as usize] = node;
                self.vmas[x as usize] = Some(vma);
                x
            }
            None => {
                self.nodes.push(node);
                self.vmas.push(Some(vma));
                (self.nodes.len() - 1) as u32
            }
        };
        // Thread it first: every node whose gap changes (x and its
        // successor, an ancestor of the new leaf) is pulled on the way up.
        if pred == NIL {
            self.first = x;
        } else {
            self.nm(pred).next = x;
        }
        if succ == NIL {
            self.last = x;
        } else {
            let end = self.n(x).end;
            let s = self.nm(succ);
            s.prev = x;
            s.prev_end = end;
        }
        self.root = self.insert_at(self.root, x);
        self.len += 1;
        old
    }

    fn insert_at(&mut self, t: u32, x: u32) -> u32 {
        if t == NIL {
            self.pull(x);
            return x;
        }
        let mut t = t;
        if self.n(x).key < self.n(t).key {
            let l = self.insert_at(self.n(t).left, x);
            self.nm(t).left = l;
            if self.n(l).prio > self.n(t).prio {
                t = self.rotate_right(t);
            }
        } else {
            let r = self.insert_at(self.n(t).right, x);
            self.nm(t).right = r;
            if self.n(r).prio > self.n(t).prio {
                t = self.rotate_left(t);
            }
        }
        self.pull(t);
        t
    }

    /// `t`'s left child becomes the subtree's root.
    fn rotate_right(&mut self, t: u32) -> u32 {
        let l = self.n(t).left;
        self.nm(t).left = self.n(l).right;
        self.nm(l).right = t;
        self.pull(t);
        l
    }

    /// `t`'s right child becomes the subtree's root.
    fn rotate_left(&mut self, t: u32) -> u32 {
        let r = self.n(t).right;
        self.nm(t).right = self.n(r).left;
        self.nm(r).left = t;
        self.pull(t);
        r
    }

    /// Take out the VMA starting at `start`.
    pub fn remove(&mut self, start: &u64) -> Option<Vma> {
        let x = self.find(*start);
        if x == NIL {
            return None;
        }
        let Node {
            prev, next, right, ..
        } = *self.n(x);
        if prev == NIL {
            self.first = next;
        } else {
            self.nm(prev).next = next;
        }
        if next == NIL {
            self.last = prev;
        } else {
            let end = if prev == NIL { 0 } else { self.n(prev).end };
            let s = self.nm(next);
            s.prev = prev;
            s.prev_end = end;
        }
        self.root = self.remove_at(self.root, *start);
        // The successor's gap grew. It is an ancestor of x (pulled on the
        // way up) unless x had a right subtree, where it is the leftmost.
        if right != NIL && next != NIL {
            let key = self.n(next).key;
            self.root = self.refresh(self.root, key);
        }
        self.len -= 1;
        self.free.push(x);
        self.vmas[x as usize].take()
    }

    fn remove_at(&mut self, t: u32, key: u64) -> u32 {
        let k = self.n(t).key;
        if key < k {
            let l = self.remove_at(self.n(t).left, key);
            self.nm(t).left = l;
        } else if key > k {
            let r = self.remove_at(self.n(t).right, key);
            self.nm(t).right = r;
        } else {
            let (l, r) = (self.n(t).left, self.n(t).right);
            return self.merge(l, r);
        }
        self.pull(t);
        t
    }

    /// Join two subtrees, every key of `a` below every key of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.n(a).prio > self.n(b).prio {
            let r = self.merge(self.n(a).right, b);
            self.nm(a).right = r;
            self.pull(a);
            a
        } else {
            let l = self.merge(a, self.n(b).left);
            self.nm(b).left = l;
            self.pull(b);
            b
        }
    }

    /// Pull every node on the path to `key` (after its gap changed).
    fn refresh(&mut self, t: u32, key: u64) -> u32 {
        if t == NIL {
            return t;
        }
        let k = self.n(t).key;
        if key < k {
            let l = self.refresh(self.n(t).left, key);
            self.nm(t).left = l;
        } else if key > k {
            let r = self.refresh(self.n(t).right, key);
            self.nm(t).right = r;
        }
        self.pull(t);
        t
    }

    /// The VMAs whose start lies in `range`, in address order.
    pub fn range(&self, range: impl RangeBounds<u64>) -> Iter<'_> {
        let front = match range.start_bound() {
            Bound::Unbounded => self.first,
            Bound::Included(&k) => self.first_ge(k),
            Bound::Excluded(&k) => k.checked_add(1).map_or(NIL, |k| self.first_ge(k)),
        };
        let back = match range.end_bound() {
            Bound::Unbounded => self.last,
            Bound::Included(&k) => self.last_le(k),
            Bound::Excluded(&k) => k.checked_sub(1).map_or(NIL, |k| self.last_le(k)),
        };
        let done = front == NIL || back == NIL || self.n(front).key > self.n(back).key;
        Iter {
            tree: self,
            front,
            back,
            done,
        }
    }

    /// Every VMA with its start, in address order.
    pub fn iter(&self) -> Iter<'_> {
        self.range(..)
    }

    /// Every VMA in address order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Vma> {
        self.iter().map(|(_, v)| v)
    }

    /// Every start in address order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &u64> {
        self.iter().map(|(k, _)| k)
    }

    /// `unmapped_area_topdown`: the highest free range of `len` bytes in
    /// `[low, high)`, keeping stack guard gaps: a range between two VMAs
    /// ends at or below the guard of every VMA above it up to the first
    /// one starting at or above `high`. O(log n), plus one descent for
    /// each VMA a stack guard swallows (a gap that looked large enough).
    pub fn unmapped_area_topdown(&self, len: u64, low: u64, high: u64) -> Option<u64> {
        let floor = low.saturating_add(len);
        // The first VMA at or above `high` bounds the search; without one,
        // the range above the last VMA comes first.
        let top = self.first_ge(high);
        let kmax = if top == NIL {
            let e = high;
            if self.last == NIL {
                return (e >= floor).then(|| e - len);
            }
            let bottom = self.n(self.last).end;
            if bottom <= e && e - bottom >= len && e - len >= low {
                return Some(e - len);
            }
            if e < floor {
                return None;
            }
            u64::MAX
        } else {
            self.n(top).key
        };
        let mut ceil = high;
        // Usually nothing lies above `top` but the stack: the whole tree
        // is in range and subtrees can be skipped from the root down.
        let all_in = kmax >= self.n(self.last).key;
        match self.topdown(self.root, kmax, all_in, len, low, floor, &mut ceil) {
            Flow::Found(addr) => Some(addr),
            Flow::Stop | Flow::Continue => None,
        }
    }

    /// The reverse in-order walk of `unmapped_area_topdown` over the keys
    /// ≤ `kmax`; `all_in` when the whole subtree is; `ceil` the lowest
    /// guard start (or `high`) above the subtree.
    #[allow(clippy::too_many_arguments)]
    fn topdown(
        &self,
        t: u32,
        kmax: u64,
        all_in: bool,
        len: u64,
        low: u64,
        floor: u64,
        ceil: &mut u64,
    ) -> Flow {
        if t == NIL {
            return Flow::Continue;
        }
        let n = self.n(t);
        if all_in && n.max_gap < len {
            // No gap here is long enough: skip it, but its guards still
            // bound every gap below it.
            *ceil = (*ceil).min(n.min_sg);
            return if *ceil < floor {
                Flow::Stop
            } else {
                Flow::Continue
            };
        }
        if n.key > kmax {
            return self.topdown(n.left, kmax, all_in, len, low, floor, ceil);
        }
        match self.topdown(n.right, kmax, all_in, len, low, floor, ceil) {
            Flow::Continue => {}
            done => return done,
        }
        // The gap below this VMA: from its predecessor's end to the lowest
        // guard start from here up.
        let e = (*ceil).min(n.sg);
        *ceil = e;
        if e < floor {
            return Flow::Stop;
        }
        if n.prev == NIL {
            // Below the first VMA: down to address 0.
            return Flow::Found(e - len);
        }
        if n.prev_end <= e && e - n.prev_end >= len && e - len >= low {
            return Flow::Found(e - len);
        }
        self.topdown(n.left, kmax, true, len, low, floor, ceil)
    }

    /// `unmapped_area`: the lowest free range of `len` bytes in
    /// `[low, high)` (keeping the guard below a stack). O(log n).
    pub fn unmapped_area(&self, len: u64, low: u64, high: u64) -> Option<u64> {
        let g0 = self.lookup(low).map_or(low, |v| v.end);
        let u0 = self.first_ge(g0);
        let gap_start = if u0 == NIL {
            g0
        } else {
            let sg = self.n(u0).sg;
            if sg >= g0 && sg - g0 >= len {
                g0
            } else {
                // The lowest gap of `len` between two VMAs above u0.
                match self.bottomup(self.root, self.n(u0).key, len) {
                    Some(u) => self.n(u).prev_end,
                    None => g0.max(self.n(self.last).end),
                }
            }
        };
        let end = gap_start.checked_add(len)?;
        let next = self.first_ge(gap_start);
        let fits = end <= high && (next == NIL || end <= self.n(next).sg);
        fits.then_some(gap_start)
    }

    /// The first node with key > `kmin` whose gap below it holds `len`
    /// (a subtree whose largest gap is shorter is skipped whole).
    fn bottomup(&self, t: u32, kmin: u64, len: u64) -> Option<u32> {
        if t == NIL {
            return None;
        }
        let n = self.n(t);
        if n.max_gap < len {
            return None;
        }
        if n.key <= kmin {
            return self.bottomup(n.right, kmin, len);
        }
        if let Some(u) = self.bottomup(n.left, kmin, len) {
            return Some(u);
        }
        if n.sg >= n.prev_end && n.sg - n.prev_end >= len {
            return Some(t);
        }
        self.bottomup(n.right, kmin, len)
    }

    /// Check the invariants of the module doc against a recount.
    pub fn check(&self) -> Result<(), String> {
        let mut count = 0;
        let mut prev = NIL;
        let mut x = self.first;
        while x != NIL {
            let n = self.n(x);
            if n.prev != prev {
                return Err(format!("node {:#x}: prev link is wrong", n.key));
            }
            let v = self.vma(x);
            if (n.key, n.end, n.sg) != (v.start, v.end, start_gap(v)) {
                return Err(format!("node {:#x}: stale copy of its VMA", n.key));
            }
            if prev != NIL && self.n(prev).key >= n.key {
                return Err(format!("node {:#x}: out of order", n.key));
            }
            count += 1;
            prev = x;
            x = n.next;
        }
        if prev != self.last || count != self.len {
            return Err(format!("{count} nodes threaded, {} counted", self.len));
        }
        let mut seen = 0;
        self.check_subtree(self.root, None, None, u32::MAX, &mut seen)?;
        if seen != self.len {
            return Err(format!("{seen} nodes in the tree, {} counted", self.len));
        }
        Ok(())
    }

    /// Recount one subtree: returns (max_gap, min_sg).
    fn check_subtree(
        &self,
        t: u32,
        lo: Option<u64>,
        hi: Option<u64>,
        prio: u32,
        seen: &mut usize,
    ) -> Result<(u64, u64), String> {
        if t == NIL {
            return Ok((0, u64::MAX));
        }
        *seen += 1;
        let n = self.n(t);
        if lo.is_some_and(|lo| n.key <= lo) || hi.is_some_and(|hi| n.key >= hi) {
            return Err(format!("node {:#x}: not a search tree", n.key));
        }
        if n.prio > prio {
            return Err(format!("node {:#x}: not a heap", n.key));
        }
        let (lg, ls) = self.check_subtree(n.left, lo, Some(n.key), n.prio, seen)?;
        let (rg, rs) = self.check_subtree(n.right, Some(n.key), hi, n.prio, seen)?;
        let prev_end = if n.prev == NIL {
            0
        } else {
            self.vma(n.prev).end
        };
        let max_gap = start_gap(self.vma(t))
            .saturating_sub(prev_end)
            .max(lg)
            .max(rg);
        let min_sg = start_gap(self.vma(t)).min(ls).min(rs);
        if (n.prev_end, n.max_gap, n.min_sg) != (prev_end, max_gap, min_sg) {
            return Err(format!(
                "node {:#x}: (prev_end, max_gap, min_sg) {:?}, a recount gives {:?}",
                n.key,
                (n.prev_end, n.max_gap, n.min_sg),
                (prev_end, max_gap, min_sg)
            ));
        }
        Ok((max_gap, min_sg))
    }
}

/// A VMA being changed in place ([`MapleTree::get_mut`]); when dropped, a
/// changed start, end or guard is put into the tree.
pub struct VmaMut<'a> {
    tree: &'a mut MapleTree,
    x: u32,
    /// (start, end, start_gap) when taken.
    old: (u64, u64, u64),
}

impl Deref for VmaMut<'_> {
    type Target = Vma;
    fn deref(&self) -> &Vma {
        self.tree.vma(self.x)
    }
}

impl DerefMut for VmaMut<'_> {
    fn deref_mut(&mut self) -> &mut Vma {
        self.tree.vmas[self.x as usize].as_mut().expect("live node")
    }
}

impl Drop for VmaMut<'_> {
    fn drop(&mut self) {
        let v = self.tree.vma(self.x);
        let now = (v.start, v.end, start_gap(v));
        if now == self.old {
            return;
        }
        // Out under its old key (the node still has it), back in under the
        // new one: the links, the neighbours' gaps and the subtree maxima
        // follow.
        let vma = self.tree.remove(&self.old.0).expect("present");
        let replaced = self.tree.insert(vma);
        debug_assert!(replaced.is_none(), "a VMA moved onto another's start");
    }
}

/// In-order iterator over `(start, VMA)`, from both ends.
pub struct Iter<'a> {
    tree: &'a MapleTree,
    front: u32,
    back: u32,
    done: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a u64, &'a Vma);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let x = self.front;
        if x == self.back {
            self.done = true;
        } else {
            self.front = self.tree.n(x).next;
        }
        let v = self.tree.vma(x);
        Some((&v.start, v))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let x = self.back;
        if x == self.front {
            self.done = true;
        } else {
            self.back = self.tree.n(x).prev;
        }
        let v = self.tree.vma(x);
        Some((&v.start, v))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::mm::mmap::{VM_GROWSDOWN, VM_READ, VmFlags};
    use crate::mm::types::PAGE_SIZE;

    /// The model: start → (end, VM_GROWSDOWN).
    type Model = BTreeMap<u64, (u64, bool)>;

    fn vma(start: u64, end: u64, stack: bool) -> Vma {
        let flags = VM_READ | if stack { VM_GROWSDOWN } else { 0 };
        Vma {
            start,
            end,
            flags: VmFlags(flags),
            name: None,
            anon_vma: None,
            object: None,
            avc: None,
            file: None,
            fork_avc: None,
            shm: None,
        }
    }

    fn sg(start: u64, stack: bool) -> u64 {
        if stack {
            start.saturating_sub(STACK_GUARD_GAP)
        } else {
            start
        }
    }

    /// The linear walk mmap.rs had before the tree, verbatim but for the
    /// map it walks.
    fn linear_topdown(m: &Model, len: u64, low: u64, high: u64) -> Option<u64> {
        let mut gap_end = match m.range(high..).next() {
            Some((&s, &(_, st))) => high.min(sg(s, st)),
            None => high,
        };
        for (&s, &(e, st)) in m.range(..high).rev() {
            if e <= gap_end && gap_end - e >= len && gap_end - len >= low {
                return Some(gap_end - len);
            }
            gap_end = gap_end.min(sg(s, st));
            if gap_end < low.saturating_add(len) {
                return None;
            }
        }
        (gap_end >= low.saturating_add(len)).then(|| gap_end - len)
    }

    /// The same for `unmapped_area`.
    fn linear_bottomup(m: &Model, len: u64, low: u64, high: u64) -> Option<u64> {
        let mut gap_start = low;
        if let Some((_, &(e, _))) = m.range(..=low).next_back().filter(|(_, (e, _))| *e > low) {
            gap_start = e;
        }
        for (&s, &(e, st)) in m.range(gap_start..) {
            let gap_end = sg(s, st);
            if gap_end >= gap_start && gap_end - gap_start >= len {
                break;
            }
            gap_start = gap_start.max(e);
        }
        let end = gap_start.checked_add(len)?;
        let fits = end <= high
            && m.range(gap_start..)
                .next()
                .is_none_or(|(&s, &(_, st))| end <= sg(s, st));
        fits.then_some(gap_start)
    }

    /// xorshift64*: deterministic.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn agree(t: &MapleTree, m: &Model) {
        t.check().unwrap();
        assert_eq!(t.len(), m.len());
        let got: Vec<(u64, u64, bool)> = t
            .values()
            .map(|v| (v.start, v.end, v.flags.is_stack()))
            .collect();
        let want: Vec<(u64, u64, bool)> = m.iter().map(|(&s, &(e, st))| (s, e, st)).collect();
        assert_eq!(got, want);
        let back: Vec<u64> = t.keys().rev().copied().collect();
        let want_back: Vec<u64> = m.keys().rev().copied().collect();
        assert_eq!(back, want_back);
    }

    fn free(m: &Model, start: u64, end: u64) -> bool {
        m.range(..end)
            .next_back()
            .is_none_or(|(_, &(e, _))| e <= start)
    }

    /// Random inserts, removes, splits, merges and in-place edits over a
    /// small address space (so that stack guards swallow VMAs), each
    /// followed by a recount of every node and by searches compared with
    /// the linear walks.
    #[test]
    fn random_operations_agree_with_a_linear_walk() {
        let page = PAGE_SIZE;
        let space = 2048 * page;
        for seed in 1..=12u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut t = MapleTree::new();
            let mut m = Model::new();
            for step in 0..1500 {
                let keys: Vec<u64> = m.keys().copied().collect();
                let pick = |rng: &mut Rng| keys[rng.below(keys.len() as u64) as usize];
                match rng.below(10) {
                    0..=3 => {
                        let start = (16 + rng.below(2000)) * page;
                        let most = if rng.below(4) == 0 { 64 } else { 4 };
                        let end = start + (1 + rng.below(most)) * page;
                        let stack = rng.below(8) == 0;
                        if end <= space && free(&m, start, end) {
                            assert!(t.insert(vma(start, end, stack)).is_none());
                            m.insert(start, (end, stack));
                        }
                    }
                    4 | 5 if !keys.is_empty() => {
                        let s = pick(&mut rng);
                        let v = t.remove(&s).expect("present");
                        assert_eq!(v.start, s);
                        m.remove(&s);
                        assert!(t.remove(&s).is_none());
                    }
                    6 if !keys.is_empty() => {
                        // __split_vma.
                        let s = pick(&mut rng);
                        let (e, st) = m[&s];
                        let pages = (e - s) / page;
                        if pages >= 2 {
                            let at = s + (1 + rng.below(pages - 1)) * page;
                            let lower = t.remove(&s).unwrap();
                            t.insert(Vma { end: at, ..lower });
                            t.insert(vma(at, e, st));
                            m.insert(s, (at, st));
                            m.insert(at, (e, st));
                        }
                    }
                    7 if !keys.is_empty() => {
                        // vma_merge: with the next one when adjacent.
                        let s = pick(&mut rng);
                        let (e, st) = m[&s];
                        if let Some(&(e2, _)) = m.get(&e) {
                            t.remove(&e).unwrap();
                            let lower = t.remove(&s).unwrap();
                            t.insert(Vma { end: e2, ..lower });
                            m.remove(&e);
                            m.insert(s, (e2, st));
                        }
                    }
                    8 if !keys.is_empty() => {
                        // An in-place edit through get_mut: the stack flag,
                        // the end, or the start (expand_stack's move).
                        let s = pick(&mut rng);
                        let (e, st) = m[&s];
                        let mut v = t.get_mut(&s).unwrap();
                        match rng.below(3) {
                            0 => {
                                v.flags.0 ^= VM_GROWSDOWN;
                                drop(v);
                                m.insert(s, (e, !st));
                            }
                            1 if e - s > page => {
                                v.end -= page;
                                drop(v);
                                m.insert(s, (e - page, st));
                            }
                            _ if s >= 16 * page && free(&m, s - page, s) => {
                                v.start -= page;
                                drop(v);
                                m.remove(&s);
                                m.insert(s - page, (e, st));
                            }
                            _ => {
                                v.anon_vma = Some(7);
                            }
                        }
                    }
                    _ => {}
                }
                if step % 3 == 0 {
                    agree(&t, &m);
                }
                for _ in 0..8 {
                    let len = match rng.below(4) {
                        0 => (1 + rng.below(4)) * page,
                        1 => (1 + rng.below(64)) * page,
                        2 => (1 + rng.below(600)) * page,
                        _ => rng.below(space + 8 * page),
                    };
                    let low = rng.below(space);
                    let high = match rng.below(5) {
                        0 => u64::MAX,
                        1 => space + rng.below(8) * page,
                        _ => low + rng.below(space),
                    };
                    assert_eq!(
                        t.unmapped_area_topdown(len, low, high),
                        linear_topdown(&m, len, low, high),
                        "seed {seed} step {step}: topdown({len:#x}, {low:#x}, {high:#x}) over {m:x?}"
                    );
                    assert_eq!(
                        t.unmapped_area(len, low, high),
                        linear_bottomup(&m, len, low, high),
                        "seed {seed} step {step}: bottomup({len:#x}, {low:#x}, {high:#x}) over {m:x?}"
                    );
                    let addr = rng.below(space);
                    let want = m
                        .range(..=addr)
                        .next_back()
                        .filter(|(_, (e, _))| *e > addr)
                        .map(|(&s, _)| s);
                    assert_eq!(t.lookup(addr).map(|v| v.start), want);
                    let lo = rng.below(space);
                    let hi = lo + rng.below(space / 4);
                    let got: Vec<u64> = t.range(lo..hi).map(|(k, _)| *k).collect();
                    let want: Vec<u64> = m.range(lo..hi).map(|(k, _)| *k).collect();
                    assert_eq!(got, want);
                    let got: Vec<u64> = t.range(lo..=hi).rev().map(|(k, _)| *k).collect();
                    let want: Vec<u64> = m.range(lo..=hi).rev().map(|(k, _)| *k).collect();
                    assert_eq!(got, want);
                }
            }
            agree(&t, &m);
        }
    }

    /// The shape of the bench: thousands of adjacent VMAs placed top-down,
    /// alternating flags, then holes punched; every search against the walk.
    #[test]
    fn a_packed_address_space_agrees_with_a_linear_walk() {
        let page = PAGE_SIZE;
        let high = 1 << 30;
        let mut t = MapleTree::new();
        let mut m = Model::new();
        t.insert(vma(high + 64 * page, high + 100 * page, true));
        m.insert(high + 64 * page, (high + 100 * page, true));
        for _ in 0..3000 {
            let addr = t.unmapped_area_topdown(page, page, high).unwrap();
            assert_eq!(Some(addr), linear_topdown(&m, page, page, high));
            t.insert(vma(addr, addr + page, false));
            m.insert(addr, (addr + page, false));
        }
        agree(&t, &m);
        let mut rng = Rng(42);
        for _ in 0..500 {
            let s = *m.keys().nth(rng.below(m.len() as u64) as usize).unwrap();
            t.remove(&s);
            m.remove(&s);
            for len in [page, 2 * page, 3 * page, 300 * page] {
                for low in [0, page, high - 2000 * page] {
                    assert_eq!(
                        t.unmapped_area_topdown(len, low, high),
                        linear_topdown(&m, len, low, high)
                    );
                    assert_eq!(
                        t.unmapped_area(len, low, high),
                        linear_bottomup(&m, len, low, high)
                    );
                }
            }
        }
        agree(&t, &m);
    }

    #[test]
    fn an_empty_tree() {
        let t = MapleTree::new();
        assert!(t.is_empty());
        assert_eq!(
            t.unmapped_area_topdown(4096, 4096, 1 << 20),
            Some((1 << 20) - 4096)
        );
        assert_eq!(t.unmapped_area(4096, 4096, 1 << 20), Some(4096));
        assert_eq!(t.unmapped_area_topdown(1 << 20, 4096, 1 << 20), None);
        assert!(t.range(..).next().is_none());
        t.check().unwrap();
    }
}
