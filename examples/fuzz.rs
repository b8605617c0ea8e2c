//! The long fuzz run over the simulated kernel (no FUSE):
//!
//! ```text
//! cargo run --release --example fuzz -- --commands 1000000 --seed 1
//! ```
//!
//! Options: `--seed N` (default 1), `--commands N` (stop after N control
//! lines), `--ops N` (stop after N operations: commands, reads, sysctl and
//! mem accesses), `--trace-from I` (print every operation from index I,
//! to replay a failure), `--validation-sample N` (check one in N refused
//! commands for "changes nothing", default 8), `--file-check-sample N`
//! (default 4). Exit status 0 when no panic, invariant violation or
//! contract breach was seen, 1 otherwise; the report lists each distinct
//! failure with its reproducer.

#[path = "../tests/fuzz_common/mod.rs"]
mod fuzz_common;

use std::time::Duration;

use fuzz_common::{FuzzConfig, Fuzzer, scratch_dir, start_watchdog};

fn usage() -> ! {
    eprintln!(
        "usage: fuzz [--seed N] [--commands N] [--ops N] [--trace-from I] \
         [--validation-sample N] [--file-check-sample N]"
    );
    std::process::exit(2);
}

fn main() {
    let mut cfg = FuzzConfig {
        seed: 1,
        ops: u64::MAX,
        commands: None,
        validation_sample: 8,
        file_check_sample: 4,
        trace_from: None,
        swap_dir: scratch_dir("example"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--seed" => cfg.seed = value(),
            "--commands" => cfg.commands = Some(value()),
            "--ops" => cfg.ops = value(),
            "--trace-from" => cfg.trace_from = Some(value()),
            "--validation-sample" => cfg.validation_sample = value(),
            "--file-check-sample" => cfg.file_check_sample = value(),
            _ => usage(),
        }
    }
    if cfg.commands.is_none() && cfg.ops == u64::MAX {
        cfg.commands = Some(100_000);
    }
    // A single operation running this long is a hang: say which one.
    start_watchdog(Duration::from_secs(120));
    eprintln!(
        "fuzz: seed {}, {} (host swap files only under {})",
        cfg.seed,
        match cfg.commands {
            Some(n) => format!("{n} control lines"),
            None => format!("{} operations", cfg.ops),
        },
        cfg.swap_dir.display()
    );
    let stats = Fuzzer::new(cfg).run();
    print!("{}", stats.summary());
    for failure in &stats.failures {
        println!("\n{failure}");
    }
    if stats.failure_count > 0 {
        std::process::exit(1);
    }
}
