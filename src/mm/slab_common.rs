//! The allocator-independent half of slab (Linux: mm/slab_common.c): the
//! kernel's own caches and their creation at boot, `kmem_cache_create` and
//! `kmem_cache_destroy`, the kmalloc size classes, `kmalloc`/`kfree`, and
//! the all-or-nothing bulk allocators. The caches themselves, their slabs
//! and objects are SLUB's ([`super::slub`]).

use super::Kernel;
use super::error::{MmError, MmResult};
use super::page_alloc::{FrameState, PageKind};
use super::slub::*;
use super::types::{MAX_PAGE_ORDER, Order};

/// A boot cache: name, slot size (the objsize column of the capture, which
/// includes alignment), SLAB_RECLAIM_ACCOUNT, and the objects live after
/// boot (`active` of `total` allocated, the difference freed spread over
/// the slabs so some stay partial as on a real machine).
pub(crate) struct BootCache {
    pub(crate) name: &'static str,
    pub(crate) size: u32,
    pub(crate) reclaimable: bool,
    pub(crate) active: u32,
    pub(crate) total: u32,
}

pub(crate) const fn boot(name: &'static str, size: u32, active: u32, total: u32) -> BootCache {
    BootCache {
        name,
        size,
        reclaimable: false,
        active,
        total,
    }
}

pub(crate) const fn boot_rcl(name: &'static str, size: u32, active: u32, total: u32) -> BootCache {
    BootCache {
        name,
        size,
        reclaimable: true,
        active,
        total,
    }
}

/// Marker for the two bootstrap caches: their baseline is one object per
/// cache (struct kmem_cache and struct kmem_cache_node of every cache).
pub(crate) const PER_CACHE: u32 = u32::MAX;

/// The kernel's caches, in creation order (slabinfo shows them newest
/// first). Slot sizes are those of the Linux 6.18 x86_64 capture
/// (`reference/linux-samples/slabinfo`); cred_jar, merged into another
/// cache there, has the 192 bytes of a cache-aligned struct cred.
/// The baseline models a freshly booted small machine (kernel threads,
/// sysfs/procfs, a root file system's dentries and inodes).
pub(crate) const BOOT_CACHES: &[BootCache] = &[
    boot("kmem_cache", 256, PER_CACHE, PER_CACHE),
    boot("kmem_cache_node", 128, PER_CACHE, PER_CACHE),
    boot("kmalloc-96", 96, 1176, 1260),
    boot("kmalloc-192", 192, 588, 630),
    boot("kmalloc-8", 8, 1536, 1536),
    boot("kmalloc-16", 16, 1790, 1792),
    boot("kmalloc-32", 32, 1011, 1152),
    boot("kmalloc-64", 64, 1790, 1984),
    boot("kmalloc-128", 128, 640, 640),
    boot("kmalloc-256", 256, 448, 480),
    boot("kmalloc-512", 512, 560, 640),
    boot("kmalloc-1k", 1024, 400, 448),
    boot("kmalloc-2k", 2048, 160, 176),
    boot("kmalloc-4k", 4096, 96, 104),
    boot("kmalloc-8k", 8192, 24, 24),
    boot_rcl("kmalloc-rcl-96", 96, 84, 84),
    boot_rcl("kmalloc-rcl-192", 192, 42, 42),
    boot_rcl("kmalloc-rcl-8", 8, 0, 0),
    boot_rcl("kmalloc-rcl-16", 16, 0, 0),
    boot_rcl("kmalloc-rcl-32", 32, 0, 0),
    boot_rcl("kmalloc-rcl-64", 64, 0, 0),
    boot_rcl("kmalloc-rcl-128", 128, 0, 0),
    boot_rcl("kmalloc-rcl-256", 256, 0, 0),
    boot_rcl("kmalloc-rcl-512", 512, 0, 0),
    boot_rcl("kmalloc-rcl-1k", 1024, 0, 0),
    boot_rcl("kmalloc-rcl-2k", 2048, 0, 0),
    boot_rcl("kmalloc-rcl-4k", 4096, 0, 0),
    boot_rcl("kmalloc-rcl-8k", 8192, 0, 0),
    boot("kmalloc-cg-96", 96, 84, 84),
    boot("kmalloc-cg-192", 192, 147, 147),
    boot("kmalloc-cg-8", 8, 1024, 1024),
    boot("kmalloc-cg-16", 16, 512, 512),
    boot("kmalloc-cg-32", 32, 256, 256),
    boot("kmalloc-cg-64", 64, 128, 128),
    boot("kmalloc-cg-128", 128, 96, 96),
    boot("kmalloc-cg-256", 256, 32, 32),
    boot("kmalloc-cg-512", 512, 48, 48),
    boot("kmalloc-cg-1k", 1024, 147, 160),
    boot("kmalloc-cg-2k", 2048, 80, 96),
    boot("kmalloc-cg-4k", 4096, 24, 24),
    boot("kmalloc-cg-8k", 8192, 8, 8),
    boot("vmap_area", 72, 1344, 1344),
    boot("mm_struct", 1600, 20, 40),
    boot("maple_node", 256, 256, 256),
    boot("task_group", 704, 23, 23),
    boot_rcl("radix_tree_node", 584, 700, 700),
    boot("pool_workqueue", 512, 128, 128),
    boot("pid", 192, 100, 105),
    boot("anon_vma", 104, 156, 156),
    boot("anon_vma_chain", 64, 200, 256),
    boot("task_struct", 4224, 80, 84),
    boot("cred_jar", 192, 105, 105),
    boot("sighand_cache", 2112, 75, 75),
    boot("signal_cache", 1152, 80, 84),
    boot("files_cache", 704, 23, 23),
    boot("vm_area_struct", 192, 300, 441),
    boot("nsproxy", 72, 56, 56),
    boot("names_cache", 4096, 8, 8),
    boot_rcl("dentry", 192, 4200, 4200),
    boot_rcl("inode_cache", 624, 520, 520),
    boot("filp", 192, 210, 252),
    boot("mnt_cache", 384, 42, 42),
    boot("kernfs_node_cache", 136, 6000, 6000),
    boot("shmem_inode_cache", 752, 84, 84),
    boot_rcl("bdev_cache", 1536, 21, 21),
    boot("sigqueue", 80, 51, 51),
    boot("seq_file", 120, 34, 34),
    boot_rcl("proc_inode_cache", 696, 92, 92),
    boot("pde_opener", 40, 102, 102),
    boot("proc_dir_entry", 192, 357, 357),
    boot_rcl("buffer_head", 104, 780, 780),
    boot("file_lock_cache", 192, 21, 21),
    boot("skbuff_head_cache", 256, 128, 128),
    boot_rcl("sock_inode_cache", 832, 38, 38),
    boot("uid_cache", 128, 32, 32),
];

/// Id of a boot cache by name, at compile time (a typo fails the build).
pub(crate) const fn boot_id(name: &str) -> CacheId {
    let mut i = 0;
    while i < BOOT_CACHES.len() {
        let candidate = BOOT_CACHES[i].name.as_bytes();
        let wanted = name.as_bytes();
        if candidate.len() == wanted.len() {
            let mut j = 0;
            while j < wanted.len() && candidate[j] == wanted[j] {
                j += 1;
            }
            if j == wanted.len() {
                return CacheId(i as u16);
            }
        }
        i += 1;
    }
    panic!("no such boot cache")
}

/// `struct kmem_cache` of every cache.
pub const KMEM_CACHE: CacheId = boot_id("kmem_cache");

/// `struct kmem_cache_node` of every cache.
pub const KMEM_CACHE_NODE: CacheId = boot_id("kmem_cache_node");

/// `struct task_struct` (one per task).
pub const TASK_STRUCT: CacheId = boot_id("task_struct");

/// `struct mm_struct` (one per address space).
pub const MM_STRUCT: CacheId = boot_id("mm_struct");

/// `struct vm_area_struct` (one per VMA).
pub const VM_AREA_STRUCT: CacheId = boot_id("vm_area_struct");

/// `struct anon_vma`.
pub const ANON_VMA: CacheId = boot_id("anon_vma");

/// `struct anon_vma_chain`.
pub const ANON_VMA_CHAIN: CacheId = boot_id("anon_vma_chain");

/// `struct files_struct`.
pub const FILES_CACHE: CacheId = boot_id("files_cache");

/// `struct signal_struct`.
pub const SIGNAL_CACHE: CacheId = boot_id("signal_cache");

/// `struct sighand_struct`.
pub const SIGHAND_CACHE: CacheId = boot_id("sighand_cache");

/// `struct pid`.
pub const PID: CacheId = boot_id("pid");

/// `struct cred`.
pub const CRED_JAR: CacheId = boot_id("cred_jar");

/// `struct dentry` (reclaimable).
pub const DENTRY: CacheId = boot_id("dentry");
/// `radix_tree_node`: the page-cache index (xarray) nodes.
pub const RADIX_TREE_NODE: CacheId = boot_id("radix_tree_node");

/// `struct inode` of pseudo file systems (reclaimable).
pub const INODE_CACHE: CacheId = boot_id("inode_cache");

/// `struct file`.
pub const FILP: CacheId = boot_id("filp");

/// Maple tree nodes (the VMA tree).
pub const MAPLE_NODE: CacheId = boot_id("maple_node");

/// The kmalloc-N caches by size class, smallest first.
pub const KMALLOC_CACHES: [(u64, CacheId); 13] = [
    (8, boot_id("kmalloc-8")),
    (16, boot_id("kmalloc-16")),
    (32, boot_id("kmalloc-32")),
    (64, boot_id("kmalloc-64")),
    (96, boot_id("kmalloc-96")),
    (128, boot_id("kmalloc-128")),
    (192, boot_id("kmalloc-192")),
    (256, boot_id("kmalloc-256")),
    (512, boot_id("kmalloc-512")),
    (1024, boot_id("kmalloc-1k")),
    (2048, boot_id("kmalloc-2k")),
    (4096, boot_id("kmalloc-4k")),
    (8192, boot_id("kmalloc-8k")),
];

/// The kmalloc-N cache that serves `size` bytes (`kmalloc_slab`), `None`
/// for 0 and for sizes above [`KMALLOC_MAX_CACHE_SIZE`].
pub fn kmalloc_cache(size: u64) -> Option<CacheId> {
    // Linux's size_index table for the small sizes (the 96 and 192 byte
    // classes sit between the powers of two), fls above.
    let class = match size {
        0 => return None,
        1..=8 => 0,
        9..=16 => 1,
        17..=32 => 2,
        33..=64 => 3,
        65..=96 => 4,
        97..=128 => 5,
        129..=192 => 6,
        193..=256 => 7,
        257..=KMALLOC_MAX_CACHE_SIZE => (size - 1).ilog2() as usize, // 512 → 8, … 8192 → 12
        _ => return None,
    };
    Some(KMALLOC_CACHES[class].1)
}

/// Serials of the slabs created since `start` (`count` of them), for the
/// rollback of a failed multi-object command.
pub(crate) fn created_since(start: u32, count: u32) -> impl Fn(u32) -> bool {
    move |serial| serial.wrapping_sub(start) < count
}

impl Kernel {
    /// Boot the slab allocator (`kmem_cache_init` and the caches the rest
    /// of start_kernel creates): the boot caches, one `kmem_cache` and one
    /// `kmem_cache_node` object per cache, and the baseline objects.
    pub(crate) fn kmem_cache_init(&mut self) -> MmResult<()> {
        for boot in BOOT_CACHES {
            let cache = KmemCache::new(
                boot.name,
                boot.size,
                boot.size,
                ARCH_SLAB_MINALIGN,
                boot.reclaimable,
                true,
            )?;
            self.slab.add_cache(cache)?;
        }
        // bootstrap(): the static kmem_cache and kmem_cache_node move into
        // objects of themselves, then every cache gets its two objects.
        for index in 0..self.slab.cache_list.len() {
            let id = self.slab.cache_list[index];
            let meta = self.alloc_cache_meta()?;
            self.slab.cache_mut(id)?.meta = Some(meta);
        }
        self.printk(format!(
            "SLUB: HWalign=64, Order=0-{SLUB_MAX_ORDER}, MinObjects=0, CPUs={}, Nodes=1",
            super::NR_CPUS
        ));
        Ok(())
    }

    /// The rest of a running machine's slab objects (dentries, inodes,
    /// buffers, …): after the boot tasks took theirs, every boot cache is
    /// filled to the captured total and freed down to the captured active
    /// count.
    pub(crate) fn kmem_cache_fill_baseline(&mut self) -> MmResult<()> {
        for (index, boot) in BOOT_CACHES.iter().enumerate() {
            if boot.total == PER_CACHE || boot.total == 0 {
                continue;
            }
            let id = CacheId(index as u16);
            // The boot tasks' objects count in the capture's numbers.
            let held = self.slab.cache(id).map_or(0, |c| c.active_objs());
            let fill = u64::from(boot.total).saturating_sub(held);
            let mut objects = Vec::with_capacity(fill as usize);
            for _ in 0..fill {
                objects.push(self.kmem_cache_alloc(id)?);
            }
            // Free the difference evenly spread, so those slabs stay
            // partial as on a machine that has been running a while.
            let frees = (u64::from(boot.total - boot.active)).min(fill) as usize;
            let mut freed = vec![false; objects.len()];
            for j in 0..frees {
                let victim = j * objects.len() / frees;
                self.kmem_cache_free(objects[victim])?;
                freed[victim] = true;
            }
            // Cached dentries and inodes stay on their LRU for the shrinker.
            if boot.reclaimable {
                let live = objects.iter().zip(&freed).filter(|(_, f)| !**f);
                self.slab.shrinkable.extend(live.map(|(o, _)| *o));
            }
        }
        Ok(())
    }

    /// Allocate the `struct kmem_cache` and `struct kmem_cache_node` of a
    /// new cache; nothing stays allocated on failure.
    fn alloc_cache_meta(&mut self) -> MmResult<(SlabObject, SlabObject)> {
        let cache = self.kmem_cache_alloc(KMEM_CACHE)?;
        match self.kmem_cache_alloc(KMEM_CACHE_NODE) {
            Ok(node) => Ok((cache, node)),
            Err(err) => {
                self.kmem_cache_free(cache)?;
                Err(err)
            }
        }
    }

    /// `kmalloc(size, GFP_KERNEL)`: an object of the smallest kmalloc-N
    /// cache that holds `size` bytes; above [`KMALLOC_MAX_CACHE_SIZE`] a
    /// block of `get_order(size)` straight from the buddy allocator
    /// (`kmalloc_large`, PageKind::Kernel, not counted as Slab). EINVAL for
    /// 0 and for sizes above [`KMALLOC_MAX_SIZE`]; ENOMEM when no page can
    /// be had.
    pub fn kmalloc(&mut self, size: u64) -> MmResult<KmallocObject> {
        if size == 0 {
            return Err(MmError::Invalid(
                "kmalloc: a zero-size request gets ZERO_SIZE_PTR, not memory; ask for 1 byte or more".into(),
            ));
        }
        if size > KMALLOC_MAX_SIZE {
            return Err(MmError::Invalid(format!(
                "kmalloc {size}: larger than KMALLOC_MAX_SIZE ({}K, one order-{MAX_PAGE_ORDER} block)",
                KMALLOC_MAX_SIZE >> 10
            )));
        }
        match kmalloc_cache(size) {
            Some(cache) => {
                let obj = self.slab_alloc(cache)?;
                self.trace_kmalloc(size, obj);
                Ok(KmallocObject::Slab(obj))
            }
            None => {
                let order = Order::for_bytes(size);
                let zone = self.kernel_zone();
                let pfn = self
                    .alloc_pages(order, zone, PageKind::Kernel)
                    .ok_or_else(|| {
                        MmError::NoMemory(format!(
                            "kmalloc {size}: page allocation failure: order:{} (kmalloc_large): no free block above the min watermark",
                            order.0
                        ))
                    })?;
                self.slab.kmalloc_large_pages += order.pages();
                self.trace_kmalloc_large(Some(size), pfn, order);
                Ok(KmallocObject::Large { pfn, order })
            }
        }
    }

    /// `kfree`: give back what [`Kernel::kmalloc`] returned. EINVAL for a
    /// double free.
    pub fn kfree(&mut self, obj: KmallocObject) -> MmResult<()> {
        self.kfree_inner(obj, |_| false)
    }

    fn kfree_inner(&mut self, obj: KmallocObject, discard: impl Fn(u32) -> bool) -> MmResult<()> {
        match obj {
            KmallocObject::Slab(obj) => {
                self.trace_kfree(obj);
                self.slab_free(obj, discard)
            }
            KmallocObject::Large { pfn, order } => {
                if pfn.0 >= self.page_alloc.max_pfn
                    || self.page_alloc.frames.state(pfn) != FrameState::Allocated
                    || self.page_alloc.frames.kind(pfn) != PageKind::Kernel
                {
                    return Err(MmError::Invalid(format!(
                        "kfree: block at pfn {pfn} is not a live kmalloc_large block (double free?)"
                    )));
                }
                self.trace_kmalloc_large(None, pfn, order);
                self.free_pages(pfn, order)?;
                self.slab.kmalloc_large_pages -= order.pages();
                Ok(())
            }
        }
    }

    /// `kmem_cache_create(name, size, align, 0, NULL)`: a cache of the
    /// user's own. Its `struct kmem_cache` and `kmem_cache_node` come from
    /// the kmem_cache and kmem_cache_node caches. EEXIST for a taken name,
    /// EINVAL for a size or alignment out of range.
    pub fn kmem_cache_create(
        &mut self,
        name: &str,
        object_size: u64,
        align: u64,
    ) -> MmResult<CacheId> {
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(MmError::Invalid(format!(
                "kmem_cache_create: cache name {name:?} must be non-empty, without blanks or '/'"
            )));
        }
        if self.slab.by_name.contains_key(name) {
            return Err(MmError::Exists(format!(
                "kmem_cache_create: a cache named '{name}' already exists (see slabinfo); pick another name"
            )));
        }
        if object_size == 0 || object_size > MAX_OBJECT_SIZE {
            return Err(MmError::Invalid(format!(
                "kmem_cache_create: {name}: object size {object_size} out of range 1..{}K",
                MAX_OBJECT_SIZE >> 10
            )));
        }
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(MmError::Invalid(format!(
                "kmem_cache_create: {name}: align={align} must be a power of two up to {MAX_ALIGN}"
            )));
        }
        let size = slot_size(object_size as u32, align as u32)
            .filter(|&s| s as u64 <= MAX_OBJECT_SIZE)
            .ok_or_else(|| {
                MmError::Invalid(format!(
                    "kmem_cache_create: {name}: {object_size} bytes aligned to {align} exceed {}K",
                    MAX_OBJECT_SIZE >> 10
                ))
            })?;
        let cache = KmemCache::new(
            name,
            object_size as u32,
            size,
            (align as u32).max(ARCH_SLAB_MINALIGN),
            false,
            false,
        )?;
        let meta = self.alloc_cache_meta()?;
        match self.slab.add_cache(cache) {
            Ok(id) => {
                self.slab.cache_mut(id)?.meta = Some(meta);
                Ok(id)
            }
            Err(err) => {
                self.kmem_cache_free(meta.1)?;
                self.kmem_cache_free(meta.0)?;
                Err(err)
            }
        }
    }

    /// `kmem_cache_destroy`: remove a cache made with `kmem_cache_create`.
    /// ENOENT for an unknown name; EBUSY for the kernel's own caches and
    /// while objects of the cache are alive.
    pub fn kmem_cache_destroy(&mut self, name: &str) -> MmResult<()> {
        let not_found = || {
            MmError::NotFound(format!(
                "kmem_cache_destroy: no cache named '{name}' (see slabinfo)"
            ))
        };
        let id = self.slab.cache_id(name).ok_or_else(not_found)?;
        let cache = self.slab.cache(id).ok_or_else(not_found)?;
        if cache.boot {
            return Err(MmError::Busy(format!(
                "kmem_cache_destroy: {}: one of the kernel's own caches, always in use; only caches made with kmem_cache_create can be destroyed",
                cache.name
            )));
        }
        if cache.active_objs > 0 {
            return Err(MmError::Busy(format!(
                "kmem_cache_destroy: {}: Slab cache still has objects ({} in use); free them first with kmem_cache_free tag=T",
                cache.name, cache.active_objs
            )));
        }
        let mut cache = self
            .slab
            .caches
            .get_mut(id.0 as usize)
            .and_then(Option::take)
            .ok_or_else(not_found)?;
        self.slab.by_name.remove(&cache.name);
        self.slab.cache_list.retain(|&c| c != id);
        let order = cache.order;
        for pfn in cache.take_empty_slabs() {
            self.slab
                .account_pages(cache.reclaimable, order.pages(), false);
            self.free_pages(pfn, order)?;
        }
        if let Some((meta_cache, meta_node)) = cache.meta {
            self.kmem_cache_free(meta_node)?;
            self.kmem_cache_free(meta_cache)?;
        }
        Ok(())
    }

    /// `kmem_cache_alloc_bulk`: `count` objects of `cache`, all or
    /// nothing. On failure every object taken goes back, and so do the
    /// slabs this call created, so the caches are as before; the error
    /// says how far it got.
    pub fn kmem_cache_alloc_bulk(
        &mut self,
        cache: CacheId,
        count: u64,
    ) -> MmResult<Vec<SlabObject>> {
        self.alloc_bulk(
            count,
            |k| k.kmem_cache_alloc(cache),
            |k, obj, discard| k.kmem_cache_free_inner(obj, discard),
            "kmem_cache_alloc: ",
        )
    }

    /// `count` kmalloc objects of `size` bytes, all or nothing, like
    /// [`Kernel::kmem_cache_alloc_bulk`] (Linux has no kmalloc_bulk; this is
    /// `kmalloc` in a loop with the same rollback).
    pub fn kmalloc_bulk(&mut self, size: u64, count: u64) -> MmResult<Vec<KmallocObject>> {
        self.alloc_bulk(
            count,
            |k| k.kmalloc(size),
            |k, obj, discard| k.kfree_inner(obj, discard),
            "",
        )
    }

    /// The all-or-nothing loop of the bulk allocators.
    fn alloc_bulk<T>(
        &mut self,
        count: u64,
        mut alloc: impl FnMut(&mut Kernel) -> MmResult<T>,
        mut free: impl FnMut(&mut Kernel, T, &dyn Fn(u32) -> bool) -> MmResult<()>,
        prefix: &str,
    ) -> MmResult<Vec<T>> {
        let start = self.slab.next_serial;
        let mut taken = Vec::with_capacity(usize::try_from(count.min(1 << 16)).unwrap_or(0));
        for _ in 0..count {
            match alloc(self) {
                Ok(obj) => taken.push(obj),
                Err(err) => {
                    let created = self.slab.next_serial.wrapping_sub(start);
                    let discard = created_since(start, created);
                    let got = taken.len();
                    for obj in taken.into_iter().rev() {
                        free(self, obj, &discard)?;
                    }
                    return Err(match err {
                        MmError::NoMemory(why) => MmError::NoMemory(format!(
                            "{prefix}{why}; got {got} of {count} objects and gave them back"
                        )),
                        other => other,
                    });
                }
            }
        }
        Ok(taken)
    }
}
