//! Changing a mapping's protection (Linux: mm/mprotect.c).

use super::Kernel;
use super::error::{MmError, MmResult};
use super::mmap::*;
use super::types::{MmSlot, PAGE_SHIFT, PAGE_SIZE, VirtAddr};

/// Protection of a mapping (`PROT_READ | PROT_WRITE | PROT_EXEC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Prot {
    /// PROT_READ.
    pub read: bool,
    /// PROT_WRITE.
    pub write: bool,
    /// PROT_EXEC.
    pub exec: bool,
}

impl Prot {
    /// `rw`, the default of `mmap`.
    pub const RW: Prot = Prot {
        read: true,
        write: true,
        exec: false,
    };
}

/// `calc_vm_prot_bits`.
pub fn prot_bits(prot: Prot) -> u64 {
    (if prot.read { VM_READ } else { 0 })
        | (if prot.write { VM_WRITE } else { 0 })
        | (if prot.exec { VM_EXEC } else { 0 })
}

impl Kernel {
    /// `mprotect(start, len, prot)`: split at the edges, change the flags
    /// and the PTEs, merge what became compatible. Making a private mapping
    /// writable charges it to Committed_AS (ENOMEM in mode 2 if refused).
    pub fn do_mprotect(
        &mut self,
        slot: MmSlot,
        start: VirtAddr,
        len: u64,
        prot: Prot,
    ) -> MmResult<()> {
        let start = start.0;
        if !start.is_multiple_of(PAGE_SIZE) {
            return Err(MmError::Invalid(format!(
                "mprotect address {start:#x} is not page aligned"
            )));
        }
        let end = page_align(len)
            .and_then(|l| start.checked_add(l))
            .ok_or_else(|| {
                MmError::NoMemory(format!("mprotect range {start:#x}+{len:#x} overflows"))
            })?;
        self.require_mapped(slot, start, end, "mprotect")?;
        let new_bits = prot_bits(prot);
        let mm = self.mm_of(slot)?;
        let mut charge = 0;
        let mut at = start;
        while at < end {
            let v = mm.vma_lookup(at).expect("checked mapped");
            let piece_end = v.end.min(end);
            if prot.write && v.flags.0 & (VM_ACCOUNT | VM_WRITE | VM_SHARED) == 0 {
                charge += (piece_end - at) >> PAGE_SHIFT;
            }
            at = piece_end;
        }
        if charge > 0 {
            self.vm_enough_memory(slot, charge)?;
        }
        let (vmas, avcs) = self.split_needs(slot, start, end)?;
        if self.mm_of(slot)?.map_count() + vmas > MAX_MAP_COUNT {
            return Err(MmError::NoMemory(
                "mprotect: the split would pass vm.max_map_count".into(),
            ));
        }
        self.split_edges(slot, start, end, vmas, avcs)?;
        let mm = self.procs.mm_mut(slot)?;
        let starts: Vec<u64> = mm.vmas.range(start..end).map(|(s, _)| *s).collect();
        for s in starts {
            let mm = self.procs.mm_mut(slot)?;
            let mut vma = mm.remove_vma(s).expect("listed");
            let mut flags = (vma.flags.0 & !VM_ACCESS_FLAGS) | new_bits;
            if prot.write && flags & VM_SHARED == 0 {
                flags |= VM_ACCOUNT;
            }
            vma.flags = VmFlags(flags);
            let (lo, hi) = (vma.start_vpn(), vma.end_vpn());
            mm.insert_vma(vma);
            self.change_protection(slot, lo, hi, prot.write);
        }
        self.vma_merge_existing_range(slot, start, end)
    }
}

#[cfg(test)]
mod tests {
    use crate::mm::process::testing::*;

    #[test]
    fn mprotect_splits_and_merges_back() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 32K name=buf").unwrap();
        let base = addr(&k, pid, "buf");
        let objs = vma_objects(&k);
        run(&mut k, pid, "mprotect buf+8K 8K r").unwrap();
        //   <>
        // AABBCCCC
        assert_eq!(layout(&k, pid, base, 8), "AABBCCCC");
        assert_eq!(flags_at(&k, pid, base + 8192), "rd mr mw me ac ");
        assert_eq!(flags_at(&k, pid, base), "rd wr mr mw me ac ");
        assert_eq!(vma_objects(&k), objs + 2);
        // Writing the read-only part segfaults; reading it does not.
        assert_eq!(
            run(&mut k, pid, "touch buf+8K 4K").unwrap_err().errno(),
            libc::EFAULT
        );
        run(&mut k, pid, "touch buf+8K 4K read").unwrap();
        // Back to rw: VM_ACCOUNT stayed, so all three merge again.
        run(&mut k, pid, "mprotect buf+8K 8K rw").unwrap();
        // AAAAAAAA
        assert_eq!(layout(&k, pid, base, 8), "AAAAAAAA");
        assert_eq!(vma_objects(&k), objs);
        // An unmapped part makes mprotect fail with ENOMEM, changing nothing.
        let before = layout(&k, pid, base - 8192, 10);
        assert_eq!(
            run(&mut k, pid, "mprotect buf-8K 16K r")
                .unwrap_err()
                .errno(),
            libc::ENOMEM
        );
        assert_eq!(layout(&k, pid, base - 8192, 10), before);
    }

    #[test]
    fn mprotect_to_rw_merges_across_a_read_only_hole() {
        let (mut k, pid) = setup();
        // rw -> r keeps VM_ACCOUNT (the commitment stays), r -> rw keeps it.
        run(&mut k, pid, "mmap 8K name=x addr=0x10000000").unwrap();
        run(&mut k, pid, "mprotect x 8K r").unwrap();
        assert_eq!(flags_at(&k, pid, 0x1000_0000), "rd mr mw me ac ");
        run(&mut k, pid, "mprotect x 8K rw").unwrap();
        assert_eq!(flags_at(&k, pid, 0x1000_0000), "rd wr mr mw me ac ");
        // A mapping made read-only has no VM_ACCOUNT and does not merge
        // with a writable neighbour; mprotect rw charges it and sets
        // VM_ACCOUNT (mprotect_fixup), and then they merge.
        run(&mut k, pid, "mmap 8K addr=0x20000000 prot=r").unwrap();
        run(&mut k, pid, "mmap 8K addr=0x20002000").unwrap();
        //  r   rw
        // AA  BB
        assert_eq!(layout(&k, pid, 0x2000_0000, 4), "AABB");
        let committed = k.committed_as();
        run(&mut k, pid, "mprotect 0x20000000 8K rw").unwrap();
        // AAAA
        assert_eq!(layout(&k, pid, 0x2000_0000, 4), "AAAA");
        assert_eq!(k.committed_as(), committed + 2);
    }
}
