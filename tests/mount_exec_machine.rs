//! `mmfs exec` as a complete, closed machine: psutil reads every simulated
//! process and the machine without an exception, `vmstat -d` lists the
//! simulated disks, every bound file reads as the mount's, simulated
//! processes born while the command runs show up, the command's own
//! processes stay out of the simulated pid range, and the host's
//! /proc/sys and /sys cannot be written from inside.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Mount, Scratch};

/// A machine with two processes, one of them partly swapped out to a
/// simulated partition and partly swapped back in (disk reads and writes).
fn setup() -> (Mount, u32, u32) {
    let m = Mount::new();
    let web = m.created("spawn web");
    let db = m.created("spawn db");
    m.ctl("mkswap /dev/sdb1 64M");
    m.ctl("swapon /dev/sdb1");
    // No swap readahead: each major fault reads its one page, so the
    // task's read_bytes (pages its major faults read) is exact.
    m.write("sys/vm/page-cluster", "0\n").unwrap();
    let ctl = format!("{db}/ctl");
    let run = |line: &str| m.write(&ctl, &format!("{line}\n")).unwrap();
    run("mmap 16M name=cache");
    run("touch cache 16M");
    run("madvise cache 8M pageout");
    // The writes complete; the pages wait in the swap cache until a
    // second pageout (no writes: they are clean) drops them.
    m.ctl("tick 100");
    run("touch cache 8M read");
    run("madvise cache 8M pageout");
    run("touch cache 2M");
    (m, web, db)
}

/// The simulated pids: the numeric directories of the mount.
fn pids(m: &Mount) -> Vec<u32> {
    mmfs::exec::simulated_pids(&m.dir).unwrap()
}

/// psutil (`python3 -m pip install psutil`; .ci/run installs it).
fn require_psutil() {
    let ok = Command::new("python3")
        .args(["-c", "import psutil"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "these tests need psutil for python3: python3 -m pip install psutil"
    );
}

/// For each pid: `Process.as_dict()` with no value left out (None: psutil
/// hit AccessDenied or ZombieProcess); then the system-wide calls. Prints
/// `key=value` lines for the test to compare with the mount.
const PSUTIL_SCRIPT: &str = r#"
import sys, psutil
for pid in map(int, sys.argv[1:]):
    p = psutil.Process(pid)
    d = p.as_dict()
    missing = sorted(k for k, v in d.items() if v is None and k != "terminal")
    assert not missing, (pid, missing)
    print(f"{pid}.name={d['name']}")
    print(f"{pid}.num_threads={d['num_threads']}")
    print(f"{pid}.threads={[t.id for t in d['threads']]}")
    print(f"{pid}.num_fds={d['num_fds']}")
    print(f"{pid}.exe={d['exe']!r}")
    print(f"{pid}.cwd={d['cwd']}")
    print(f"{pid}.rss={d['memory_info'].rss}")
    print(f"{pid}.swap={d['memory_full_info'].swap}")
    print(f"{pid}.read_bytes={d['io_counters'].read_bytes}")
    print(f"{pid}.environ={d['environ']}")
vm = psutil.virtual_memory()
sw = psutil.swap_memory()
print(f"total={vm.total}")
print(f"free={vm.free}")
print(f"swap_total={sw.total}")
print(f"swap_used={sw.used}")
print(f"sout={sw.sout}")
print(f"cpus={psutil.cpu_count()}")
print(f"cores={psutil.cpu_count(logical=False)}")
print("OK")
"#;

/// The value of `key` in `key=value` lines.
fn value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

/// A `Key:   N kB` value of a /proc file.
fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn psutil_reads_every_simulated_process_and_the_machine() {
    require_psutil();
    let (m, _web, db) = setup();
    let pids = pids(&m);
    let mut cmd = vec!["python3", "-c", PSUTIL_SCRIPT];
    let names: Vec<String> = pids.iter().map(u32::to_string).collect();
    cmd.extend(names.iter().map(String::as_str));
    let (code, out) = m.exec_text(&cmd);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("OK\n"), "{out}");
    for &pid in &pids {
        let status = m.read(&format!("{pid}/status"));
        let name = status.lines().next().unwrap().trim_start_matches("Name:\t");
        assert_eq!(value(&out, &format!("{pid}.name")), name);
        assert_eq!(value(&out, &format!("{pid}.num_threads")), "1");
        assert_eq!(value(&out, &format!("{pid}.threads")), format!("[{pid}]"));
        assert_eq!(value(&out, &format!("{pid}.num_fds")), "0");
        assert_eq!(value(&out, &format!("{pid}.exe")), "''");
        assert_eq!(value(&out, &format!("{pid}.cwd")), "/");
        assert_eq!(value(&out, &format!("{pid}.environ")), "{}");
        // Kernel threads have no Vm* lines: psutil reads 0 from statm.
        let vm = |key: &str| {
            if status.contains("Kthread:\t1") {
                0
            } else {
                kb(&status, key)
            }
        };
        let rss: u64 = value(&out, &format!("{pid}.rss")).parse().unwrap();
        assert_eq!(rss, vm("VmRSS") * 1024);
        let swap: u64 = value(&out, &format!("{pid}.swap")).parse().unwrap();
        assert_eq!(swap, vm("VmSwap") * 1024);
        // read_bytes: the pages its own major faults brought back.
        let stat = m.read(&format!("{pid}/stat"));
        let majflt: u64 = stat.split(' ').nth(11).unwrap().parse().unwrap();
        let read: u64 = value(&out, &format!("{pid}.read_bytes")).parse().unwrap();
        assert_eq!(read, majflt * 4096);
    }
    let read: u64 = value(&out, &format!("{db}.read_bytes")).parse().unwrap();
    assert_eq!(read, 2 << 20, "db swapped 2M back in");
    let meminfo = m.read("meminfo");
    let num = |k: &str| value(&out, k).parse::<u64>().unwrap();
    assert_eq!(num("total"), kb(&meminfo, "MemTotal") * 1024);
    assert_eq!(num("free"), kb(&meminfo, "MemFree") * 1024);
    assert_eq!(num("swap_total"), kb(&meminfo, "SwapTotal") * 1024);
    assert_eq!(
        num("swap_used"),
        (kb(&meminfo, "SwapTotal") - kb(&meminfo, "SwapFree")) * 1024
    );
    assert_eq!(num("sout"), (8 << 20) as u64);
    assert_eq!(num("cpus"), mmfs::mm::NR_CPUS);
    assert_eq!(num("cores"), mmfs::mm::NR_CPUS);
}

#[test]
fn vmstat_d_lists_the_simulated_disks() {
    let (m, _, _) = setup();
    let diskstats = m.read("diskstats");
    let (code, out) = m.exec_text(&["vmstat", "-d"]);
    assert_eq!(code, 0, "{out}");
    // vmstat -d shows whole disks (those in /sys/block), not partitions.
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("sdb "))
        .unwrap_or_else(|| panic!("no sdb in {out}"))
        .split_whitespace()
        .collect();
    assert!(!out.lines().any(|l| l.starts_with("sdb1 ")), "{out}");
    let sdb: Vec<&str> = diskstats
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("sdb"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .collect();
    // total merged sectors ms, for reads then writes.
    assert_eq!(row[1..9], sdb[..8], "{out}\n{diskstats}");
    assert_eq!(row[1], (512).to_string(), "2M read back in pages");
    assert_eq!(row[5], (2048).to_string(), "8M paged out in pages");
    // No host disk is listed.
    let host: Vec<String> = std::fs::read_to_string("/proc/diskstats")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    for name in host {
        assert!(
            !out.lines()
                .any(|l| l.split_whitespace().next() == Some(&name)),
            "host disk {name} in {out}"
        );
    }
}

/// The files that must read the same under exec as in the mount: (path
/// under exec, path in the mount).
fn bound_files(m: &Mount) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for name in mmfs::exec::GLOBAL_BINDS {
        if m.path(name).exists() && Path::new("/proc").join(name).exists() {
            files.push((format!("/proc/{name}"), name.to_string()));
        }
    }
    let mut vm: Vec<String> = std::fs::read_dir(m.path("sys/vm"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    vm.sort();
    for name in vm {
        let rel = format!("sys/vm/{name}");
        // Write-only tunables (drop_caches, compact_memory) cannot be read.
        if std::fs::read(m.path(&rel)).is_ok() {
            files.push((format!("/proc/{rel}"), rel));
        }
    }
    for pid in pids(m) {
        for name in [
            "cgroup",
            "cmdline",
            "comm",
            "environ",
            "io",
            "limits",
            "maps",
            "oom_score",
            "oom_score_adj",
            "smaps",
            "smaps_rollup",
            "stat",
            "statm",
            "status",
            "wchan",
        ] {
            let rel = format!("{pid}/{name}");
            // A kernel thread's smaps_rollup is ESRCH (no mm), as on Linux.
            if std::fs::read(m.path(&rel)).is_ok() {
                files.push((format!("/proc/{rel}"), rel));
            }
        }
        for name in ["stat", "status", "statm", "comm", "io"] {
            let rel = format!("{pid}/task/{pid}/{name}");
            files.push((format!("/proc/{rel}"), rel));
        }
    }
    for rel in [
        "devices/system/cpu/online",
        "devices/system/cpu/possible",
        "devices/system/cpu/present",
        "devices/system/cpu/cpu1/online",
        "devices/system/cpu/cpu0/topology/core_cpus_list",
        "devices/system/cpu/cpu1/topology/core_id",
        "block/sdb/dev",
        "block/sdb/size",
        "block/sdb/stat",
    ] {
        files.push((format!("/sys/{rel}"), rel.to_string()));
    }
    files
}

#[test]
fn every_bound_file_reads_as_the_mounts() {
    let (m, _, _) = setup();
    let files = bound_files(&m);
    let out = Scratch::new("exec-view");
    // One exec copies them all: file i to OUT/i.
    let mut script = String::from("set -e\n");
    for (i, (inside, _)) in files.iter().enumerate() {
        script.push_str(&format!("cat '{inside}' > \"$OUT/{i}\"\n"));
    }
    let (code, text) = m.exec_text(&[
        "env",
        &format!("OUT={}", out.path.display()),
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(code, 0, "{text}");
    // Reads change nothing in the simulation: the mount reads the same now.
    for (i, (inside, rel)) in files.iter().enumerate() {
        let seen = std::fs::read(out.path.join(i.to_string())).unwrap();
        let want = std::fs::read(m.path(rel)).unwrap();
        assert!(
            seen == want,
            "{inside} under exec differs from MNT/{rel}:\n{}\nvs\n{}",
            String::from_utf8_lossy(&seen),
            String::from_utf8_lossy(&want)
        );
    }
    // The links and directories tools walk.
    let (code, text) = m.exec_text(&[
        "sh",
        "-c",
        "for p in $(ls /proc | grep -E '^[0-9]+$'); do [ $p -lt 32768 ] || continue; \
             echo $p $(readlink /proc/$p/cwd) $(ls /proc/$p/task) $(ls /proc/$p/fd | wc -l); done",
    ]);
    assert_eq!(code, 0, "{text}");
    for pid in pids(&m) {
        assert!(
            text.lines().any(|l| l == format!("{pid} / {pid} 0")),
            "{pid}: {text}"
        );
    }
}

/// Snapshot of host settings the command must not be able to change.
fn host_snapshot() -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<String> = std::fs::read_dir("/proc/sys/vm")
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        // Reading stat_refresh has a side effect; write-only files fail.
        .filter(|p| !p.ends_with("/stat_refresh"))
        .collect();
    paths.sort();
    for p in [
        "/proc/sys/kernel/panic",
        "/proc/sys/kernel/printk",
        "/proc/sys/kernel/pid_max",
        "/proc/sys/kernel/hostname",
        "/sys/kernel/mm/transparent_hugepage/enabled",
    ] {
        paths.push(p.to_string());
    }
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|v| (p, v)))
        .collect()
}

#[test]
fn the_host_proc_sys_and_sys_cannot_be_written() {
    let m = Mount::new();
    let before = host_snapshot();
    let mountinfo = proc_and_sys_mounts();
    // Every attempt writes the host's current value back, so that a broken
    // protection fails the test without changing the host.
    let host = |p: &str| String::from_utf8(std::fs::read(p).unwrap()).unwrap();
    let panic = host("/proc/sys/kernel/panic").trim().to_string();
    // An unmodelled tunable: the simulated file refuses writes (EPERM), and
    // the host's behind it must stay untouched. (Modelled ones such as
    // dirty_ratio are simulated and writable under exec.)
    let dirtytime = host("/proc/sys/vm/dirtytime_expire_seconds")
        .trim()
        .to_string();
    let printk = host("/proc/sys/kernel/printk")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let thp = host("/sys/kernel/mm/transparent_hugepage/enabled");
    let thp = thp
        .split_whitespace()
        .find(|w| w.starts_with('['))
        .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
        .unwrap_or_else(|| "madvise".into());
    let scratch = Scratch::new("exec-ro");
    let target = scratch.path.display().to_string();
    let attempts = [
        format!("sysctl -w vm.dirtytime_expire_seconds={dirtytime}"),
        format!("echo {panic} > /proc/sys/kernel/panic"),
        format!("sysctl -w kernel.printk='{printk}'"),
        format!("echo {thp} > /sys/kernel/mm/transparent_hugepage/enabled"),
        format!("mount -t proc proc {target}"),
        format!("mount --bind /proc/sys {target}"),
        "umount /proc/meminfo".into(),
        "umount -l /proc/sys".into(),
        "mount -o remount,rw /proc/sys".into(),
        "mount -o remount,rw /sys".into(),
        format!("unshare -m sh -c 'umount -l /proc/sys && echo {panic} > /proc/sys/kernel/panic'"),
        format!("unshare -Urm sh -c 'umount -l /proc/sys; echo {panic} > /proc/sys/kernel/panic'"),
        "touch /sys/kernel/mmfs-test".into(),
        // A user namespace owns no mount it inherited: /proc/sys stays
        // read-only there, and a fresh procfs or sysfs is refused while the
        // overlays hide parts of the old one (mount_too_revealing).
        format!("unshare -Urmpf --mount-proc sh -c 'echo {panic} > /proc/sys/kernel/panic'"),
        format!(
            "unshare -Urmn sh -c 'mount -t sysfs sysfs /sys && \
             echo {thp} > /sys/kernel/mm/transparent_hugepage/enabled'"
        ),
    ];
    let mut script = String::new();
    for (i, a) in attempts.iter().enumerate() {
        script.push_str(&format!(
            "( {a} ) >/dev/null 2>&1; echo \"attempt {i}: $?\"\n"
        ));
    }
    // The command's capability sets, for the record.
    script.push_str("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status\n");
    let (code, out) = m.exec_text(&["sh", "-c", &script]);
    assert_eq!(code, 0, "{out}");
    for (i, a) in attempts.iter().enumerate() {
        let rc = value_after(&out, &format!("attempt {i}: "));
        assert_ne!(rc, "0", "{a} succeeded under exec:\n{out}");
    }
    for line in out.lines().filter(|l| l.starts_with("Cap")) {
        let (name, hex) = line.split_once(":\t").unwrap();
        let caps = u64::from_str_radix(hex.trim(), 16).unwrap();
        for cap in [16, 17, 21] {
            assert_eq!(caps & (1 << cap), 0, "{name} holds capability {cap}: {out}");
        }
    }
    assert_eq!(host_snapshot(), before, "the host's settings changed");
    assert_eq!(
        proc_and_sys_mounts(),
        mountinfo,
        "the host's mounts changed"
    );
    assert!(!Path::new("/sys/kernel/mmfs-test").exists());
    // The simulated tunables stay writable under exec (they are the
    // simulation's, not the host's).
    let (code, out) = m.exec_text(&["sysctl", "-w", "vm.swappiness=33"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(m.read("sys/vm/swappiness"), "33\n");
}

/// The host's mounts at /proc and /sys and below (other tests mount
/// elsewhere meanwhile).
fn proc_and_sys_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|p| p.starts_with("/proc") || p.starts_with("/sys"))
        })
        .map(str::to_string)
        .collect()
}

/// The text after `prefix` on the line that starts with it.
fn value_after<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {out}"))
}

#[test]
fn processes_born_while_the_command_runs_show_up_and_go() {
    let m = Mount::new();
    m.created("spawn before");
    // The command spawns through the mount, waits (up to 10 s; the watcher
    // looks every 100 ms) for /proc/PID, then kills it and waits for it
    // to go.
    let ctl = m.path("ctl").display().to_string();
    let script = format!(
        "exec 3<>'{ctl}'; echo 'spawn newborn' >&3; read p <&3; echo pid=$p\n\
         i=0; while [ ! -e /proc/$p/status ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\n\
         echo comm=$(cat /proc/$p/comm)\n\
         ps -eo pid=,comm= | awk -v p=$p '$1 == p {{ print \"ps=\" $2 }}'\n\
         echo \"kill $p\" > '{ctl}'\n\
         i=0; while [ -e /proc/$p/status ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\n\
         [ -e /proc/$p ] && echo still-there || echo gone\n"
    );
    let (code, out) = m.exec_text(&["sh", "-c", &script]);
    assert_eq!(code, 0, "{out}");
    let pid: u32 = value(&out, "pid").parse().unwrap();
    assert!(pid <= mmfs::mm::process::PID_MAX, "{out}");
    assert_eq!(value(&out, "comm"), "newborn", "{out}");
    assert_eq!(value(&out, "ps"), "newborn", "{out}");
    assert!(out.lines().any(|l| l == "gone"), "{out}");
    assert!(!pids(&m).contains(&pid));
}

#[test]
fn the_commands_processes_never_take_a_simulated_pid() {
    let m = Mount::new();
    m.created("spawn sim");
    let (code, out) = m.exec_text(&[
        "sh",
        "-c",
        "echo $$; sh -c 'echo $$'; sleep 0 & echo $!; wait; \
             ps -eo pid=,comm= | awk '$2 == \"mmfs-watch\" { print $1 }'",
    ]);
    assert_eq!(code, 0, "{out}");
    let own: Vec<u32> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(own.len(), 4, "{out}");
    for pid in own {
        assert!(pid > mmfs::mm::process::PID_MAX, "pid {pid}: {out}");
    }
}

/// A modelled tunable written under exec goes into the simulation (and
/// its effect shows in the simulated thresholds), not into the host.
#[test]
fn modelled_vm_tunables_are_written_into_the_machine() {
    let m = Mount::new();
    let host = std::fs::read_to_string("/proc/sys/vm/dirty_ratio").unwrap();
    let want = if host.trim() == "33" { "34" } else { "33" };
    let (code, out) = m.exec_text(&["sysctl", "-w", &format!("vm.dirty_ratio={want}")]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(m.read("sys/vm/dirty_ratio").trim(), want);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/dirty_ratio").unwrap(),
        host
    );
    let (code, out) = m.exec_text(&["cat", "/proc/sys/vm/dirty_ratio"]);
    assert_eq!((code, out.trim()), (0, want));
}

/// A signal the command sends to a simulated pid reaches only the
/// stand-in that holds the pid, which ignores it: the simulated process
/// stays in /proc (a dead stand-in would take its /proc/PID away).
#[test]
fn signals_to_a_simulated_pid_leave_its_proc_directory() {
    let m = Mount::new();
    let pid = m.created("spawn target");
    let script = format!(
        "for s in TERM INT HUP USR1 SEGV; do kill -$s {pid} || echo kill-failed; done\n\
         sleep 0.2\n\
         echo comm=$(cat /proc/{pid}/comm)\n"
    );
    let (code, out) = m.exec_text(&["sh", "-c", &script]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("kill-failed"), "{out}");
    assert_eq!(value(&out, "comm"), "target", "{out}");
}
