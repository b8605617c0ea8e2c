//! Swap, reclaim, kswapd and the OOM killer, driven through the control
//! language on a Kernel (no FUSE), with the cross-file invariants checked
//! after every step.

use mmfs::ctl::Machine;
use mmfs::ctl::Scope;
use mmfs::mm::MachineConfig;
use mmfs::mm::types::{Arch, Pid};
use mmfs::procfs::pid::{PidFile, render_pid};
use mmfs::procfs::{GlobalFile, render_global};

fn boot(mem: u64) -> Machine {
    let k = Machine::boot(MachineConfig {
        arch: Arch::X86_64,
        mem_bytes: mem,
    })
    .unwrap();
    k.check_invariants().unwrap();
    k
}

fn key(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k == name).then(|| v.split_whitespace().next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {name}"))
}

fn vmstat(k: &Machine, name: &str) -> u64 {
    render_global(k, GlobalFile::Vmstat)
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name} "))
                .map(|v| v.parse().unwrap())
        })
        .unwrap()
}

/// SwapFree = SwapTotal − Σ Used; Σ VmSwap ≤ Σ Used (no swap cache, so
/// equal); MemFree = buddyinfo; plus the kernel's own checker.
fn invariants(k: &Machine) {
    k.check_invariants().unwrap();
    let meminfo = render_global(k, GlobalFile::Meminfo);
    let swaps = render_global(k, GlobalFile::Swaps);
    let used: u64 = swaps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    let size: u64 = swaps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(key(&meminfo, "SwapTotal"), size);
    assert_eq!(key(&meminfo, "SwapFree"), size - used);
    // Processes with an address space (kernel threads have none).
    let vmswap: u64 = k
        .procs
        .pids()
        .into_iter()
        .map(|p| key(&render_pid(k, p, PidFile::Status).unwrap(), "VmSwap"))
        .sum();
    assert!(
        vmswap <= used && used <= vmswap + key(&meminfo, "SwapCached"),
        "VmSwap {vmswap} Used {used}"
    );
    let buddy = mmfs::procfs::buddyinfo_pages(&render_global(k, GlobalFile::Buddyinfo));
    assert_eq!(buddy * 4, key(&meminfo, "MemFree"));
}

fn sys(k: &mut Machine, line: &str) {
    k.execute_line(Scope::System, line)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    invariants(k);
}

fn run(k: &mut Machine, pid: Pid, line: &str) -> Result<(), i32> {
    let r = k
        .execute_line(Scope::Process(pid), line)
        .map(|_| ())
        .map_err(|e| e.errno());
    invariants(k);
    r
}

fn spawn(k: &mut Machine, name: &str) -> Pid {
    sys(k, &format!("spawn {name}"));
    Pid(k.ns_last_pid)
}

fn used_kb(k: &Machine, path: &str) -> u64 {
    render_global(k, GlobalFile::Swaps)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(path))
        .map(|l| l.split_whitespace().nth(3).unwrap().parse().unwrap())
        .unwrap()
}

#[test]
fn workload_bigger_than_ram_swaps_to_the_higher_priority_first() {
    let mut k = boot(256 << 20);
    sys(&mut k, "mkswap /dev/low 512M");
    sys(&mut k, "mkswap /dev/high 128M");
    sys(&mut k, "swapon /dev/low prio=1");
    sys(&mut k, "swapon /dev/high prio=10");
    let pid = spawn(&mut k, "hog");
    run(&mut k, pid, "mmap 400M name=big").unwrap();
    run(&mut k, pid, "touch big 400M").unwrap();
    assert!(used_kb(&k, "/dev/high") > 0);
    // The high-priority area filled before the low one took anything.
    if used_kb(&k, "/dev/low") > 0 {
        assert_eq!(used_kb(&k, "/dev/high"), 131068);
    }
    assert!(vmstat(&k, "pswpout") > 0);
    assert!(vmstat(&k, "pgscan_kswapd") + vmstat(&k, "pgscan_direct") > 0);
    assert_eq!(vmstat(&k, "oom_kill"), 0);
    // Touch it all again: swapped pages come back as major faults.
    let maj = vmstat(&k, "pgmajfault");
    run(&mut k, pid, "touch big 400M read").unwrap();
    assert!(vmstat(&k, "pgmajfault") > maj);
    assert!(vmstat(&k, "pswpin") > 0);
    // kill frees every slot.
    sys(&mut k, &format!("kill {pid}"));
    // Only init's swapped stack pages (if any) stay.
    let init = key(&render_pid(&k, Pid(1), PidFile::Status).unwrap(), "VmSwap");
    assert_eq!(used_kb(&k, "/dev/high") + used_kb(&k, "/dev/low"), init);
}

#[test]
fn kswapd_swaps_in_the_background_before_memory_runs_out() {
    let mut k = boot(256 << 20);
    sys(&mut k, "mkswap /dev/sdb1 256M");
    sys(&mut k, "swapon /dev/sdb1");
    let pid = spawn(&mut k, "grower");
    run(&mut k, pid, "mmap 240M name=b").unwrap();
    run(&mut k, pid, "touch b 230M").unwrap();
    assert!(vmstat(&k, "pgscan_kswapd") > 0, "kswapd never ran");
    assert!(vmstat(&k, "pageoutrun") > 0);
    // kswapd reclaims to high whenever the zone falls below low, so the
    // zone never stays below low.
    let zone = &k.page_alloc.zones[1];
    assert!(
        zone.free_pages >= zone.watermark.low,
        "free {} high {} kswapd failures {} vmstat:\n{}",
        zone.free_pages,
        zone.watermark.high,
        k.lru.kswapd_failures,
        render_global(&k, GlobalFile::Vmstat)
            .lines()
            .filter(|l| l.contains("scan")
                || l.contains("steal")
                || l.contains("swp")
                || l.contains("alloc"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn bytes_survive_pageout_swap_in_and_swapoff_and_land_in_the_host_file() {
    let dir = std::env::temp_dir().join(format!("mmfs-core-swap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("swap.img");
    let path = file.to_str().unwrap().to_string();
    let mut k = boot(128 << 20);
    sys(&mut k, &format!("mkswap {path} 16M"));
    sys(&mut k, &format!("swapon {path}"));
    let pid = spawn(&mut k, "writer");
    run(&mut k, pid, "mmap 1M name=buf").unwrap();
    let maps = render_pid(&k, pid, PidFile::Maps).unwrap();
    let start = u64::from_str_radix(
        maps.lines()
            .find(|l| l.contains("[anon:buf]"))
            .unwrap()
            .split('-')
            .next()
            .unwrap(),
        16,
    )
    .unwrap();
    let message = b"the quick brown fox jumps over the lazy dog";
    k.write_mem(pid, start + 4096 + 100, message).unwrap();
    run(&mut k, pid, "madvise buf 1M pageout").unwrap();
    assert_eq!(
        key(&render_pid(&k, pid, PidFile::Status).unwrap(), "VmSwap"),
        4
    );
    // The bytes are in the host file at slot × 4096.
    let raw = std::fs::read(&file).unwrap();
    let found = raw
        .windows(message.len())
        .position(|w| w == message)
        .expect("bytes in the swap file");
    assert_eq!(found % 4096, 100);
    assert!(found >= 4096, "slot 0 is the header");
    // Swap-in by reading through mem.
    assert_eq!(
        k.read_mem(pid, start + 4096 + 100, message.len()).unwrap(),
        message
    );
    invariants(&k);
    // Out again, then swapoff brings it back.
    run(&mut k, pid, "madvise buf 1M pageout").unwrap();
    sys(&mut k, &format!("swapoff {path}"));
    assert_eq!(
        key(&render_pid(&k, pid, PidFile::Status).unwrap(), "VmSwap"),
        0
    );
    assert_eq!(
        k.read_mem(pid, start + 4096 + 100, message.len()).unwrap(),
        message
    );
    assert_eq!(render_global(&k, GlobalFile::Swaps).lines().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn swapoff_that_cannot_fit_fails_with_enomem_and_stays_on() {
    let mut k = boot(128 << 20);
    sys(&mut k, "mkswap /dev/sdb1 256M");
    sys(&mut k, "swapon /dev/sdb1");
    let pid = spawn(&mut k, "big");
    run(&mut k, pid, "mmap 200M name=b").unwrap();
    run(&mut k, pid, "touch b 200M").unwrap();
    let err = k
        .execute_line(Scope::System, "swapoff /dev/sdb1")
        .unwrap_err();
    assert_eq!(err.errno(), libc::ENOMEM);
    invariants(&k);
    assert!(render_global(&k, GlobalFile::Swaps).contains("/dev/sdb1"));
    // It still takes pages.
    run(&mut k, pid, "madvise b 4M pageout").unwrap();
}

#[test]
fn oom_killer_takes_the_biggest_and_spares_minus_1000() {
    let mut k = boot(256 << 20);
    let small = spawn(&mut k, "small");
    let guarded = spawn(&mut k, "guarded");
    let big = spawn(&mut k, "big");
    k.write_oom_score_adj(guarded, "-1000").unwrap();
    run(&mut k, small, "mmap 16M name=a").unwrap();
    run(&mut k, small, "touch a 16M").unwrap();
    run(&mut k, guarded, "mmap 96M name=a").unwrap();
    run(&mut k, guarded, "touch a 96M").unwrap();
    run(&mut k, big, "mmap 200M name=a").unwrap();
    // big's own touch runs out of memory: big is the biggest, so it dies and
    // its command fails with ENOMEM.
    assert_eq!(run(&mut k, big, "touch a 200M"), Err(libc::ENOMEM));
    assert_eq!(vmstat(&k, "oom_kill"), 1);
    let pids = k.pids();
    assert!(!pids.contains(&big));
    assert!(pids.contains(&guarded) && pids.contains(&small));
    let dmesg = render_global(&k, GlobalFile::Dmesg);
    assert!(dmesg.contains("big invoked oom-killer"));
    assert!(dmesg.contains(&format!(
        "Out of memory: Killed process {big} (big) total-vm:"
    )));
    assert!(dmesg.contains("file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:"));
}

#[test]
fn oom_from_another_process_lets_the_command_go_on() {
    let mut k = boot(256 << 20);
    let hog = spawn(&mut k, "hog");
    let late = spawn(&mut k, "late");
    run(&mut k, hog, "mmap 180M name=a").unwrap();
    run(&mut k, hog, "touch a 180M").unwrap();
    run(&mut k, late, "mmap 60M name=a").unwrap();
    run(&mut k, late, "touch a 60M").unwrap();
    assert!(!k.pids().contains(&hog));
    assert_eq!(vmstat(&k, "oom_kill"), 1);
}

#[test]
fn reclaim_command_and_second_chance() {
    let mut k = boot(256 << 20);
    sys(&mut k, "mkswap /dev/sdb1 64M");
    sys(&mut k, "swapon /dev/sdb1");
    let pid = spawn(&mut k, "p");
    run(&mut k, pid, "mmap 16M name=a").unwrap();
    run(&mut k, pid, "touch a 16M").unwrap();
    // memory.reclaim's swappiness=max: anon pages only (the slab
    // shrinker runs in every pass whatever the swappiness).
    let cached = key(&render_global(&k, GlobalFile::Meminfo), "Cached");
    let sreclaimable = key(&render_global(&k, GlobalFile::Meminfo), "SReclaimable");
    sys(&mut k, "reclaim 4M swappiness=max");
    let meminfo = render_global(&k, GlobalFile::Meminfo);
    let slab_freed = sreclaimable - key(&meminfo, "SReclaimable");
    assert_eq!(key(&meminfo, "Cached"), cached);
    assert!(used_kb(&k, "/dev/sdb1") + slab_freed >= 4096);
    assert!(used_kb(&k, "/dev/sdb1") > 0);
    // Out of range: EINVAL, as memory.reclaim answers.
    for bad in ["reclaim 4M swappiness=201", "reclaim 4M swappiness=x"] {
        let err = k.execute_line(Scope::System, bad).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL, "{bad}");
    }
    // Without swap space anon memory cannot be reclaimed: EAGAIN.
    sys(&mut k, "swapoff /dev/sdb1");
    assert_eq!(
        k.execute_line(Scope::System, "reclaim 4M")
            .unwrap_err()
            .errno(),
        libc::EAGAIN
    );
    invariants(&k);
}

#[test]
fn ticks_age_the_active_list() {
    let mut k = boot(256 << 20);
    let pid = spawn(&mut k, "p");
    run(&mut k, pid, "mmap 4M name=a").unwrap();
    run(&mut k, pid, "touch a 4M").unwrap();
    // A mapped page's first scan keeps it inactive (FOLIOREF_KEEP); used
    // again before the second, it is activated.
    let zone = 1;
    let proactive = mmfs::mm::vmscan::Reclaimer::Proactive;
    k.shrink_inactive_list(zone, 2048, proactive);
    let kept = render_global(&k, GlobalFile::Meminfo);
    assert_eq!(key(&kept, "Active(anon)"), 0);
    run(&mut k, pid, "touch a 4M").unwrap();
    k.shrink_inactive_list(zone, 2048, proactive);
    let active = render_global(&k, GlobalFile::Meminfo);
    assert!(key(&active, "Active(anon)") >= 4096);
    sys(&mut k, "tick 1000000");
    let aged = render_global(&k, GlobalFile::Meminfo);
    assert_eq!(
        key(&aged, "Active(anon)"),
        0,
        "ticks age every anon page out to inactive"
    );
    assert!(vmstat(&k, "pgdeactivate") >= 1024);
}

#[test]
fn without_swap_reclaim_shrinks_the_reclaimable_slab_caches() {
    let mut k = boot(256 << 20);
    let before = render_global(&k, GlobalFile::Meminfo);
    sys(&mut k, "reclaim 256K");
    let after = render_global(&k, GlobalFile::Meminfo);
    assert!(key(&after, "SReclaimable") + 256 <= key(&before, "SReclaimable"));
    assert_eq!(key(&after, "SUnreclaim"), key(&before, "SUnreclaim"));
    assert!(vmstat(&k, "slabs_scanned") > 0);
    // swappiness 0 with swap on: the caches go before any anon page.
    sys(&mut k, "mkswap /dev/sdb1 64M");
    sys(&mut k, "swapon /dev/sdb1");
    k.write_sysctl("vm/swappiness", "0").unwrap();
    let pid = spawn(&mut k, "p");
    run(&mut k, pid, "mmap 8M name=a").unwrap();
    run(&mut k, pid, "touch a 8M").unwrap();
    sys(&mut k, "reclaim 128K");
    assert_eq!(
        used_kb(&k, "/dev/sdb1"),
        0,
        "swappiness 0 spares anon while caches remain"
    );
}
