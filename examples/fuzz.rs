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
//! (default 4), `--minimize-secs S` (time to shrink each distinct
//! failure's reproducer, default 60, 0 to skip). `--replay FILE` runs a
//! hand-written reproducer instead (see [`replay`]). Exit status 0 when no panic, invariant violation or
//! contract breach was seen, 1 otherwise; the report lists each distinct
//! failure with its reproducer.

#[path = "../tests/fuzz_common/mod.rs"]
mod fuzz_common;

use std::time::Duration;

use fuzz_common::{FuzzConfig, Fuzzer, scratch_dir, start_watchdog};

fn usage() -> ! {
    eprintln!(
        "usage: fuzz [--seed N] [--commands N] [--ops N] [--trace-from I] \
         [--validation-sample N] [--file-check-sample N] [--minimize-secs S] | --replay[-fast] FILE"
    );
    std::process::exit(2);
}

/// `--replay FILE`: run a hand-written reproducer. Each line is
/// `boot ARCH MEM` (e.g. `boot x86_64 192M`; default 1G x86_64), `ctl LINE`
/// for MOUNT/ctl, `PID LINE` for MOUNT/PID/ctl, `read FILE` or
/// `read PID/FILE` to print a file, or a `#` comment. Prints
/// each line's result and stops at the first broken invariant or panic.
fn replay(path: &str, check_each: bool) -> ! {
    use mmfs::ctl::Machine;
    use mmfs::ctl::Scope;
    use mmfs::mm::MachineConfig;
    use mmfs::mm::types::{Arch, Pid, parse_size};
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("fuzz: cannot read {path}: {e}");
        std::process::exit(2)
    });
    let mut kernel: Option<Machine> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
        if head == "boot" {
            let mut words = rest.split_whitespace();
            let arch = match words.next() {
                Some("i386") => Arch::I386,
                _ => Arch::X86_64,
            };
            let mem_bytes = words.next().and_then(parse_size).unwrap_or(1 << 30);
            kernel = Some(Machine::boot(MachineConfig { arch, mem_bytes }).expect("boot"));
            println!("{}: boot {} {}K", n + 1, arch.name(), mem_bytes >> 10);
            continue;
        }
        let k =
            kernel.get_or_insert_with(|| Machine::boot(MachineConfig::default()).expect("boot"));
        if head == "read" {
            // `read meminfo` or `read PID/maps`: print the file.
            let text = match rest.split_once('/') {
                Some((pid, file)) => match (
                    pid.parse().ok(),
                    mmfs::procfs::pid::PID_FILES.iter().find(|f| f.0 == file),
                ) {
                    (Some(pid), Some(f)) => mmfs::procfs::pid::render_pid(k, Pid(pid), f.2)
                        .unwrap_or_else(|e| format!("{e}\n")),
                    _ => format!("no such file {rest}\n"),
                },
                None => match mmfs::procfs::GLOBAL_FILES.iter().find(|f| f.0 == rest) {
                    Some(f) => mmfs::procfs::render_global(k, f.2),
                    None => format!("no such file {rest}\n"),
                },
            };
            print!("{}: {raw}:\n{text}", n + 1);
            continue;
        }
        let scope = match head {
            "ctl" => Scope::System,
            pid => match pid.parse() {
                Ok(p) => Scope::Process(Pid(p)),
                Err(_) => {
                    eprintln!("{}: expected boot, ctl or a pid: {raw}", n + 1);
                    std::process::exit(2)
                }
            },
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            k.execute_line(scope, rest).map(|_| ())
        }));
        match result {
            Err(_) => {
                println!("{}: {raw}: PANIC", n + 1);
                std::process::exit(1)
            }
            Ok(Ok(())) if !check_each => {}
            Ok(r) => println!(
                "{}: {raw}: {}",
                n + 1,
                match r {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("{} ({e})", fuzz_common::report::errno_name(e.errno())),
                }
            ),
        }
        if check_each && let Err(e) = k.check_invariants() {
            println!("INVARIANT BROKEN: {e}");
            std::process::exit(1)
        }
    }
    if let Some(k) = &kernel {
        if let Err(e) = k.check_invariants() {
            println!("INVARIANT BROKEN at the end: {e}");
            std::process::exit(1)
        }
        let dmesg = mmfs::procfs::render_global(k, mmfs::procfs::GlobalFile::Dmesg);
        println!(
            "{} processes, dmesg {} bytes in {} records",
            k.pids().len(),
            dmesg.len(),
            k.dmesg.records().count()
        );
    }
    println!("all invariants hold");
    std::process::exit(0)
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
        minimize_budget: Duration::from_secs(60),
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
            "--minimize-secs" => cfg.minimize_budget = Duration::from_secs(value()),
            "--replay" => replay(&args.next().unwrap_or_else(|| usage()), true),
            // Only failures are printed and invariants are checked once, at the end.
            "--replay-fast" => replay(&args.next().unwrap_or_else(|| usage()), false),
            _ => usage(),
        }
    }
    if cfg.commands.is_none() && cfg.ops == u64::MAX {
        cfg.commands = Some(100_000);
    }
    // A single operation running this long is a hang: say which one.
    start_watchdog(Duration::from_secs(600));
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
