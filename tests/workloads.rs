//! Every workload script runs against a fresh default mount and must pass;
//! replayed on a second fresh boot it must leave byte-identical files.

mod common;

use common::{MMFS, Mount};
use std::process::Command;

const COMPARED: &[&str] = &[
    "buddyinfo",
    "zoneinfo",
    "slabinfo",
    "meminfo",
    "vmstat",
    "swaps",
];

fn workloads() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
    let mut list: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".sh") && name.as_bytes()[0].is_ascii_digit()
        })
        .collect();
    list.sort();
    assert!(
        list.len() >= 8,
        "expected at least eight workloads, found {}",
        list.len()
    );
    list
}

/// Run one workload on a fresh mount; return the files it leaves.
fn run(script: &std::path::Path) -> Vec<String> {
    let mount = Mount::new();
    let out = Command::new("bash")
        .arg(script)
        .arg(&mount.dir)
        .env("MMFS", MMFS)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{} failed:\n{}\n{}\n--- dmesg tail:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        mount
            .read("dmesg")
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n")
    );
    COMPARED.iter().map(|f| mount.read(f)).collect()
}

#[test]
fn every_workload_passes_and_replays_identically() {
    for script in workloads() {
        let first = run(&script);
        let second = run(&script);
        for (name, (a, b)) in COMPARED.iter().zip(first.iter().zip(&second)) {
            assert_eq!(
                a,
                b,
                "{}: {name} differs between two fresh boots",
                script.display()
            );
        }
    }
}
