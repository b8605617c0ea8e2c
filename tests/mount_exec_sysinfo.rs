//! `mmfs exec`: sysinfo(2) — and so glibc's sysconf(_SC_PHYS_PAGES) — answers
//! from the simulation (seccomp user notification), in the command and in
//! its descendants; `MMFS_EXEC_NO_SECCOMP=1` falls back to the host's.

mod common;

use common::{MMFS, Mount};
use std::process::Command;

/// Calls sysinfo(2) through ctypes into a poisoned buffer and prints every
/// field (and the padding after mem_unit), then calls it on a bad pointer.
const SYSINFO_PY: &str = r#"
import ctypes, os
class S(ctypes.Structure):
    _fields_ = [("uptime", ctypes.c_long), ("loads", ctypes.c_ulong * 3),
                ("totalram", ctypes.c_ulong), ("freeram", ctypes.c_ulong),
                ("sharedram", ctypes.c_ulong), ("bufferram", ctypes.c_ulong),
                ("totalswap", ctypes.c_ulong), ("freeswap", ctypes.c_ulong),
                ("procs", ctypes.c_ushort), ("pad", ctypes.c_ushort),
                ("totalhigh", ctypes.c_ulong), ("freehigh", ctypes.c_ulong),
                ("mem_unit", ctypes.c_uint), ("tail", ctypes.c_uint)]
assert ctypes.sizeof(S) == 112
libc = ctypes.CDLL(None, use_errno=True)
s = S()
ctypes.memset(ctypes.byref(s), 0xAB, ctypes.sizeof(s))
print("ret", libc.sysinfo(ctypes.byref(s)))
for name, _ in S._fields_:
    v = getattr(s, name)
    print(name, *(v if name == "loads" else [v]))
ret = libc.syscall(99, ctypes.c_void_p(8))
print("bad_pointer", ret, ctypes.get_errno())
print("phys_pages", os.sysconf("SC_PHYS_PAGES"))
print("avphys_pages", os.sysconf("SC_AVPHYS_PAGES"))
"#;

const SYSCONF_PY: &str = "import os; print(os.sysconf('SC_PHYS_PAGES'))";

fn exec_env(m: &Mount, env: &[(&str, &str)], cmd: &[&str]) -> (i32, String, String) {
    let out = Command::new(MMFS)
        .arg("exec")
        .arg(&m.dir)
        .arg("--")
        .args(cmd)
        .envs(env.iter().copied())
        .output()
        .expect("run mmfs exec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn exec(m: &Mount, cmd: &[&str]) -> (i32, String, String) {
    exec_env(m, &[], cmd)
}

/// A `Key: N kB` value of meminfo text.
fn key(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// The values the script printed for `name`.
fn field(out: &str, name: &str) -> Vec<i64> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

fn one(out: &str, name: &str) -> u64 {
    field(out, name)[0] as u64
}

fn host_phys_pages() -> u64 {
    // SAFETY: sysconf has no memory preconditions.
    unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) as u64 }
}

/// A 2 GiB machine with processes, swap in use and page cache.
fn setup() -> Mount {
    let m = Mount::with_args(&["--mem", "2G"]);
    m.ctl("spawn web");
    m.ctl("spawn db");
    let db = m.read("sys/kernel/ns_last_pid").trim().to_string();
    m.write(&format!("{db}/ctl"), "mmap 64M name=cache\n")
        .unwrap();
    m.write(&format!("{db}/ctl"), "touch cache 32M\n").unwrap();
    m.ctl("mkswap /dev/sdb1 128M");
    m.ctl("swapon /dev/sdb1");
    m.write(&format!("{db}/ctl"), "madvise cache 4M pageout\n")
        .unwrap();
    m
}

/// fs/proc/loadavg.c's text for a sysinfo load (avenrun << 5).
fn render_load(load: u64) -> String {
    let a = (load >> 5) + 2048 / 200;
    format!("{}.{:02}", a >> 11, ((a & 2047) * 100) >> 11)
}

#[test]
fn sysconf_phys_pages_is_the_simulated_ram() {
    let m = Mount::with_args(&["--mem", "2G"]);
    let total = key(&m.read("meminfo"), "MemTotal");
    assert!(total <= 2 * 1024 * 1024 && total > 1024 * 1024, "{total}");
    let (code, out, err) = exec(&m, &["python3", "-c", SYSCONF_PY]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.is_empty(), "no warning expected: {err}");
    let pages: u64 = out.trim().parse().unwrap_or_else(|_| panic!("{out}"));
    assert_eq!(pages, total / 4);
    assert_ne!(pages, host_phys_pages(), "the host's RAM leaked through");
}

#[test]
fn every_field_matches_the_mount_at_that_moment() {
    let m = setup();
    let before = m.read("meminfo");
    let (uptime_before, loadavg) = (
        std::fs::read_to_string(m.path("uptime")).ok(),
        std::fs::read_to_string(m.path("loadavg")).ok(),
    );
    let (code, out, err) = exec(&m, &["python3", "-c", SYSINFO_PY]);
    assert_eq!(code, 0, "{out}{err}");
    let after = m.read("meminfo");
    // The default clock is simulated: nothing moves while exec reads.
    assert_eq!(before, after, "the machine changed under the test");
    let kb = |name| key(&before, name) * 1024;
    assert_eq!(one(&out, "ret"), 0, "{out}");
    assert_eq!(one(&out, "totalram"), kb("MemTotal"), "{out}");
    assert_eq!(one(&out, "freeram"), kb("MemFree"), "{out}");
    assert_eq!(one(&out, "sharedram"), kb("Shmem"), "{out}");
    assert_eq!(one(&out, "bufferram"), kb("Buffers"), "{out}");
    assert_eq!(one(&out, "totalswap"), kb("SwapTotal"), "{out}");
    assert_eq!(one(&out, "freeswap"), kb("SwapFree"), "{out}");
    assert!(one(&out, "freeswap") < one(&out, "totalswap"), "{out}");
    assert_eq!(one(&out, "totalhigh"), 0, "{out}");
    assert_eq!(one(&out, "freehigh"), 0, "{out}");
    assert_eq!(one(&out, "mem_unit"), 1, "{out}");
    // The kernel's memset: padding is zero, not the poison.
    assert_eq!(one(&out, "pad"), 0, "{out}");
    assert_eq!(one(&out, "tail"), 0, "{out}");
    let tasks = std::fs::read_dir(&m.dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_str().unwrap().parse::<u32>().is_ok()
        })
        .count();
    assert!(tasks >= 2);
    assert_eq!(one(&out, "procs"), tasks as u64, "{out}");
    // uptime and loadavg: the mount's, in Linux's formats (0 without them).
    let uptime = one(&out, "uptime");
    match uptime_before {
        Some(text) => {
            let secs: f64 = text.split_whitespace().next().unwrap().parse().unwrap();
            let now: f64 = m
                .read("uptime")
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                uptime as f64 >= secs.ceil() && uptime as f64 <= now.ceil(),
                "uptime {uptime} outside {secs}..{now}"
            );
        }
        None => assert_eq!(uptime, 0),
    }
    let loads: Vec<String> = field(&out, "loads")
        .into_iter()
        .map(|l| render_load(l as u64))
        .collect();
    match loadavg {
        Some(text) => {
            let shown: Vec<&str> = text.split_whitespace().take(3).collect();
            assert_eq!(loads, shown, "{out}");
        }
        None => assert_eq!(loads, ["0.00", "0.00", "0.00"], "{out}"),
    }
    // A bad buffer: EFAULT, as copy_to_user fails.
    assert_eq!(
        field(&out, "bad_pointer"),
        [-1, libc::EFAULT as i64],
        "{out}"
    );
    assert_eq!(one(&out, "phys_pages"), kb("MemTotal") / 4096);
    assert_eq!(one(&out, "avphys_pages"), kb("MemFree") / 4096);
}

#[test]
fn descendants_are_answered_and_do_not_hold_up_the_exit() {
    let m = setup();
    let total = key(&m.read("meminfo"), "MemTotal");
    // python3 is bash's child (the `; echo` keeps bash from exec'ing it);
    // a background sleep that also holds the filter must not keep `mmfs
    // exec` running once bash is done.
    let script =
        r#"sleep 100000 & bash -c 'python3 -c "$1"; echo grandchild $?' bash "$0"; echo child"#;
    let (code, out, err) = exec(&m, &["bash", "-c", script, SYSCONF_PY]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [(total / 4).to_string().as_str(), "grandchild 0", "child"],
        "{err}"
    );
}

#[test]
fn no_seccomp_env_falls_back_to_the_hosts_with_a_warning() {
    let m = Mount::with_args(&["--mem", "2G"]);
    let (code, out, err) = exec_env(
        &m,
        &[("MMFS_EXEC_NO_SECCOMP", "1")],
        &["python3", "-c", SYSCONF_PY],
    );
    assert_eq!(code, 0, "{out}{err}");
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("sysinfo(2)") && warnings[0].contains("MMFS_EXEC_NO_SECCOMP"),
        "{err}"
    );
    let pages: u64 = out.trim().parse().unwrap_or_else(|_| panic!("{out}"));
    assert_eq!(pages, host_phys_pages());
    // The rest of the view is unaffected.
    let (code, out, _) = exec_env(
        &m,
        &[("MMFS_EXEC_NO_SECCOMP", "1")],
        &["grep", "MemTotal", "/proc/meminfo"],
    );
    assert_eq!(code, 0);
    assert_eq!(key(&out, "MemTotal"), key(&m.read("meminfo"), "MemTotal"));
}
