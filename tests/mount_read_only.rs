//! `-o ro` mounts read-only: files read as usual, every write is EROFS and
//! /proc/mounts says `ro`. `-o remount` is refused with a one-line message
//! saying to unmount and mount again.

mod common;

use common::{MMFS, Mount, Scratch, stderr, stdout};

#[test]
fn read_only_mounts_refuse_every_write() {
    let m = Mount::with_args(&["-o", "ro"]);
    assert!(m.read("meminfo").starts_with("MemTotal:"));
    for (file, text) in [
        ("ctl", "tick\n"),
        ("sys/vm/swappiness", "10\n"),
        ("sys/vm/min_free_kbytes", "9000\n"),
    ] {
        let err = m.write(file, text).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{file}: {err}");
    }
    assert_eq!(m.read("sys/vm/swappiness"), "60\n", "nothing changed");
    // The simulated file system too: it reads, nothing can be made.
    assert_eq!(std::fs::read_dir(m.path("fs")).unwrap().count(), 0);
    for err in [
        std::fs::write(m.path("fs/x"), "x").unwrap_err(),
        std::fs::create_dir(m.path("fs/d")).unwrap_err(),
    ] {
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "fs/: {err}");
    }
    let out = m.bash("{ echo spawn x > $M/ctl; } 2>&1; echo rc=$?");
    assert!(
        stdout(&out).contains("Read-only file system"),
        "{}",
        stdout(&out)
    );
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.contains(&m.dir.display().to_string()))
        .expect("the mount is listed");
    assert!(line.contains(" ro,") || line.contains(" ro "), "{line}");
    let out = m.umount();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn remount_is_refused_with_a_message() {
    let scratch = Scratch::new("remount");
    let dir = scratch.path.join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let out = std::process::Command::new(MMFS)
        .arg("mount")
        .arg(&dir)
        .args(["-o", "remount,ro"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("remount") && err.contains("unmount it and mount again"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
