//! The tree through a real mount: every file reads like its renderer, with
//! the modes of the tables; shell tools work on it; the tree refuses what
//! /proc refuses.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Mount, stderr, stdout};
use mmfs::ctl::Machine;
use mmfs::mm::MachineConfig;
use mmfs::mm::sysctl::writable_sysctls;
use mmfs::mm::types::Arch;
use mmfs::procfs::kpage::KPAGE_FILES;
use mmfs::procfs::{GLOBAL_FILES, render_global};

fn boot(arch: Arch, mem_bytes: u64) -> Machine {
    Machine::boot(MachineConfig { arch, mem_bytes }).expect("boot")
}

#[test]
fn every_global_file_reads_like_its_renderer() {
    let m = Mount::new();
    let kernel = boot(Arch::X86_64, 1 << 30);
    for &(name, mode, file) in GLOBAL_FILES {
        let want = render_global(&kernel, file);
        assert_eq!(m.read(name), want, "{name} differs from render_global");
        let meta = std::fs::metadata(m.path(name)).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            u32::from(mode),
            "{name}"
        );
        assert_eq!(meta.len(), 0, "{name}: generated files report size 0");
        assert!(meta.is_file());
    }
    for path in writable_sysctls() {
        let want = kernel.sysctl_read(path).unwrap();
        assert_eq!(m.read(&format!("sys/{path}")), want, "sys/{path}");
        let meta = std::fs::metadata(m.path(&format!("sys/{path}"))).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644, "sys/{path}");
    }
    assert_eq!(
        m.read("sys/kernel/ns_last_pid"),
        kernel.sysctl_read("kernel/ns_last_pid").unwrap()
    );
    let ctl = std::fs::metadata(m.path("ctl")).unwrap();
    assert_eq!(ctl.permissions().mode() & 0o7777, 0o600);
    let root = std::fs::metadata(&m.dir).unwrap();
    assert_eq!(root.permissions().mode() & 0o7777, 0o555);
}

#[test]
fn root_lists_the_tables() {
    let m = Mount::new();
    // Besides the tables: the tasks of boot (init, kernel threads).
    let mut names: Vec<String> = std::fs::read_dir(&m.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<u32>().is_err())
        .collect();
    names.sort();
    let mut want: Vec<String> = GLOBAL_FILES
        .iter()
        .map(|(path, _, _)| path.split('/').next().unwrap().to_string())
        .collect();
    want.dedup();
    // ctl, version, /proc/sys at sys/, /sys's block/ and devices/, the
    // simulated root file system at fs/, tracefs at tracing/, and the
    // binary kpage files.
    want.extend(["block", "ctl", "devices", "fs", "sys", "tracing", "version"].map(String::from));
    want.extend(KPAGE_FILES.iter().map(|(name, _)| name.to_string()));
    want.sort();
    assert_eq!(names, want);
    let out = m.bash("ls -l $M && ls $M/sys $M/sys/vm $M/sys/kernel");
    assert!(out.status.success(), "{}", stderr(&out));
    for path in writable_sysctls() {
        let name = path.rsplit('/').next().unwrap();
        assert!(stdout(&out).contains(name), "ls misses {name}");
    }
}

#[test]
fn shell_tools_read_by_offset() {
    let m = Mount::new();
    for name in ["buddyinfo", "dmesg"] {
        let text = m.read(name);
        assert!(!text.is_empty());
        let out = m.bash(&format!("cat $M/{name}"));
        assert_eq!(stdout(&out), text);
        let len = text.len();
        for skip in [0, 1, 17, len / 2, len - 1, len, len + 9] {
            let out = m.bash(&format!("dd if=$M/{name} bs=1 skip={skip} 2>/dev/null"));
            assert!(out.status.success());
            assert_eq!(
                stdout(&out),
                text.get(skip..).unwrap_or(""),
                "{name} skip={skip}"
            );
        }
        let out = m.bash(&format!("dd if=$M/{name} bs=7 skip=2 count=3 2>/dev/null"));
        assert_eq!(stdout(&out), text[14.min(len)..35.min(len)]);
        let out = m.bash(&format!("wc -c < $M/{name}; wc -l < $M/{name}"));
        assert_eq!(
            stdout(&out),
            format!("{len}\n{}\n", text.lines().count()),
            "wc on {name}"
        );
    }
    let out = m.bash("grep -c 'zone' $M/buddyinfo; grep DMA32 $M/buddyinfo | awk '{print $4}'");
    let zones = m.read("buddyinfo").lines().count();
    assert_eq!(stdout(&out), format!("{zones}\nDMA32\n"));
    let out = m.bash("tail -n 1 $M/buddyinfo; head -c 12 $M/buddyinfo");
    let text = m.read("buddyinfo");
    let last = text.lines().last().unwrap();
    assert_eq!(stdout(&out), format!("{last}\n{}", &text[..12]));
}

#[test]
fn version_is_a_constant_banner() {
    let m = Mount::with_args(&["--arch", "i386", "--mem", "512M"]);
    let version = m.read("version");
    assert!(
        version.starts_with("Linux version 6.18.44-mmfs"),
        "{version}"
    );
    assert!(version.contains("i386"), "{version}");
    assert_eq!(version.lines().count(), 1);
    assert!(version.ends_with('\n'));
    m.ctl("tick 5");
    assert_eq!(m.read("version"), version);
    // Linux prints the same banner as the first line of its log.
    let dmesg = m.read("dmesg");
    let first = dmesg.lines().next().unwrap();
    assert!(first.ends_with(version.trim_end()), "{first}");
}

#[test]
fn i386_2g_has_highmem() {
    let m = Mount::with_args(&["--arch", "i386", "--mem", "2G"]);
    let text = m.read("buddyinfo");
    let zones: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(zones, ["DMA", "Normal", "HighMem"], "{text}");
    let kernel = boot(Arch::I386, 2 << 30);
    assert_eq!(text, mmfs::procfs::buddyinfo(&kernel));
}

#[test]
fn refused_like_proc() {
    let m = Mount::new();
    let cases = [
        ("touch $M/newfile", "No such file or directory"),
        ("mkdir $M/newdir", "No such file or directory"),
        ("mknod $M/fifo p", "No such file or directory"),
        ("ln -s buddyinfo $M/link", "No such file or directory"),
        ("ln $M/buddyinfo $M/hard", "No such file or directory"),
        ("mv $M/buddyinfo $M/renamed", "No such file or directory"),
        ("rm -f $M/buddyinfo", "Operation not permitted"),
        ("rmdir $M/sys/vm", "Operation not permitted"),
        ("chmod 666 $M/buddyinfo", "Operation not permitted"),
        ("chown 1 $M/buddyinfo", "Operation not permitted"),
        ("echo 1 > $M/sys/vm/newfile", "No such file or directory"),
    ];
    for (script, want) in cases {
        let out = m.bash(script);
        assert!(!out.status.success(), "{script} succeeded");
        assert!(stderr(&out).contains(want), "{script}: {}", stderr(&out));
    }
    // touch on an existing file only sets times, which procfs accepts.
    assert!(m.bash("touch $M/buddyinfo").status.success());
    assert!(m.read("buddyinfo").starts_with("Node 0"));
}

#[test]
fn writes_to_read_only_files_are_eacces() {
    let m = Mount::new();
    // Root passes the kernel's mode check for files; the adapter refuses.
    for rel in ["buddyinfo", "version", "sys/kernel/ns_last_pid", "dmesg"] {
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(m.path(rel))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{rel}");
        let out = m.bash(&format!("echo 1 > $M/{rel}"));
        assert!(
            stderr(&out).contains("Permission denied"),
            "{rel}: {}",
            stderr(&out)
        );
    }
    let out = m.bash("truncate -s 0 $M/buddyinfo");
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    // ctl is a transaction file: a descriptor that wrote nothing reads empty.
    assert_eq!(std::fs::read(m.path("ctl")).unwrap(), b"");
}

#[test]
fn mode_bits_hold_for_other_users() {
    let setpriv = "setpriv --reuid=65534 --regid=65534 --clear-groups";
    if !m_has(setpriv) {
        panic!("setpriv (util-linux) is needed to check modes as another user");
    }
    // Without allow_other FUSE keeps every other user out.
    let private = Mount::new();
    let out = private.bash(&format!("{setpriv} cat $M/buddyinfo"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );

    let m = Mount::with_args(&["-o", "allow_other"]);
    let out = m.bash(&format!("{setpriv} cat $M/buddyinfo"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), m.read("buddyinfo"));
    let mut denied = vec![
        "echo 1 > $M/ctl".to_string(),
        "echo 1 > $M/sys/vm/swappiness".into(),
    ];
    for &(name, mode, _) in GLOBAL_FILES {
        if mode & 0o004 == 0 {
            denied.push(format!("cat $M/{name}"));
        }
    }
    for script in denied {
        let out = m.bash(&format!("{setpriv} bash -c '{script}'"));
        assert!(!out.status.success(), "{script} as nobody succeeded");
        assert!(
            stderr(&out).contains("Permission denied"),
            "{script}: {}",
            stderr(&out)
        );
    }
    assert_eq!(m.read("sys/vm/swappiness"), "60\n");
}

fn m_has(cmd: &str) -> bool {
    let tool = cmd.split_whitespace().next().unwrap();
    common::bash_in(std::path::Path::new("/"), &format!("command -v {tool}"))
        .status
        .success()
}

#[test]
fn same_commands_give_identical_files() {
    let script = [
        "alloc_pages 3 count=10 tag=a",
        "alloc_pages 0 count=77 zone=DMA tag=b",
        "tick 250",
        "free_pages tag=a count=4",
        "bogus command",
        "alloc_pages 1 count=5",
        "tick 3",
    ];
    let a = Mount::new();
    let b = Mount::new();
    // Process commands too, where the kernel has them (a failure is the
    // same failure on both machines, so the files still must agree).
    let process_script = [
        "mmap 1M name=buf",
        "touch buf 256K",
        "touch buf+512K 4K read",
    ];
    for m in [&a, &b] {
        for line in script {
            let _ = m.write("ctl", &format!("{line}\n"));
        }
        m.write("sys/vm/swappiness", "33\n").unwrap();
        if m.write("ctl", "spawn det\n").is_ok() {
            let pid = m.read("sys/kernel/ns_last_pid").trim().to_string();
            for line in process_script {
                let _ = m.write(&format!("{pid}/ctl"), &format!("{line}\n"));
            }
        }
    }
    for &(name, _, _) in GLOBAL_FILES {
        assert_eq!(
            a.read(name),
            b.read(name),
            "{name} differs between two runs"
        );
    }
    let pids = |m: &Mount| -> Vec<String> {
        let mut pids: Vec<String> = std::fs::read_dir(&m.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.bytes().all(|c| c.is_ascii_digit()))
            .collect();
        pids.sort();
        pids
    };
    assert_eq!(pids(&a), pids(&b));
    for pid in pids(&a) {
        for (name, _, _) in mmfs::procfs::pid::PID_FILES {
            let rel = format!("{pid}/{name}");
            // (A kernel thread's smaps_rollup is ESRCH on both.)
            let read = |m: &Mount| std::fs::read_to_string(m.path(&rel)).map_err(|e| e.kind());
            assert_eq!(read(&a), read(&b), "{rel} differs between two runs");
        }
    }
    for path in writable_sysctls() {
        let rel = format!("sys/{path}");
        assert_eq!(a.read(&rel), b.read(&rel), "{rel}");
    }
}
