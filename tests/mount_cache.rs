//! The kernel caches the mount's entries and attributes (positive TTLs):
//! static files are served without look-ups, and a process directory the
//! kernel has cached is invalidated as soon as its process exits or its
//! pid is handed to another, so `ls` and `stat` never show a stale one.

mod common;

use std::io::ErrorKind;

use common::Mount;

/// The names `ls MNT` lists.
fn listing(m: &Mount) -> Vec<String> {
    std::fs::read_dir(&m.dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_killed_process_is_gone_at_once_and_a_reused_pid_shows_the_new_one() {
    let m = Mount::new();
    let pid = m.created("spawn first");
    let dir = m.path(&pid.to_string());
    // Cache the directory, its attributes and a file's entry.
    for _ in 0..3 {
        assert!(std::fs::metadata(&dir).expect("stat PID").is_dir());
        assert_eq!(m.read(&format!("{pid}/comm")), "first\n");
    }
    assert!(listing(&m).contains(&pid.to_string()));

    m.ctl(&format!("kill {pid}"));
    let err = std::fs::metadata(&dir).expect_err("stat of a killed pid");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = std::fs::metadata(dir.join("status")).expect_err("stat PID/status");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(std::fs::read(dir.join("comm")).is_err());
    assert!(!listing(&m).contains(&pid.to_string()));
    let out = m.bash(&format!(
        "ls -d \"$M/{pid}\" 2>&1; stat \"$M/{pid}/comm\" 2>&1"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("No such file or directory").count(),
        2,
        "{text}"
    );

    // A second process takes the same pid in the write that kills the
    // first: pids are handed out upwards to pid_max (32768), then again
    // from 300, so every other pid is taken and dropped first (and the
    // pid used lies above 300, where the count starts again).
    let mut plan = String::new();
    for other in pid + 1..=400 {
        plan.push_str(&format!("spawn filler\nkill {other}\n"));
    }
    m.write("ctl", &plan).expect("fill pids to 400");
    let pid = m.created("spawn second");
    assert!(pid > 400, "{pid}");
    let dir = m.path(&pid.to_string());
    assert_eq!(m.read(&format!("{pid}/comm")), "second\n");
    assert!(std::fs::metadata(dir.join("status")).is_ok());
    let mut plan = format!("kill {pid}\n");
    for other in (pid + 1..32768).chain(300..pid) {
        plan.push_str(&format!("spawn filler\nkill {other}\n"));
    }
    plan.push_str("spawn third\n");
    m.write("ctl", &plan).expect("the plan runs");
    assert_eq!(
        m.read("sys/kernel/ns_last_pid").trim(),
        pid.to_string(),
        "the pid was reused"
    );
    assert_eq!(m.read(&format!("{pid}/comm")), "third\n");
    let status = m.read(&format!("{pid}/status"));
    assert!(status.starts_with("Name:\tthird\n"), "{status}");
    assert!(listing(&m).contains(&pid.to_string()));
}

#[test]
fn static_files_stay_correct_while_cached() {
    let m = Mount::new();
    // Repeated reads of a cached entry still render afresh.
    let before = m.read("buddyinfo");
    m.ctl("alloc_pages 4 count=8 tag=t");
    let after = m.read("buddyinfo");
    assert_ne!(before, after);
    m.ctl("free_pages tag=t");
    assert_eq!(m.read("buddyinfo"), before);
    let meta = std::fs::metadata(m.path("buddyinfo")).expect("stat");
    assert!(meta.is_file());
    assert_eq!(meta.len(), 0);
}

/// A root listing of thousands of processes spans many readdir calls, each
/// built from its cookie on: every pid is listed once, in order, and the
/// root's `user.mmfs.pids` attribute (what `mmfs exec`'s watcher polls)
/// moves with every spawn and exit.
#[test]
fn a_long_root_listing_names_every_pid_once_and_the_pid_set_version_follows() {
    let m = Mount::with_args(&["--mem", "4G"]);
    let plan: String = (0..3000)
        .map(|i| format!("spawn many{}\n", i % 7))
        .collect();
    m.write("ctl", &plan).expect("spawn 3000");
    let pids: Vec<u32> = listing(&m).iter().filter_map(|n| n.parse().ok()).collect();
    let mut sorted = pids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(pids, sorted, "in pid order, none twice");
    assert!(pids.len() > 3000, "{} pids", pids.len());
    let version = || mmfs::fs::mount::pid_set_version(&m.dir).expect("user.mmfs.pids");
    let before = version();
    assert_eq!(version(), before, "no change, same version");
    let pid = m.created("spawn one_more");
    let spawned = version();
    assert_ne!(spawned, before);
    m.ctl(&format!("kill {pid}"));
    let killed = version();
    assert_ne!(killed, spawned);
    assert_ne!(killed, before);
    m.ctl("tick");
    assert_eq!(version(), killed, "a tick changes no pid");
}

/// A name no process directory has is cached as absent (procps asks each
/// one for `ctty`), and stays absent; the real names are still found.
#[test]
fn names_no_process_directory_has_stay_absent() {
    let m = Mount::new();
    let pid = m.created("spawn asked");
    for _ in 0..3 {
        let err = std::fs::metadata(m.path(&format!("{pid}/ctty"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = std::fs::metadata(m.path(&format!("{pid}/task/{pid}/ctl"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    assert_eq!(m.read(&format!("{pid}/comm")), "asked\n");
    assert!(m.path(&format!("{pid}/task/{pid}/stat")).exists());
    m.ctl(&format!("kill {pid}"));
    assert!(!m.path(&pid.to_string()).exists());
}
