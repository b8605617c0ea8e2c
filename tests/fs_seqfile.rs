//! The file contract of SPEC §2 and §3 through a real mount: generated
//! files are seq_files (rendered at a read at offset 0, afresh by the next
//! read at offset 0, with bounded memory per descriptor for huge smaps),
//! `ctl` is a transaction file, and a handle belongs to its process.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::time::Instant;

use common::{Mount, stderr, stdout};

/// Spawn a process through a `ctl` transaction and return its pid.
fn spawn(m: &Mount, name: &str) -> u32 {
    let mut ctl = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.path("ctl"))
        .unwrap();
    ctl.write_all(format!("spawn {name}\n").as_bytes()).unwrap();
    let mut back = String::new();
    ctl.read_to_string(&mut back).unwrap();
    back.trim()
        .parse()
        .unwrap_or_else(|_| panic!("ctl read {back:?}"))
}

/// The whole text of an open descriptor from offset 0, by pread.
fn pread_all(file: &std::fs::File) -> String {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = file.read_at(&mut buf, out.len() as u64).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).unwrap()
}

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn an_open_descriptor_renders_afresh_at_offset_0() {
    let m = Mount::new();
    // Opened before the change: nothing is rendered at open.
    let meminfo = std::fs::File::open(m.path("meminfo")).unwrap();
    let buddy = std::fs::File::open(m.path("buddyinfo")).unwrap();
    let before = m.read("buddyinfo");
    m.ctl("alloc_pages 4 count=20 tag=t");
    let after = m.read("buddyinfo");
    assert_ne!(before, after);
    assert_eq!(pread_all(&buddy), after, "first read renders, not open");
    let first = pread_all(&meminfo);
    m.ctl("alloc_pages 5 count=20 tag=u");
    let second = pread_all(&meminfo);
    assert_ne!(
        first, second,
        "a read at offset 0 on an open fd renders afresh"
    );
    assert_eq!(second, m.read("meminfo"));
    // Within one pass, later offsets continue the pass's snapshot.
    let current = m.read("buddyinfo");
    let mut head = [0u8; 10];
    assert_eq!(buddy.read_at(&mut head, 0).unwrap(), 10);
    m.ctl("free_pages tag=t");
    let mut rest = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = buddy.read_at(&mut buf, (10 + rest.len()) as u64).unwrap();
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&buf[..n]);
    }
    let mut pass = head.to_vec();
    pass.extend(rest);
    assert_eq!(
        String::from_utf8(pass).unwrap(),
        current,
        "one pass, one state"
    );
    assert_ne!(pread_all(&buddy), current, "the next pass sees the free");
    // `watch`-style tools keep the fd and seek back.
    let out = m.bash(
        "exec 4<$M/sys/vm/swappiness; a=$(cat <&4); echo 33 > $M/sys/vm/swappiness; \
         b=$(cat /dev/fd/4); echo $a $b",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "60 33\n");
}

#[test]
fn ctl_is_a_transaction_file() {
    let m = Mount::new();
    for f in ["ctl".to_string(), format!("{}/ctl", spawn(&m, "x"))] {
        let meta = std::fs::metadata(m.path(&f)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "{f}");
    }
    let out = m.bash(
        "exec 3<>$M/ctl; echo 'spawn web' >&3; read pid <&3; echo \"$pid $(cat $M/$pid/comm)\"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    let (pid, comm) = line.trim().split_once(' ').unwrap();
    assert!(pid.parse::<u32>().is_ok(), "{line:?}");
    assert_eq!(comm, "web");
    // Commands that create nothing give nothing back; a descriptor that
    // wrote nothing reads empty.
    let out = m.bash(
        "exec 3<>$M/ctl; echo 'alloc_pages 0 tag=a' >&3; echo 'spawn one' >&3; \
         echo '# note' >&3; echo 'spawn two' >&3; cat <&3; exec 5<>$M/ctl; \
         echo \"[$(cat <&5)]\"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(m.read(&format!("{}/comm", lines[0])), "one\n");
    assert_eq!(m.read(&format!("{}/comm", lines[1])), "two\n");
    assert_eq!(lines[2], "[]");
    // Two scripts at once each get their own pids.
    let scripts: Vec<_> = ["alpha", "beta"]
        .iter()
        .map(|name| {
            let script = format!(
                "exec 3<>$M/ctl; for i in $(seq 20); do echo 'spawn {name}' >&3; \
                 read pid <&3; echo $pid; done"
            );
            let dir = m.dir.clone();
            std::thread::spawn(move || common::bash_in(&dir, &script))
        })
        .collect();
    let mut all = Vec::new();
    for (name, s) in ["alpha", "beta"].iter().zip(scripts) {
        let out = s.join().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let pids: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        assert_eq!(pids.len(), 20);
        for pid in &pids {
            assert_eq!(m.read(&format!("{pid}/comm")), format!("{name}\n"));
        }
        all.extend(pids);
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40);
    // PID/ctl reads empty: no process command creates anything yet.
    let out = m.bash(&format!(
        "exec 3<>$M/{}/ctl; echo 'mmap 8K' >&3; echo \"[$(cat <&3)]\"",
        lines[0]
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "[]\n");
}

#[test]
fn a_handle_of_a_killed_process_is_esrch() {
    let m = Mount::new();
    let pid = spawn(&m, "victim");
    m.write(&format!("{pid}/ctl"), "mmap 64K name=buf\ntouch buf 64K\n")
        .unwrap();
    let open = |name: &str, write: bool| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(m.path(&format!("{pid}/{name}")))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let status = open("status", false);
    let smaps = open("smaps", false);
    let mem = open("mem", true);
    let adj = open("oom_score_adj", true);
    let ctl = open("ctl", true);
    let mut head = [0u8; 16];
    assert_eq!(smaps.read_at(&mut head, 0).unwrap(), 16);
    m.ctl(&format!("kill {pid}"));
    let esrch = |r: std::io::Result<usize>, what: &str| {
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ESRCH), "{what}");
    };
    let mut buf = [0u8; 64];
    esrch(status.read_at(&mut buf, 0), "status read");
    esrch(smaps.read_at(&mut buf, 16), "smaps continued read");
    esrch(smaps.read_at(&mut buf, 0), "smaps read");
    esrch(mem.read_at(&mut buf, 0x1000), "mem read");
    esrch(mem.write_at(b"x", 0x1000), "mem write");
    esrch(adj.write_at(b"100\n", 0), "oom_score_adj write");
    esrch(adj.read_at(&mut buf, 0), "oom_score_adj read");
    // ctl is a stream: plain read and write, no offsets.
    esrch((&ctl).write(b"brk +4K\n"), "ctl write");
    esrch((&ctl).read(&mut buf), "ctl read");
}

/// A process with many VMAs that cannot merge: alternating `prot=r` and
/// `prot=rw` pages, each placed right below the last.
fn many_vmas(m: &Mount, pid: u32, count: usize) {
    let mut plan = String::with_capacity(count * 20);
    for i in 0..count {
        plan.push_str(if i % 2 == 0 {
            "mmap 4K prot=r\n"
        } else {
            "mmap 4K prot=rw\n"
        });
    }
    m.write(&format!("{pid}/ctl"), &plan).unwrap();
}

/// A maps line (an smaps block's header): `start-end perms ...`.
fn is_header(line: &str) -> bool {
    line.split_once(' ').is_some_and(|(range, _)| {
        range.contains('-') && range.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    })
}

#[test]
fn descriptors_of_a_huge_smaps_hold_bounded_memory() {
    let m = Mount::new();
    let pid = spawn(&m, "big");
    let vmas: usize = std::env::var("MMFS_TEST_VMAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let t = Instant::now();
    many_vmas(&m, pid, vmas);
    eprintln!("{vmas} VMAs made in {:?}", t.elapsed());
    let smaps = m.path(&format!("{pid}/smaps"));
    let maps = m.read(&format!("{pid}/maps"));
    assert!(
        maps.lines().count() > vmas,
        "{} lines",
        maps.lines().count()
    );
    // A whole read is consistent record by record and complete.
    let t = Instant::now();
    let text = std::fs::read_to_string(&smaps).unwrap();
    let full = text.len() as u64;
    eprintln!("smaps: {full} bytes read in {:?}", t.elapsed());
    let headers: Vec<&str> = text.lines().filter(|l| is_header(l)).collect();
    let want: Vec<&str> = maps.lines().collect();
    assert_eq!(headers, want, "smaps headers are the maps lines");
    let before = vm_rss_kb(m.pid);
    let fds: Vec<std::fs::File> = (0..40)
        .map(|_| {
            let f = std::fs::File::open(&smaps).unwrap();
            let mut buf = [0u8; 4096];
            assert_eq!(f.read_at(&mut buf, 0).unwrap(), 4096);
            assert_eq!(&buf[..], &text.as_bytes()[..4096]);
            f
        })
        .collect();
    let after = vm_rss_kb(m.pid);
    let growth = after.saturating_sub(before);
    eprintln!(
        "40 open smaps descriptors ({vmas} VMAs, {} KiB of text each): daemon VmRSS {before} -> {after} kB (+{growth} kB, {} kB per descriptor)",
        full >> 10,
        growth / 40
    );
    assert!(growth < 256 << 10, "+{growth} kB for 40 descriptors");
    assert!(
        growth / 40 < (full >> 10) / 8,
        "{} kB per descriptor for {} kB of text",
        growth / 40,
        full >> 10
    );
    // Each descriptor reads on to the end through its window.
    let mut last = Vec::new();
    let mut f = &fds[39];
    let mut buf = vec![0u8; 4096];
    let n = f.read(&mut buf).unwrap();
    last.extend_from_slice(&buf[..n]);
    assert_eq!(n, 4096);
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).unwrap();
    last.extend(rest);
    assert_eq!(last.len() as u64, full);
    assert!(last == text.as_bytes(), "a continued read equals one pass");
    let _ = std::io::stdout().flush();
}
