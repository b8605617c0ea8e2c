//! `MOUNT/kpagecount` and `MOUNT/kpageflags` (SPEC §9): a process's pfns
//! from its pagemap, then what the two files say about them. Expected
//! values are the ones Linux 6.18 showed for the same pages in
//! tests/reference/linux-samples/kpageflags-self.txt (its program beside
//! it): 0x400005828 for an exclusive anonymous page, 0x5828 once fork
//! shares it, 0x101000000 for the zero page, 0x400 for every free page.

mod common;

use std::os::unix::fs::{FileExt, PermissionsExt};
use std::process::{Command, Stdio};

use common::{MMFS, Mount};

const KPF_REFERENCED: u64 = 1 << 2;
const KPF_UPTODATE: u64 = 1 << 3;
const KPF_LRU: u64 = 1 << 5;
const KPF_SLAB: u64 = 1 << 7;
const KPF_BUDDY: u64 = 1 << 10;
const KPF_MMAP: u64 = 1 << 11;
const KPF_ANON: u64 = 1 << 12;
const KPF_ZERO_PAGE: u64 = 1 << 24;
const KPF_PGTABLE: u64 = 1 << 26;

/// Anonymous, mapped once, PG_anon_exclusive (bit 34): Linux's value after
/// the fault's LRU batch drained ("anon written, 64 more faulted").
const ANON_EXCLUSIVE: u64 = 0x4_0000_5828;
/// The same page shared by fork ("anon written, after fork").
const ANON_SHARED: u64 = 0x5828;
/// The zero page: ZERO_PAGE | RESERVED.
const ZERO_PAGE: u64 = 0x1_0100_0000;

/// The entry of `file` (a mount-relative path) for index `index`.
fn entry(m: &Mount, file: &str, index: u64) -> u64 {
    let f = std::fs::File::open(m.path(file)).unwrap();
    let mut raw = [0u8; 8];
    f.read_exact_at(&mut raw, index * 8)
        .unwrap_or_else(|e| panic!("{file} entry {index:#x}: {e}"));
    u64::from_le_bytes(raw)
}

/// The pfn mapped at `addr` in `pid`, from its pagemap.
fn pfn_at(m: &Mount, pid: &str, addr: u64) -> u64 {
    let e = entry(m, &format!("{pid}/pagemap"), addr / 4096);
    assert_eq!(e >> 63, 1, "{addr:#x} present in {pid}: {e:#x}");
    e & ((1 << 55) - 1)
}

/// (kpagecount, kpageflags) of a pfn.
fn kpage(m: &Mount, pfn: u64) -> (u64, u64) {
    (entry(m, "kpagecount", pfn), entry(m, "kpageflags", pfn))
}

/// Every entry of a kpage file, read in 1 MiB chunks (reads must be whole
/// entries, as in Linux).
fn all_entries(m: &Mount, file: &str) -> Vec<u64> {
    let f = std::fs::File::open(m.path(file)).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read_at(&mut buf, out.len() as u64 * 8).unwrap();
        if n == 0 {
            return out;
        }
        assert_eq!(n % 8, 0);
        out.extend(
            buf[..n]
                .chunks(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap())),
        );
    }
}

/// A `Key:   N kB` line of meminfo, in pages.
fn meminfo_pages(m: &Mount, key: &str) -> u64 {
    let text = m.read("meminfo");
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in meminfo"));
    kb / 4
}

/// Start of the mapping whose maps line ends with `suffix`.
fn start_of(m: &Mount, pid: &str, suffix: &str) -> u64 {
    let maps = m.read(&format!("{pid}/maps"));
    let line = maps
        .lines()
        .find(|l| l.ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix} in {maps}"));
    u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap()
}

#[test]
fn files_are_root_only_whole_entries_to_the_end_of_memory() {
    let m = Mount::new();
    for name in ["kpagecount", "kpageflags"] {
        let path = m.path(name);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o400, "{name}");
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{name}");
        let f = std::fs::File::open(&path).unwrap();
        let mut buf = [0u8; 16];
        // Linux: `src & KPMMASK || count & KPMMASK` is EINVAL (as the
        // real kernel answered the sample program's preads).
        for (len, offset) in [(8, 4), (4, 0), (12, 8)] {
            let err = f.read_at(&mut buf[..len], offset).unwrap_err();
            assert_eq!(
                err.raw_os_error(),
                Some(libc::EINVAL),
                "{name} {len}@{offset}"
            );
        }
        // The default machine has 1 GiB: 0x40000 pfns, a whole number of
        // 128 MiB sections, so the files end at max_pfn.
        assert_eq!(f.read_at(&mut buf, (0x40000 - 1) * 8).unwrap(), 8);
        assert_eq!(f.read_at(&mut buf, 0x40000 * 8).unwrap(), 0);
    }
    assert_eq!(all_entries(&m, "kpageflags").len(), 0x40000);
    assert_eq!(all_entries(&m, "kpagecount").len(), 0x40000);
}

#[test]
fn anonymous_pages_the_zero_page_and_fork() {
    let m = Mount::new();
    m.ctl("spawn kp");
    let pid = m.read("sys/kernel/ns_last_pid").trim().to_string();
    m.write(&format!("{pid}/ctl"), "mmap 1M name=b\n").unwrap();
    m.write(&format!("{pid}/ctl"), "touch b 4K\n").unwrap();
    m.write(&format!("{pid}/ctl"), "touch b+4K 4K read\n")
        .unwrap();
    let b = start_of(&m, &pid, "[anon:b]");
    let anon = pfn_at(&m, &pid, b);
    let zero = pfn_at(&m, &pid, b + 4096);
    assert_eq!(kpage(&m, anon), (1, ANON_EXCLUSIVE));
    assert_eq!(kpage(&m, zero), (0, ZERO_PAGE));
    // The zero page is the only one.
    let flags = all_entries(&m, "kpageflags");
    let zeros: Vec<usize> = (0..flags.len())
        .filter(|&p| flags[p] & KPF_ZERO_PAGE != 0)
        .collect();
    assert_eq!(zeros, [zero as usize]);

    // fork: both map the page, neither exclusively.
    m.ctl(&format!("fork {pid}"));
    let child = m.read("sys/kernel/ns_last_pid").trim().to_string();
    assert_eq!(pfn_at(&m, &child, b), anon);
    assert_eq!(kpage(&m, anon), (2, ANON_SHARED));
    assert_eq!(kpage(&m, zero), (0, ZERO_PAGE));
    // The child writes: it gets a copy, exclusive; the parent's page is
    // mapped once but stays not exclusive until the parent writes (Linux:
    // "anon written, child gone", then "anon written again").
    m.write(&format!("{child}/ctl"), "touch b 4K\n").unwrap();
    let copy = pfn_at(&m, &child, b);
    assert_ne!(copy, anon);
    assert_eq!(kpage(&m, copy), (1, ANON_EXCLUSIVE));
    assert_eq!(kpage(&m, anon), (1, ANON_SHARED));
    m.write(&format!("{pid}/ctl"), "touch b 4K\n").unwrap();
    assert_eq!(pfn_at(&m, &pid, b), anon, "reused, not copied");
    assert_eq!(kpage(&m, anon), (1, ANON_EXCLUSIVE));

    // After the parent exits its pages are free: BUDDY, count 0.
    m.ctl(&format!("kill {pid}"));
    assert_eq!(kpage(&m, anon), (0, KPF_BUDDY));
    assert_eq!(kpage(&m, copy), (1, ANON_EXCLUSIVE));
}

#[test]
fn page_cache_pages_read_then_mapped() {
    let m = Mount::new();
    std::fs::write(m.path("fs/f"), vec![b'x'; 64 << 10]).unwrap();
    // Write it back and drop it, so the read below brings in clean pages.
    m.ctl("sync");
    m.write("sys/vm/drop_caches", "1\n").unwrap();
    assert_eq!(meminfo_pages(&m, "Cached"), 0);
    assert_eq!(std::fs::read(m.path("fs/f")).unwrap().len(), 64 << 10);
    // Read once with read(2): on the LRU, uptodate, referenced
    // (mark_page_accessed), unmapped — count 0.
    let read_once = KPF_REFERENCED | KPF_UPTODATE | KPF_LRU;
    let flags = all_entries(&m, "kpageflags");
    let counts = all_entries(&m, "kpagecount");
    let cached: Vec<u64> = (0..flags.len() as u64)
        .filter(|&p| flags[p as usize] == read_once)
        .collect();
    assert_eq!(cached.len(), 16, "the file's 16 pages");
    assert_eq!(meminfo_pages(&m, "Cached"), 16);
    assert!(cached.iter().all(|&p| counts[p as usize] == 0));

    // Mapped and touched: one PTE, MMAP (Linux: "file page read(2) +
    // mapped", whose LRU bit was still in a per-CPU batch).
    m.ctl("spawn reader");
    let pid = m.read("sys/kernel/ns_last_pid").trim().to_string();
    m.write(&format!("{pid}/ctl"), "mmap 64K file=/f name=m\n")
        .unwrap();
    m.write(&format!("{pid}/ctl"), "touch m 4K read\n").unwrap();
    let start = start_of(&m, &pid, " /f");
    let page = pfn_at(&m, &pid, start);
    assert!(cached.contains(&page), "the page read before");
    assert_eq!(kpage(&m, page), (1, read_once | KPF_MMAP));
    // fork copies no PTEs of a file mapping without an anon_vma (Linux's
    // vma_needs_copy): the child maps the page at its first touch.
    m.ctl(&format!("fork {pid}"));
    let child = m.read("sys/kernel/ns_last_pid").trim().to_string();
    assert_eq!(kpage(&m, page), (1, read_once | KPF_MMAP));
    m.write(&format!("{child}/ctl"), "touch m 4K read\n")
        .unwrap();
    assert_eq!(pfn_at(&m, &child, start), page);
    assert_eq!(kpage(&m, page), (2, read_once | KPF_MMAP));

    // Unmapped everywhere: the page stays cached, count 0, no MMAP, no
    // ANON. (Linux's zap would also activate it — its PTE was young —
    // which the simulation does not model, so only these bits are checked.)
    m.write(&format!("{pid}/ctl"), &format!("munmap {start:#x} 64K\n"))
        .unwrap();
    assert_eq!(kpage(&m, page).0, 1);
    m.ctl(&format!("kill {child}"));
    let (count, flags) = kpage(&m, page);
    assert_eq!(count, 0);
    assert_eq!(flags & (KPF_MMAP | KPF_ANON), 0, "{flags:#x}");
    assert_eq!(flags & (KPF_UPTODATE | KPF_LRU), KPF_UPTODATE | KPF_LRU);
}

#[test]
fn whole_memory_agrees_with_meminfo() {
    let m = Mount::new();
    m.ctl("spawn busy");
    let pid = m.read("sys/kernel/ns_last_pid").trim().to_string();
    m.write(&format!("{pid}/ctl"), "mmap 8M name=a\n").unwrap();
    m.write(&format!("{pid}/ctl"), "touch a 8M\n").unwrap();
    m.ctl("kmalloc 64 count=1000");
    let flags = all_entries(&m, "kpageflags");
    let counts = all_entries(&m, "kpagecount");
    let with = |bit: u64| flags.iter().filter(|&&f| f & bit != 0).count() as u64;
    // Every page of every free block is BUDDY (Linux: is_free_buddy_page
    // for the tails), so they add up to MemFree.
    assert_eq!(with(KPF_BUDDY), meminfo_pages(&m, "MemFree"));
    assert!(
        flags.windows(2).any(|w| w == [KPF_BUDDY, KPF_BUDDY]),
        "tails of free blocks are BUDDY too"
    );
    assert_eq!(with(KPF_PGTABLE), meminfo_pages(&m, "PageTables"));
    assert_eq!(with(KPF_SLAB), meminfo_pages(&m, "Slab"));
    // Anonymous pages: AnonPages of them, each mapped once.
    let anon: Vec<usize> = (0..flags.len())
        .filter(|&p| flags[p] & KPF_ANON != 0)
        .collect();
    assert_eq!(anon.len() as u64, meminfo_pages(&m, "AnonPages"));
    assert!(
        anon.iter()
            .all(|&p| counts[p] == 1 && flags[p] == ANON_EXCLUSIVE)
    );
    // Nothing else is mapped, and no page is both free and in use.
    assert!((0..flags.len()).all(|p| counts[p] == 0 || flags[p] & KPF_MMAP != 0));
    assert!(flags.iter().all(|&f| f & KPF_BUDDY == 0 || f == KPF_BUDDY));
}

#[test]
fn exec_sees_them_at_proc() {
    let m = Mount::new();
    // The host's /proc/kpageflags covers all of its RAM; inside exec it is
    // the simulated machine's 0x40000 pages.
    let out = Command::new(MMFS)
        .arg("exec")
        .arg(&m.dir)
        .arg("--")
        .args([
            "python3",
            "-c",
            "import os\nfor n in ('kpagecount', 'kpageflags'):\n    fd = os.open('/proc/' + n, os.O_RDONLY)\n    size = 0\n    while True:\n        b = os.pread(fd, 1 << 20, size)\n        if not b: break\n        size += len(b)\n    print(n, size)",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run mmfs exec");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text,
        format!("kpagecount {0}\nkpageflags {0}\n", 0x40000 * 8)
    );
}
