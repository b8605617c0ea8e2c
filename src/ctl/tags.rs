//! Tags: the names a control-file user gives what `alloc_pages`,
//! `kmem_cache_alloc` and `kmalloc` took, so `free_pages`, `kmem_cache_free`
//! and `kfree` can give it back. A user-interface notion, not a kernel
//! one: the kernel hands out pfns and object handles, the tags remember them.

use std::collections::BTreeMap;

use crate::mm::Kernel;
use crate::mm::error::{MmError, MmResult};
use crate::mm::page_alloc::FrameState;
use crate::mm::slub::{KmallocObject, SlabObject};
use crate::mm::types::{Order, Pfn};

/// What one kind of tag holds, oldest first per tag.
#[derive(Clone, Debug)]
pub struct TagStore<T> {
    by_tag: BTreeMap<String, Vec<T>>,
}

impl<T> Default for TagStore<T> {
    fn default() -> Self {
        TagStore {
            by_tag: BTreeMap::new(),
        }
    }
}

impl<T> TagStore<T> {
    /// Append what one command took (all of it: commands are all or nothing).
    pub fn add(&mut self, tag: &str, items: Vec<T>) {
        if !items.is_empty() {
            self.by_tag
                .entry(tag.to_string())
                .or_default()
                .extend(items);
        }
    }

    /// Take the newest `count` items of `tag` (all when None), newest
    /// first. None when the tag holds nothing.
    pub fn take(&mut self, tag: &str, count: Option<u64>) -> Option<Vec<T>> {
        let items = self.by_tag.get_mut(tag)?;
        let n = count
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(usize::MAX)
            .min(items.len());
        let mut taken = items.split_off(items.len() - n);
        if items.is_empty() {
            self.by_tag.remove(tag);
        }
        taken.reverse();
        Some(taken)
    }

    /// True when `tag` holds something.
    pub fn contains(&self, tag: &str) -> bool {
        self.by_tag.contains_key(tag)
    }

    /// What `tag` holds, oldest first.
    pub fn get(&self, tag: &str) -> &[T] {
        self.by_tag.get(tag).map_or(&[], Vec::as_slice)
    }

    /// Every tag and what it holds.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[T])> {
        self.by_tag.iter().map(|(t, v)| (t.as_str(), v.as_slice()))
    }

    /// Number of tags in use.
    pub fn len(&self) -> usize {
        self.by_tag.len()
    }

    /// True when no tag holds anything.
    pub fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }

    /// Give back the newest `count` items of `tag` through `free`, newest
    /// first; ENOENT (naming `verb` and what the tag should hold) when it
    /// holds none of this kind.
    pub fn free(
        &mut self,
        tag: &str,
        count: Option<u64>,
        missing: impl FnOnce() -> MmError,
        mut free: impl FnMut(T) -> MmResult<()>,
    ) -> MmResult<()> {
        let items = self.take(tag, count).ok_or_else(missing)?;
        for item in items {
            free(item)?;
        }
        Ok(())
    }
}

/// Every tag store.
#[derive(Clone, Debug, Default)]
pub struct Tags {
    /// `alloc_pages ... tag=T` blocks.
    pub pages: TagStore<(Pfn, Order)>,
    /// `kmem_cache_alloc ... tag=T` objects.
    pub objects: TagStore<SlabObject>,
    /// `kmalloc ... tag=T` objects.
    pub kmalloc: TagStore<KmallocObject>,
}

impl Tags {
    /// Every tagged block and object is alive in the kernel and held by
    /// exactly one tag entry.
    pub fn check(&self, kernel: &Kernel) -> Result<(), String> {
        let frames = &kernel.page_alloc.frames;
        let mut tagged_pages = 0u64;
        for (tag, blocks) in self.pages.iter() {
            for &(pfn, order) in blocks {
                if frames.state(pfn) != FrameState::Allocated || frames.order(pfn) != order {
                    return Err(format!(
                        "tag {tag}: block {pfn} is not allocated at order {}",
                        order.0
                    ));
                }
                tagged_pages += order.pages();
            }
        }
        let managed = kernel.page_alloc.total_managed();
        let free = kernel.page_alloc.total_free();
        if free + tagged_pages > managed {
            return Err(format!(
                "free {free} + tagged {tagged_pages} > managed {managed}"
            ));
        }
        // Sorted afterwards to find an object tagged twice: a Vec and one
        // sort cost far less than a set with a node per object.
        let mut objects = Vec::new();
        let mut live = |tag: &str, obj: SlabObject| -> Result<(), String> {
            let cache = kernel
                .slab
                .cache(obj.cache())
                .ok_or_else(|| format!("slab: tag {tag} holds an object of a dead cache"))?;
            cache
                .check_live(obj)
                .map_err(|why| format!("slab: tag {tag}: object {obj:?}: {why}"))?;
            objects.push(obj);
            Ok(())
        };
        for (tag, objs) in self.objects.iter() {
            for &obj in objs {
                live(tag, obj)?;
            }
        }
        let mut tagged_large = 0u64;
        for (tag, objs) in self.kmalloc.iter() {
            for &obj in objs {
                match obj {
                    KmallocObject::Slab(o) => live(tag, o)?,
                    KmallocObject::Large { pfn, order } => {
                        if frames.state(pfn) != FrameState::Allocated || frames.order(pfn) != order
                        {
                            return Err(format!(
                                "slab: kmalloc tag {tag}: large block {pfn} not allocated"
                            ));
                        }
                        tagged_large += order.pages();
                    }
                }
            }
        }
        objects.sort_unstable();
        if let Some(w) = objects.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("slab: object {:?} tagged twice", w[0]));
        }
        if tagged_large > kernel.slab.kmalloc_large_pages() {
            return Err(format!(
                "slab: tags hold {tagged_large} kmalloc_large pages, counter says {}",
                kernel.slab.kmalloc_large_pages()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_is_newest_first_and_forgets_empty_tags() {
        let mut s: TagStore<u32> = TagStore::default();
        s.add("a", vec![1, 2, 3]);
        s.add("a", vec![4]);
        s.add("b", vec![]);
        assert!(!s.contains("b"));
        assert_eq!(s.take("a", Some(2)), Some(vec![4, 3]));
        assert_eq!(s.get("a"), &[1, 2]);
        assert_eq!(s.take("a", None), Some(vec![2, 1]));
        assert!(s.is_empty());
        assert_eq!(s.take("a", None), None);
    }

    #[test]
    fn free_reports_a_missing_tag() {
        let mut s: TagStore<u32> = TagStore::default();
        let err = s
            .free("x", None, || MmError::NotFound("none".into()), |_| Ok(()))
            .unwrap_err();
        assert_eq!(err.errno(), libc::ENOENT);
    }
}
