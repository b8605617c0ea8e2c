//! Every file of /proc/sys/vm is served: the tunables mmfs does not model
//! read Linux 6.18's default and refuse writes with EPERM and a dmesg line.
//! The names are compared with this machine's real 6.18 /proc/sys/vm.

mod common;

use common::Mount;

#[test]
fn sys_vm_has_every_file_of_the_real_kernel() {
    let m = Mount::new();
    let names = |dir: &std::path::Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let ours = names(&m.path("sys/vm"));
    let host = names(std::path::Path::new("/proc/sys/vm"));
    let missing: Vec<_> = host.difference(&ours).collect();
    assert!(missing.is_empty(), "not served: {missing:?}");
    // Unmodelled: the default, writes EPERM with a reason in dmesg.
    assert_eq!(m.read("sys/vm/dirty_ratio"), "20\n");
    assert_eq!(m.read("sys/vm/page-cluster"), "3\n");
    assert_eq!(m.read("sys/vm/max_map_count"), "65530\n");
    assert_eq!(
        m.read("sys/vm/lowmem_reserve_ratio"),
        "256\t256\t32\t0\t0\n"
    );
    let err = m.write("sys/vm/laptop_mode", "5\n").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    assert!(m.read("dmesg").contains("not modelled by mmfs"));
    assert_eq!(m.read("sys/vm/laptop_mode"), "0\n");
    // page-cluster is modelled (swap readahead), 0..=31 as in Linux 6.18.
    m.write("sys/vm/page-cluster", "5\n").unwrap();
    assert_eq!(m.read("sys/vm/page-cluster"), "5\n");
    let err = m.write("sys/vm/page-cluster", "32\n").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    // Write-only files refuse reads, as procfs does even for root.
    let err = std::fs::read_to_string(m.path("sys/vm/drop_caches")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
    // Modelled ones take writes, within Linux's ranges.
    m.write("sys/vm/swappiness", "100\n").unwrap();
    assert_eq!(m.read("sys/vm/swappiness"), "100\n");
    m.write("sys/vm/dirty_ratio", "5\n").unwrap();
    assert_eq!(m.read("sys/vm/dirty_ratio"), "5\n");
    let err = m.write("sys/vm/dirty_ratio", "101\n").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    // drop_caches takes 1..3 only.
    m.write("sys/vm/drop_caches", "3\n").unwrap();
    let err = m.write("sys/vm/drop_caches", "4\n").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    // Derived from the machine like Linux's init_user_reserve: 3% of free.
    let user: u64 = m.read("sys/vm/user_reserve_kbytes").trim().parse().unwrap();
    let admin: u64 = m
        .read("sys/vm/admin_reserve_kbytes")
        .trim()
        .parse()
        .unwrap();
    assert!(user > 0 && admin == user.min(8192), "{user} {admin}");
    assert!(m.umount().status.success());
}
