//! Mounting and unmounting: /proc/mounts, `mmfs umount`, signals, the
//! mount(8) helper protocol, and one-line errors for bad usage.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longer than anything should take, even on a loaded machine: waits end
/// long before it unless something hangs (tests never assert speed).
const HANG: Duration = Duration::from_secs(120);

use common::{MMFS, Mount, Scratch, mmfs, mounted, stderr};
use mmfs::fs::mount::{daemon_pid, find_mount, process_alive, unmount, wait_for_exit};

fn proc_mounts_line(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string("/proc/mounts").unwrap();
    let dir = dir.to_string_lossy().into_owned();
    text.lines()
        .find(|l| l.split(' ').nth(1) == Some(dir.as_str()))
        .map(str::to_string)
}

#[test]
fn proc_mounts_shows_fuse_mmfs() {
    let m = Mount::new();
    let line = proc_mounts_line(&m.dir).expect("mount in /proc/mounts");
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[0], "mmfs", "{line}");
    assert_eq!(fields[2], "fuse.mmfs", "{line}");
    for option in ["nosuid", "nodev", "default_permissions", "user_id=0"] {
        assert!(
            fields[3].split(',').any(|o| o == option),
            "{option} missing: {line}"
        );
    }
    assert!(!fields[3].contains("allow_other"), "{line}");
    let open = Mount::with_args(&["-o", "allow_other"]);
    let line = proc_mounts_line(&open.dir).unwrap();
    assert!(line.contains("allow_other"), "{line}");
    assert!(m.log_text().contains("mounted"), "log: {}", m.log_text());
}

#[test]
fn mmfs_umount_leaves_no_mount_and_no_daemon() {
    let m = Mount::new();
    let (dir, pid) = (m.dir.clone(), m.pid);
    assert!(process_alive(pid));
    let out = m.umount();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!mounted(&dir), "still in /proc/mounts");
    assert!(
        !process_alive(pid),
        "daemon {pid} still running after mmfs umount"
    );
    // A second umount says it is not mounted.
    let out = mmfs(["umount".as_ref(), dir.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not mounted"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn signals_unmount_and_exit() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let m = Mount::new();
        // SAFETY: kill has no memory preconditions; the pid is our daemon's.
        assert_eq!(unsafe { libc::kill(m.pid as i32, signal) }, 0);
        assert!(wait_for_exit(m.pid, HANG), "daemon ignored signal {signal}");
        assert!(!mounted(&m.dir), "signal {signal} left the mount");
        // No stale "Transport endpoint is not connected" left behind.
        assert!(std::fs::read_dir(&m.dir).unwrap().next().is_none());
    }
}

#[test]
fn umount8_ends_the_daemon() {
    let m = Mount::new();
    let out = Command::new("umount").arg(&m.dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_for_exit(m.pid, HANG));
}

#[test]
fn mount_returns_with_stdout_closed() {
    // `out=$(mmfs mount DIR)` must not wait for the daemon: it closes the
    // terminal's descriptors.
    let scratch = Scratch::new("capture");
    let dir = scratch.path.join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let out = Command::new("timeout")
        .args([
            "300",
            "bash",
            "-c",
            "out=$(\"$MMFS\" mount \"$D\" 2>&1); echo \"[$out]\"; cat \"$D/buddyinfo\" | wc -l",
        ])
        .env("MMFS", MMFS)
        .env("D", &dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let pid = daemon_pid(&dir);
    let _ = unmount(&dir, true);
    if let Some(pid) = pid {
        wait_for_exit(pid, HANG);
    }
    // timeout(1) exits 124 when the capture hangs.
    assert!(out.status.success(), "{}", stderr(&out));
    let text = common::stdout(&out);
    assert!(text.starts_with("[]\n"), "mount printed something: {text}");
    assert_ne!(
        text.lines().nth(1),
        Some("0"),
        "the tree did not answer right after mount"
    );
}

#[test]
fn foreground_serves_until_sigint() {
    let scratch = Scratch::new("fg");
    let dir = scratch.path.join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let mut child = Command::new(MMFS)
        .arg("mount")
        .arg(&dir)
        .args(["--foreground", "--mem", "256M"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while daemon_pid(&dir).is_none() {
        assert!(start.elapsed() < HANG, "foreground mount never answered");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(daemon_pid(&dir), Some(child.id()));
    assert!(
        std::fs::read_to_string(dir.join("buddyinfo"))
            .unwrap()
            .contains("DMA32")
    );
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    let mut log = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "{status:?}; its log:\n{log}");
    assert!(find_mount(&dir).is_none());
    assert!(
        log.contains("mounted"),
        "foreground logs go to stderr: {log}"
    );
}

#[test]
fn mount_helper_protocol() {
    let scratch = Scratch::new("helper");
    let helper = scratch.path.join("mount.mmfs");
    std::os::unix::fs::symlink(MMFS, &helper).unwrap();
    let dir = scratch.path.join("mnt");
    std::fs::create_dir(&dir).unwrap();
    // -f (fake) checks but mounts nothing.
    let out = Command::new(&helper)
        .args([
            "mmfs".as_ref(),
            dir.as_os_str(),
            "-f".as_ref(),
            "-o".as_ref(),
            "mem=2G".as_ref(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!mounted(&dir));
    let out = Command::new(&helper)
        .arg("mmfs")
        .arg(&dir)
        .args([
            "-o",
            "rw,nosuid,nodev,noexec,relatime,mem=2G,arch=i386,x-systemd.automount,_netdev",
            "-n",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = daemon_pid(&dir).expect("helper mount answers");
    let buddy = std::fs::read_to_string(dir.join("buddyinfo")).unwrap();
    assert!(buddy.contains("HighMem"), "{buddy}");
    assert_eq!(
        proc_mounts_line(&dir).unwrap().split(' ').nth(2),
        Some("fuse.mmfs")
    );
    let out = mmfs(["umount".as_ref(), dir.as_os_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!process_alive(pid));
    // An unknown option is a usage error...
    let out = Command::new(&helper)
        .arg("mmfs")
        .arg(&dir)
        .args(["-o", "mem=2G,frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("frobnicate"));
    // ...unless mount(8) says -s (sloppy).
    let out = Command::new(&helper)
        .arg("mmfs")
        .arg(&dir)
        .args(["-s", "-f", "-o", "frobnicate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Assert a one-line error with the given exit status that names `hint`.
fn assert_bad(args: &[&std::ffi::OsStr], code: i32, hint: &str) {
    let out = mmfs(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("mmfs: "), "{err}");
    assert!(err.contains(hint), "{args:?}: {err} does not name {hint:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_usage_is_one_line_naming_the_fix() {
    let scratch = Scratch::new("usage");
    let missing = scratch.path.join("missing");
    let full = scratch.path.join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("file"), "x").unwrap();
    let file = full.join("file");
    let empty = scratch.path.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let s = |t: &'static str| std::ffi::OsStr::new(t);
    assert_bad(&[s("mount"), missing.as_os_str()], 1, "mkdir -p");
    assert_bad(&[s("mount"), full.as_os_str()], 1, "not empty");
    assert_bad(&[s("mount"), file.as_os_str()], 1, "not a directory");
    assert_bad(
        &[s("mount"), empty.as_os_str(), s("--mem"), s("12Q")],
        2,
        "--mem 2G",
    );
    assert_bad(
        &[
            s("mount"),
            empty.as_os_str(),
            s("--mem"),
            s("8G"),
            s("--arch"),
            s("i386"),
        ],
        2,
        "4G",
    );
    assert_bad(
        &[s("mount"), empty.as_os_str(), s("--arch"), s("sparc")],
        2,
        "--arch x86_64",
    );
    assert_bad(
        &[s("mount"), empty.as_os_str(), s("-o"), s("bogus")],
        2,
        "mem=SIZE",
    );
    assert_bad(&[s("mount")], 2, "usage: mmfs mount MOUNTPOINT");
    assert_bad(&[], 2, "usage");
    assert_bad(&[s("umount"), empty.as_os_str()], 1, "not mounted");
    assert_bad(&[s("umount"), s("/proc")], 1, "not mmfs");
    assert!(!mounted(&empty));
}

#[test]
fn a_live_or_dead_mount_is_not_mounted_over() {
    let m = Mount::new();
    assert_bad(
        &[std::ffi::OsStr::new("mount"), m.dir.as_os_str()],
        1,
        "mmfs umount",
    );
    // Kill the daemon without unmounting: the mount is dead.
    // SAFETY: kill has no memory preconditions; the pid is our daemon's.
    unsafe {
        libc::kill(m.pid as i32, libc::SIGKILL);
    }
    assert!(wait_for_exit(m.pid, HANG));
    let err = std::fs::metadata(&m.dir).unwrap_err();
    assert!(mmfs::fs::mount::is_dead_mount_error(&err), "{err}");
    assert_bad(
        &[std::ffi::OsStr::new("mount"), m.dir.as_os_str()],
        1,
        "umount -l",
    );
    // mmfs umount clears a dead mount too.
    let out = mmfs(["umount".as_ref(), m.dir.as_os_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!mounted(&m.dir));
}
