//! Two mmfs daemons cannot swap on the same host file: the first holds an
//! exclusive flock on it while it is active, so the second gets EBUSY
//! until the first swaps it off.

mod common;

use common::{Mount, Scratch, stdout};

#[test]
fn a_second_daemon_gets_ebusy_on_an_active_swap_file() {
    let scratch = Scratch::new("twoswap");
    let file = scratch.path.join("swapfile");
    let a = Mount::new();
    let b = Mount::new();
    a.ctl(&format!("mkswap {} 4M", file.display()));
    a.ctl(&format!("swapon {}", file.display()));
    let err = b
        .write("ctl", &format!("swapon {}\n", file.display()))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
    assert!(b.read("dmesg").contains("another process"));
    // Another spelling on the first daemon: the same file, EBUSY.
    let other = format!("{}/./swapfile", scratch.path.display());
    let err = a.write("ctl", &format!("swapon {other}\n")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
    // Once the first lets go, the second may use it.
    a.ctl(&format!("swapoff {other}"));
    b.ctl(&format!("swapon {}", file.display()));
    let out = b.bash("cat $M/swaps");
    assert!(stdout(&out).contains("swapfile"), "{}", stdout(&out));
    b.ctl(&format!("swapoff {}", file.display()));
    assert!(a.umount().status.success());
    assert!(b.umount().status.success());
}
