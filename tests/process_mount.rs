//! Processes through a real mount: demand paging as a shell user sees it,
//! the per-process files parsed by procfs-core, the errno of each failure,
//! and the machine-wide invariants after every step.

mod common;

use std::io::Cursor;

use common::{Mount, stdout};
use procfs_core::process::{MMapPath, MemoryMaps, Stat, StatM, Status};
use procfs_core::{FromBufRead, FromRead};

/// `name value` of vmstat.
fn vmstat(m: &Mount, key: &str) -> u64 {
    m.read("vmstat")
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.parse().ok())?
        })
        .unwrap_or_else(|| panic!("{key} in vmstat"))
}

fn status(m: &Mount, pid: u32) -> Status {
    let text = m.read(&format!("{pid}/status"));
    Status::from_buf_read(Cursor::new(text)).expect("procfs-core parses status")
}

fn spawn(m: &Mount, name: &str) -> u32 {
    m.ctl(&format!("spawn {name}"));
    m.read("sys/kernel/ns_last_pid")
        .trim()
        .parse()
        .expect("ns_last_pid")
}

fn pctl(m: &Mount, pid: u32, line: &str) {
    m.write(&format!("{pid}/ctl"), &format!("{line}\n"))
        .unwrap_or_else(|e| panic!("{pid}/ctl {line:?}: {e}\n{}", m.read("dmesg")));
}

/// AnonPages = Σ RssAnon, PageTables = Σ (VmPTE + one PGD page),
/// KernelStack = Σ THREAD_SIZE, MemFree = the pages buddyinfo lists.
fn check_invariants(m: &Mount, thread_kb: u64) {
    let pids: Vec<u32> = std::fs::read_dir(&m.dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let (mut anon, mut pte) = (0, 0);
    for &pid in &pids {
        let s = status(m, pid);
        // Kernel threads have no mm (no Rss or VmPTE lines, no PGD).
        let (Some(rss), Some(vmpte)) = (s.rssanon, s.vmpte) else {
            continue;
        };
        anon += rss;
        pte += vmpte + 4;
    }
    assert_eq!(m.meminfo_kb("AnonPages"), anon, "AnonPages = Σ RssAnon");
    assert_eq!(
        m.meminfo_kb("PageTables"),
        pte,
        "PageTables = Σ VmPTE + PGDs"
    );
    assert_eq!(m.meminfo_kb("KernelStack"), thread_kb * pids.len() as u64);
    let buddy: u64 = m
        .read("buddyinfo")
        .lines()
        .flat_map(|l| {
            l.split_whitespace()
                .skip(4)
                .enumerate()
                .map(|(order, n)| n.parse::<u64>().unwrap() << order)
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(m.meminfo_kb("MemFree"), buddy * 4, "MemFree = buddyinfo");
}

#[test]
fn the_blank_cheque_and_demand_paging() {
    // 2G: on 1G, heuristic overcommit refuses one 1G request (> RAM + swap).
    let m = Mount::with_args(&["--mem", "2G"]);
    let pid = spawn(&m, "cheque");
    check_invariants(&m, 16);
    let free = m.meminfo_kb("MemFree");
    let rss = status(&m, pid).vmrss.unwrap();
    assert_eq!(rss, 12);
    pctl(&m, pid, "mmap 1G name=big");
    assert_eq!(status(&m, pid).vmrss.unwrap(), rss);
    assert_eq!(m.meminfo_kb("MemFree"), free);
    assert_eq!(status(&m, pid).vmsize.unwrap(), 132 + (1 << 20));
    check_invariants(&m, 16);
    pctl(&m, pid, "touch big 512M");
    assert_eq!(status(&m, pid).vmrss.unwrap(), rss + (512 << 10));
    assert!(m.meminfo_kb("MemFree") <= free - (512 << 10));
    check_invariants(&m, 16);
    // Reading untouched pages maps the zero page: faults, no memory.
    let faults = vmstat(&m, "pgfault");
    let free = m.meminfo_kb("MemFree");
    pctl(&m, pid, "touch big+512M 256M read");
    assert_eq!(vmstat(&m, "pgfault"), faults + (256 << 8));
    assert_eq!(status(&m, pid).vmrss.unwrap(), rss + (512 << 10));
    // Only page tables were needed for the zero-page mappings.
    assert!(free - m.meminfo_kb("MemFree") <= 4 * 130);
    let stat = Stat::from_read(Cursor::new(m.read(&format!("{pid}/stat")))).unwrap();
    assert_eq!(stat.minflt, 3 + (512 << 8) + (256 << 8));
    assert_eq!(stat.rss, 3 + (512 << 8));
    check_invariants(&m, 16);
    // kill gives everything back.
    m.ctl(&format!("kill {pid}"));
    assert!(!m.path(&format!("{pid}")).exists());
    // What is left is init's (pid 1).
    let init = status(&m, 1);
    assert_eq!(m.meminfo_kb("AnonPages"), init.rssanon.unwrap());
    assert_eq!(m.meminfo_kb("PageTables"), init.vmpte.unwrap() + 4);
    assert_eq!(m.meminfo_kb("Committed_AS"), init.vmstk.unwrap());
    check_invariants(&m, 16);
}

#[test]
fn procfs_core_parses_the_process_files() {
    let m = Mount::new();
    let pid = spawn(&m, "parsed");
    pctl(&m, pid, "mmap 4M name=buf");
    pctl(&m, pid, "touch buf 1M");
    pctl(&m, pid, "mmap 64K prot=r");
    pctl(&m, pid, "brk +128K");
    pctl(&m, pid, "touch heap 8K");
    let s = status(&m, pid);
    assert_eq!(s.name, "parsed");
    assert_eq!(s.pid, pid as i32);
    assert_eq!(s.vmstk, Some(132));
    assert_eq!(s.vmrss, Some(12 + 1024 + 8));
    assert_eq!(s.vmdata, Some(4096 + 128));
    assert_eq!(s.vmswap, Some(0));
    let maps = MemoryMaps::from_buf_read(Cursor::new(m.read(&format!("{pid}/maps")))).unwrap();
    let paths: Vec<&MMapPath> = maps.0.iter().map(|m| &m.pathname).collect();
    // buf (4M, a multiple of 2M) starts on a 2M boundary below mmap_base,
    // as Linux's thp_get_unmapped_area puts it; the 64K mapping takes the
    // gap this leaves above it.
    assert_eq!(
        paths,
        [
            &MMapPath::Heap,
            &MMapPath::Other("anon:buf".into()),
            &MMapPath::Anonymous,
            &MMapPath::Stack,
            &MMapPath::Vsyscall,
        ]
    );
    let smaps = MemoryMaps::from_buf_read(Cursor::new(m.read(&format!("{pid}/smaps")))).unwrap();
    let buf = smaps
        .0
        .iter()
        .find(|m| m.pathname == MMapPath::Other("anon:buf".into()))
        .unwrap();
    assert_eq!(buf.extension.map["Rss"], 1 << 20);
    assert_eq!(buf.extension.map["Size"], 4 << 20);
    assert_eq!(buf.extension.map["Anonymous"], 1 << 20);
    let stat = Stat::from_read(Cursor::new(m.read(&format!("{pid}/stat")))).unwrap();
    assert_eq!(stat.comm, "parsed");
    assert_eq!(stat.vsize, (132 + 4096 + 64 + 128) << 10);
    assert_eq!(stat.startstack, 0x7fff_ffff_e000);
    let statm = StatM::from_read(Cursor::new(m.read(&format!("{pid}/statm")))).unwrap();
    assert_eq!(statm.resident, 3 + 256 + 2);
    assert_eq!(statm.size, stat.vsize / 4096);
    check_invariants(&m, 16);
}

#[test]
fn mem_round_trip_with_the_shell() {
    let m = Mount::new();
    let pid = spawn(&m, "memrt");
    pctl(&m, pid, "mmap 64K name=buf");
    let maps = m.read(&format!("{pid}/maps"));
    let start =
        u64::from_str_radix(maps.lines().next().unwrap().split('-').next().unwrap(), 16).unwrap();
    let out = m.bash(&format!(
        "set -e
         printf 'hello, mem' | dd of=$M/{pid}/mem bs=1 seek={at} conv=notrunc status=none
         dd if=$M/{pid}/mem bs=1 skip={at} count=10 status=none; echo
         dd if=$M/{pid}/mem bs=1 skip={zero} count=4 status=none | od -An -tx1
         grep VmRSS $M/{pid}/status",
        at = start + 100,
        zero = start + 8192,
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "hello, mem");
    assert_eq!(lines[1].trim(), "00 00 00 00");
    // One page written: 12 kB of stack + 4 kB; the zero page is no RSS.
    assert_eq!(lines[2], "VmRSS:\t      16 kB");
    // An address without a mapping reads EIO.
    let out = m.bash(&format!(
        "dd if=$M/{pid}/mem bs=1 skip=4096 count=1 status=none"
    ));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Input/output error"));
    check_invariants(&m, 16);
}

#[test]
fn failures_have_their_errno() {
    let m = Mount::new();
    let pid = spawn(&m, "errs");
    let cases = [
        (
            format!("echo 'touch 0x1000 4K' > $M/{pid}/ctl"),
            "Bad address",
        ),
        (
            format!("echo 'mmap 4K prot=wx' > $M/{pid}/ctl"),
            "Invalid argument",
        ),
        (
            format!("echo 'munmap stack+1 4K' > $M/{pid}/ctl"),
            "Invalid argument",
        ),
        // Heuristic overcommit: one request above RAM + swap.
        (
            format!("echo 'mmap 4G' > $M/{pid}/ctl"),
            "Cannot allocate memory",
        ),
        ("echo 'kill 999' > $M/ctl".to_string(), "No such process"),
        (
            format!("echo 'mmap 4K name=a' > $M/{pid}/ctl; echo 'mmap 4K name=a' > $M/{pid}/ctl"),
            "File exists",
        ),
    ];
    for (script, message) in cases {
        let out = m.bash(&script);
        assert!(!out.status.success(), "{script}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{script}: {err}");
    }
    let dmesg = m.read("dmesg");
    assert!(dmesg.contains(&format!(
        "errs[{pid}]: segfault at 1000 ip 0000000000000000 sp 0000000000000000 error 6 likely on CPU 0 (core 0, socket 0)"
    )));
    assert!(dmesg.contains("__vm_enough_memory: pid: "));
    // The process lives on after its segfault.
    pctl(&m, pid, "touch stack 4K");
    assert!(m.path(&format!("{pid}/status")).exists());
    check_invariants(&m, 16);
}

#[test]
fn i386_user_pages_come_from_highmem() {
    let m = Mount::with_args(&["--arch", "i386", "--mem", "2G"]);
    let pid = spawn(&m, "highmem");
    check_invariants(&m, 8);
    let high = m.meminfo_kb("HighFree");
    let low = m.meminfo_kb("LowFree");
    pctl(&m, pid, "mmap 256M name=a");
    pctl(&m, pid, "touch a 256M");
    // The pages came from HighMem; lowmem paid only for page tables.
    assert_eq!(high - m.meminfo_kb("HighFree"), 256 << 10);
    let tables_kb = low - m.meminfo_kb("LowFree");
    assert!((64 * 4..128 * 4).contains(&tables_kb), "{tables_kb}");
    assert_eq!(status(&m, pid).vmpte.unwrap(), 4 + 64 * 4);
    let maps = m.read(&format!("{pid}/maps"));
    assert!(
        maps.ends_with("bffdf000-c0000000 rw-p 00000000 00:00 0          [stack]\n"),
        "{maps}"
    );
    // 4G cannot fit below 0xC0000000.
    m.write("sys/vm/overcommit_memory", "1").unwrap();
    let out = m.bash(&format!("echo 'mmap 4G' > $M/{pid}/ctl"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot allocate memory"));
    check_invariants(&m, 8);
}
