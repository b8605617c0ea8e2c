//! The scheduler's files: /proc/uptime (fs/proc/uptime.c), /proc/loadavg
//! (fs/proc/loadavg.c) and /proc/pressure/memory (kernel/sched/psi.c
//! `psi_show`), all from the one simulated clock (mm/cputime.rs).

use crate::mm::Kernel;

/// "%lu.%02lu" of a duration in ns (centiseconds truncated).
fn secs_centis(ns: u64) -> String {
    format!(
        "{}.{:02}",
        ns / 1_000_000_000,
        ns % 1_000_000_000 / 10_000_000
    )
}

/// `/proc/uptime`: seconds since boot, and the idle time of all CPUs.
pub fn uptime(kernel: &Kernel) -> String {
    format!(
        "{} {}\n",
        secs_centis(kernel.clock_ns),
        secs_centis(kernel.idle_ns())
    )
}

/// `/proc/loadavg`: the three averages, runnable/total tasks, last pid.
pub fn loadavg(kernel: &Kernel) -> String {
    let [a, b, c] = kernel.sched.loadavg.show();
    let stats = kernel.node_stats();
    let tasks = kernel.procs.len() + kernel.kthreads.len();
    format!(
        "{}.{:02} {}.{:02} {}.{:02} {}/{} {}\n",
        a.0, a.1, b.0, b.1, c.0, c.1, stats.nr_running, tasks, kernel.ns_last_pid
    )
}

/// `/proc/pressure/memory`.
pub fn pressure_memory(kernel: &Kernel) -> String {
    let psi = &kernel.sched.psi;
    format!("some {}\nfull {}\n", psi.some.show(), psi.full.show())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Scope;
    use crate::mm::MachineConfig;

    #[test]
    fn formats_match_the_hosts_files() {
        let k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        // A fresh machine: up 1 s, both CPUs idle, no load, no pressure.
        // init's first faults took a few µs of CPU 1: idle truncates to 1.99.
        assert_eq!(uptime(&k), "1.00 1.99\n");
        assert_eq!(loadavg(&k), "0.00 0.00 0.00 1/5 5\n");
        assert_eq!(
            pressure_memory(&k),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        );
    }

    #[test]
    fn thrashing_shows_as_load_and_pressure() {
        let mut k = crate::ctl::Machine::boot(MachineConfig {
            mem_bytes: 256 << 20,
            ..MachineConfig::default()
        })
        .unwrap();
        k.execute_line(Scope::System, "mkswap /dev/sdb 512M")
            .unwrap();
        k.execute_line(Scope::System, "swapon /dev/sdb").unwrap();
        let pid = k.execute_line(Scope::System, "spawn hog").unwrap().unwrap();
        k.execute_line(Scope::Process(pid), "mmap 400M name=h")
            .unwrap();
        for _ in 0..3 {
            k.execute_line(Scope::Process(pid), "touch h 400M").unwrap();
        }
        let psi = pressure_memory(&k);
        let total = |line: &str| -> u64 { line.rsplit("total=").next().unwrap().parse().unwrap() };
        let lines: Vec<&str> = psi.lines().collect();
        assert!(total(lines[0]) > 0 && total(lines[1]) > 0, "{psi}");
        assert!(total(lines[0]) >= total(lines[1]));
        // Seconds of swap I/O: the 1-minute load is well above 0.
        let load: f64 = loadavg(&k).split(' ').next().unwrap().parse().unwrap();
        assert!(load > 0.3, "{}", loadavg(&k));
        let up: Vec<f64> = uptime(&k)
            .split_whitespace()
            .map(|w| w.parse().unwrap())
            .collect();
        assert!(up[1] < 2.0 * up[0]);
    }
}
