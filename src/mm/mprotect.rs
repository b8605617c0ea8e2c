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
    /// `mprotect(start, len, prot)` (`do_mprotect_pkey`): walk the VMAs of
    /// the range in order and change each with [`Kernel::mprotect_fixup`].
    /// Length 0 does nothing. An unmapped `start` is ENOMEM with nothing
    /// changed; a hole further on is ENOMEM after the mapped parts before
    /// it were changed, as Linux does.
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
        self.mm_of(slot)?;
        if len == 0 {
            return Ok(());
        }
        let end = page_align(len)
            .and_then(|l| start.checked_add(l))
            .ok_or_else(|| {
                MmError::NoMemory(format!("mprotect range {start:#x}+{len:#x} overflows"))
            })?;
        let mut at = start;
        while at < end {
            let Some(v) = self.mm_of(slot)?.vma_lookup(at) else {
                let done = if at == start {
                    "nothing changed".to_string()
                } else {
                    format!("{start:#x}-{at:#x} changed, the rest not")
                };
                return Err(MmError::NoMemory(format!(
                    "mprotect: {at:#x} is not mapped (range {start:#x}-{end:#x}; {done})"
                )));
            };
            let piece_end = v.end.min(end);
            self.mprotect_fixup(slot, at, piece_end, prot)?;
            at = piece_end;
        }
        Ok(())
    }

    /// `mprotect_fixup` for `[start, end)`, inside one VMA: making a private
    /// mapping writable charges it to Committed_AS and sets VM_ACCOUNT
    /// (ENOMEM in mode 2 if refused); making an anonymous mapping that
    /// never had a page (no anon_vma) non-writable drops VM_ACCOUNT and
    /// gives the commitment back (`vm_unacct_memory`). Then split at the
    /// edges, change the flags and the PTEs, merge what became compatible.
    fn mprotect_fixup(&mut self, slot: MmSlot, start: u64, end: u64, prot: Prot) -> MmResult<()> {
        let mm = self.mm_of(slot)?;
        let v = mm.vma_lookup(start).expect("caller found it");
        let old = v.flags.0;
        let mut flags = (old & !VM_ACCESS_FLAGS) | prot_bits(prot);
        if flags == old {
            return Ok(());
        }
        if prot.write {
            if old & (VM_ACCOUNT | VM_WRITE | VM_SHARED) == 0 {
                self.vm_enough_memory(slot, (end - start) >> PAGE_SHIFT)?;
                flags |= VM_ACCOUNT;
            }
        } else if old & VM_ACCOUNT != 0 && v.anon_vma.is_none() {
            // Every mapping here is anonymous (`vma_is_anonymous`).
            // Committed_AS follows the flag (MmStruct::account).
            flags &= !VM_ACCOUNT;
        }
        let (vmas, avcs) = self.split_needs(slot, start, end)?;
        if self.mm_of(slot)?.map_count() + vmas > MAX_MAP_COUNT {
            return Err(MmError::NoMemory(
                "mprotect: the split would pass vm.max_map_count".into(),
            ));
        }
        self.split_edges(slot, start, end, vmas, avcs)?;
        let mm = self.procs.mm_mut(slot)?;
        let mut vma = mm.remove_vma(start).expect("split at start");
        vma.flags = VmFlags(flags);
        let (lo, hi) = (vma.start_vpn(), vma.end_vpn());
        mm.insert_vma(vma);
        self.change_protection(slot, lo, hi, prot.write);
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
        // Never written (no anon_vma): read-only drops VM_ACCOUNT.
        assert_eq!(flags_at(&k, pid, base + 8192), "rd mr mw me ");
        assert_eq!(flags_at(&k, pid, base), "rd wr mr mw me ac ");
        assert_eq!(vma_objects(&k), objs + 2);
        // Writing the read-only part segfaults; reading it does not.
        assert_eq!(
            run(&mut k, pid, "touch buf+8K 4K").unwrap_err().errno(),
            libc::EFAULT
        );
        run(&mut k, pid, "touch buf+8K 4K read").unwrap();
        // Back to rw: charged again with VM_ACCOUNT, so all three merge again.
        run(&mut k, pid, "mprotect buf+8K 8K rw").unwrap();
        // AAAAAAAA
        assert_eq!(layout(&k, pid, base, 8), "AAAAAAAA");
        assert_eq!(vma_objects(&k), objs);
        // A range starting in a hole fails with ENOMEM, changing nothing.
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
        // A written mapping (it has an anon_vma): rw -> r keeps VM_ACCOUNT
        // (the commitment stays), r -> rw keeps it.
        run(&mut k, pid, "mmap 8K name=x addr=0x10000000").unwrap();
        run(&mut k, pid, "touch x 4K").unwrap();
        let committed = k.committed_as();
        run(&mut k, pid, "mprotect x 8K r").unwrap();
        assert_eq!(flags_at(&k, pid, 0x1000_0000), "rd mr mw me ac ");
        assert_eq!(k.committed_as(), committed);
        run(&mut k, pid, "mprotect x 8K rw").unwrap();
        assert_eq!(flags_at(&k, pid, 0x1000_0000), "rd wr mr mw me ac ");
        assert_eq!(k.committed_as(), committed);
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

    /// Checked on this machine's Linux 6.18 kernel (a C program: mmap 64M
    /// rw at a fixed address, read one byte, mprotect PROT_READ): Committed_AS
    /// fell by 65536 kB, smaps VmFlags went from `rd wr mr mw me ac` to
    /// `rd mr mw me`, a 1M PROT_READ mapping placed right after it merged
    /// into one `r--p` VMA, and mprotect back to rw charged 65536 kB again
    /// (`ac` back). A mapping with one written page kept `ac` and its charge.
    #[test]
    fn read_only_never_written_mapping_drops_vm_account() {
        let (mut k, pid) = setup();
        let base = 0x2_0000_0000u64;
        let c0 = k.committed_as();
        run(&mut k, pid, "mmap 64M addr=0x200000000").unwrap();
        assert_eq!(k.committed_as(), c0 + 16384);
        assert_eq!(flags_at(&k, pid, base), "rd wr mr mw me ac ");
        // A read maps the zero page: still no anon_vma.
        run(&mut k, pid, "touch 0x200000000 4K read").unwrap();
        run(&mut k, pid, "mprotect 0x200000000 64M r").unwrap();
        assert_eq!(k.committed_as(), c0);
        assert_eq!(flags_at(&k, pid, base), "rd mr mw me ");
        // It merges with a read-only neighbour that has no VM_ACCOUNT.
        run(&mut k, pid, "mmap 1M addr=0x204000000 prot=r").unwrap();
        let v = mm(&k, pid).vma_lookup(base).unwrap();
        assert_eq!((v.start, v.end), (base, base + (65 << 20)));
        // Writable again: charged again, VM_ACCOUNT back.
        run(&mut k, pid, "mprotect 0x200000000 64M rw").unwrap();
        assert_eq!(k.committed_as(), c0 + 16384);
        assert_eq!(flags_at(&k, pid, base), "rd wr mr mw me ac ");
        assert_eq!(flags_at(&k, pid, base + (64 << 20)), "rd mr mw me ");
        // Written once: it has an anon_vma, read-only keeps the charge.
        run(&mut k, pid, "touch 0x200000000 4K").unwrap();
        run(&mut k, pid, "mprotect 0x200000000 64M r").unwrap();
        assert_eq!(k.committed_as(), c0 + 16384);
        assert_eq!(flags_at(&k, pid, base), "rd mr mw me ac ");
        // prot=none drops it just the same for a never-written mapping.
        run(&mut k, pid, "mmap 8K name=n").unwrap();
        let c1 = k.committed_as();
        run(&mut k, pid, "mprotect n 8K none").unwrap();
        assert_eq!(k.committed_as(), c1 - 2);
        assert_eq!(flags_at(&k, pid, addr(&k, pid, "n")), "mr mw me ");
    }

    /// Checked on this machine's Linux 6.18 kernel: 3 pages at a fixed
    /// address with the middle one unmapped; mprotect(PROT_READ) over all
    /// three failed ENOMEM with the first page `r--p` and the third still
    /// `rw-p`; a range starting in a hole failed ENOMEM changing nothing;
    /// length 0 succeeded (even on an unmapped address) unless the address
    /// was misaligned (EINVAL); munmap and mmap of length 0 were EINVAL.
    #[test]
    fn mprotect_over_a_hole_changes_the_part_before_it() {
        let (mut k, pid) = setup();
        let base = 0x3_0000_0000u64;
        run(&mut k, pid, "mmap 12K addr=0x300000000").unwrap();
        run(&mut k, pid, "munmap 0x300001000 4K").unwrap();
        let err = run(&mut k, pid, "mprotect 0x300000000 12K r").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        assert_eq!(flags_at(&k, pid, base), "rd mr mw me ");
        assert_eq!(flags_at(&k, pid, base + 8192), "rd wr mr mw me ac ");
        // Starting in the hole: nothing changes.
        let err = run(&mut k, pid, "mprotect 0x300001000 8K rx").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        assert_eq!(flags_at(&k, pid, base + 8192), "rd wr mr mw me ac ");
        // Past the last mapping: the mapped part changes, then ENOMEM.
        let err = run(&mut k, pid, "mprotect 0x300002000 8K r").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        assert_eq!(flags_at(&k, pid, base + 8192), "rd mr mw me ");
        // Length 0.
        let before = layout(&k, pid, base, 3);
        run(&mut k, pid, "mprotect 0x300000000 0 rw").unwrap();
        run(&mut k, pid, "mprotect 0x400000000 0 r").unwrap();
        assert_eq!(flags_at(&k, pid, base), "rd mr mw me ");
        assert_eq!(layout(&k, pid, base, 3), before);
        for (line, errno) in [
            ("mprotect 0x400000001 0 r", libc::EINVAL),
            ("munmap 0x300000000 0", libc::EINVAL),
            ("mmap 0", libc::EINVAL),
            ("mprotect 0x300000000 12K rws", libc::EINVAL),
        ] {
            assert_eq!(run(&mut k, pid, line).unwrap_err().errno(), errno, "{line}");
        }
        assert_eq!(layout(&k, pid, base, 3), before);
        assert_eq!(flags_at(&k, pid, base), "rd mr mw me ");
    }
}
