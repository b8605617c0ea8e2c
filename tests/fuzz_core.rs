//! CI variant of the command fuzzer (see `examples/fuzz.rs` for the long
//! run): fixed seeds, a fixed amount of work (a tenth of it in a debug
//! build). Nothing here asserts speed: the watchdog only aborts when one
//! operation runs for ten minutes (a hang, not a busy machine).
//! `MMFS_FUZZ_COMMANDS=N` overrides the number of control lines per seed.

mod fuzz_common;

use std::time::Duration;

use fuzz_common::{FuzzConfig, Fuzzer, Op, scratch_dir, start_watchdog};
use mmfs::ctl::Machine;
use mmfs::ctl::Scope;
use mmfs::mm::MachineConfig;

/// Control lines per seed.
fn commands() -> u64 {
    if let Some(n) = std::env::var("MMFS_FUZZ_COMMANDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if cfg!(debug_assertions) {
        4_000
    } else {
        40_000
    }
}

fn run(seed: u64, tag: &str) {
    start_watchdog(Duration::from_secs(600));
    let cfg = FuzzConfig {
        seed,
        ops: u64::MAX,
        commands: Some(commands()),
        validation_sample: 8,
        file_check_sample: 4,
        trace_from: None,
        swap_dir: scratch_dir(tag),
        minimize_budget: Duration::from_secs(20),
    };
    let stats = Fuzzer::new(cfg).run();
    eprintln!("seed {seed}:\n{}", stats.summary());
    let report: Vec<String> = stats.failures.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        stats.failure_count,
        0,
        "seed {seed}: {} failures\n{}\n{}",
        stats.failure_count,
        stats.summary(),
        report.join("\n")
    );
    // The run must have exercised something: refused and accepted lines,
    // the no-change check and the cross-file check.
    assert!(
        stats.validation_checks > 0,
        "no refused command was checked"
    );
    assert!(stats.file_checks > 0, "no cross-file check ran");
    assert!(
        stats.outcomes.iter().any(|((_, e), _)| *e == 0),
        "nothing succeeded"
    );
}

#[test]
fn fuzz_seed_1() {
    run(1, "ci1");
}

#[test]
fn fuzz_seed_20250101() {
    run(20_250_101, "ci2");
}

/// The same seed twice gives byte-identical files (SPEC §4 determinism),
/// host swap files included (same scratch path both times).
#[test]
fn fuzz_is_deterministic() {
    let dir = scratch_dir("determinism");
    let render = || {
        let cfg = FuzzConfig {
            seed: 77,
            ops: 3_000,
            commands: None,
            validation_sample: 0,
            file_check_sample: 0,
            trace_from: None,
            swap_dir: dir.clone(),
            minimize_budget: Duration::ZERO,
        };
        let mut fuzzer = Fuzzer::new(cfg);
        fuzzer.run_ops();
        fuzzer.final_snapshot()
    };
    let a = render();
    let b = render();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!a.is_empty());
    assert_eq!(a, b, "two runs of seed 77 ended in different states");
}

/// The generator never names a host path outside its scratch directory.
#[test]
fn generated_swap_paths_stay_in_scratch() {
    let dir = scratch_dir("paths");
    let cfg = FuzzConfig {
        seed: 5,
        ops: 0,
        commands: None,
        validation_sample: 0,
        file_check_sample: 0,
        trace_from: None,
        swap_dir: dir.clone(),
        minimize_budget: Duration::ZERO,
    };
    let mut fuzzer = Fuzzer::new(cfg);
    let mut swap_lines = 0;
    for op in fuzzer.sample_ops(20_000) {
        if let Op::Ctl(Scope::System, line) | Op::CtlChecked(Scope::System, line) = op
            && let Ok(cmd) = mmfs::ctl::parse_system(&line)
            && let Some(path) = fuzz_common::swap_path_of(&cmd)
        {
            swap_lines += 1;
            assert!(
                path.starts_with("/dev/") || std::path::Path::new(path).starts_with(&dir),
                "host path outside the scratch dir: {line}"
            );
        }
    }
    assert!(
        swap_lines > 100,
        "only {swap_lines} swap commands generated"
    );
    let k = Machine::boot(MachineConfig::default()).unwrap();
    k.check_invariants().unwrap();
}
