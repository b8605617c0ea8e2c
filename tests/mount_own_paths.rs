//! A host path inside the daemon's own mount is refused (EINVAL, dmesg says
//! why) before it is touched: before the fix, `swapon $M/version` made the
//! only FUSE worker wait on itself and hung the mount until SIGKILL.

mod common;

use common::{Mount, stderr, stdout};

#[test]
fn swap_paths_inside_the_mount_are_refused_without_hanging() {
    let m = Mount::new();
    let link = std::env::temp_dir().join(format!("mmfs-ownlink-{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&m.dir, &link).unwrap();
    let lines = [
        "swapon $M/version".to_string(),
        "swapon $M".to_string(),
        "mkswap $M/new 1M".to_string(),
        "mkswap $M/sys/../newer 1M".to_string(),
        format!("swapon {}/version", link.display()),
        format!("mkswap {}/x 1M", link.display()),
    ];
    for line in &lines {
        // `timeout` only guards against a true hang (the old behaviour);
        // the command itself returns at once.
        let out = m.bash(&format!(
            "timeout -s KILL 120 bash -c 'echo \"{line}\" > $M/ctl' 2>&1; echo rc=$?"
        ));
        let text = stdout(&out);
        assert!(
            text.contains("Invalid argument") && text.contains("rc=1"),
            "{line}: {text} {}",
            stderr(&out)
        );
        // The mount still answers.
        assert!(m.read("buddyinfo").contains("Node 0"));
    }
    let dmesg = m.read("dmesg");
    assert!(
        dmesg.contains("lies inside this mount"),
        "dmesg says why:\n{dmesg}"
    );
    assert_eq!(m.read("swaps").lines().count(), 1, "no area was added");
    let _ = std::fs::remove_file(&link);
    let out = m.umount();
    assert!(out.status.success(), "{}", stderr(&out));
}
