//! The OOM killer (Linux: mm/oom_kill.c): when reclaim makes no progress
//! and no swap is left, kill the process with the highest badness.

use super::trace::Event;
use super::types::Pid;

/// `OOM_SCORE_ADJ_MIN`: never kill.
pub const OOM_SCORE_ADJ_MIN: i64 = -1000;
/// `OOM_SCORE_ADJ_MAX`.
pub const OOM_SCORE_ADJ_MAX: i64 = 1000;

/// What the OOM killer needs to know about one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OomCandidate {
    /// The process.
    pub pid: Pid,
    /// Its comm.
    pub comm: String,
    /// Resident anon pages.
    pub rss_pages: u64,
    /// Resident page-cache pages it maps (MM_FILEPAGES).
    pub file_rss_pages: u64,
    /// MM_SHMEMPAGES: shmem pages it maps (part of its RSS for badness).
    pub shmem_rss_pages: u64,
    /// Swap entries in its page tables.
    pub swap_pages: u64,
    /// Page-table pages.
    pub pgtable_pages: u64,
    /// Mapped pages (total_vm).
    pub total_vm_pages: u64,
    /// /proc/PID/oom_score_adj.
    pub oom_score_adj: i64,
}

/// `oom_badness`: RSS + swap entries + page tables, plus oom_score_adj
/// thousandths of `totalpages`. None for unkillable tasks (adj -1000).
pub fn badness(c: &OomCandidate, totalpages: u64) -> Option<i64> {
    if c.oom_score_adj == OOM_SCORE_ADJ_MIN {
        return None;
    }
    let points =
        (c.rss_pages + c.file_rss_pages + c.shmem_rss_pages + c.swap_pages + c.pgtable_pages)
            as i64;
    let adj = c.oom_score_adj * (totalpages / 1000) as i64;
    Some(points + adj)
}

/// `/proc/PID/oom_score`: the badness scaled to 0..2000
/// (fs/proc/base.c `proc_oom_score`): `(1000 + badness * 1000 / totalpages) * 2 / 3`.
pub fn oom_score(c: &OomCandidate, totalpages: u64) -> u64 {
    match badness(c, totalpages) {
        None => 0,
        Some(points) => {
            let total = totalpages.max(1) as i64;
            let score = (1000 + points * 1000 / total) * 2 / 3;
            score.max(0) as u64
        }
    }
}

/// `select_bad_process`: the highest badness. Candidates come in task-list
/// order (oldest first); as in `oom_evaluate_task`, a later task with equal
/// points replaces the one chosen so far.
pub fn select_victim(candidates: &[OomCandidate], totalpages: u64) -> Option<usize> {
    let mut best: Option<(usize, i64)> = None;
    for (i, c) in candidates.iter().enumerate() {
        let Some(points) = badness(c, totalpages) else {
            continue;
        };
        if best.is_none_or(|(_, b)| points >= b) {
            best = Some((i, points));
        }
    }
    best.map(|(i, _)| i)
}

/// Linux's "Out of memory: Killed process" line.
pub fn killed_line(c: &OomCandidate) -> String {
    format!(
        "Out of memory: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:{}kB, UID:0 pgtables:{}kB oom_score_adj:{}",
        c.pid,
        c.comm,
        c.total_vm_pages * 4,
        c.rss_pages * 4,
        c.file_rss_pages * 4,
        c.shmem_rss_pages * 4,
        c.pgtable_pages * 4,
        c.oom_score_adj
    )
}

impl super::Kernel {
    /// `out_of_memory`: log the header and the task table, kill the process
    /// with the highest badness and free all it held. False when no process
    /// may be killed.
    pub fn out_of_memory(
        &mut self,
        order: super::types::Order,
        kind: super::page_alloc::PageKind,
    ) -> bool {
        let totalpages = self.page_alloc.total_managed() + self.swap.total_pages();
        let Some(chosen) = self.oom_victim(totalpages) else {
            self.printk("Out of memory and no killable processes...");
            return false;
        };
        let requester = self
            .current
            .and_then(|pid| self.procs.by_pid(pid))
            .map(|p| (p.comm.clone(), p.oom_score_adj));
        let (comm, adj) = requester.unwrap_or_else(|| ("mmfs-ctl".to_string(), 0));
        let gfp = if kind == super::page_alloc::PageKind::UserAnon {
            "0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO)"
        } else {
            "0xcc0(GFP_KERNEL)"
        };
        let (dump, suppressed) = self.oom_ratelimit.allow(self.clock_ns);
        if suppressed > 0 {
            self.printk(format!("out_of_memory: {suppressed} callbacks suppressed"));
        }
        if dump {
            // The task table costs O(processes): only for reports let through.
            let candidates = self.oom_candidates();
            let mut header = format!(
                "{comm} invoked oom-killer: gfp_mask={gfp}, order={}, oom_score_adj={adj}\nTasks state (memory values in pages):\n[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name",
                order.0
            );
            for c in &candidates {
                header.push_str(&format!(
                    "\n[{:7}] {:5} {:5} {:8} {:8} {:8} {:8} {:9} {:8} {:8}         {:5} {}",
                    c.pid.0,
                    0,
                    c.pid.0,
                    c.total_vm_pages,
                    c.rss_pages + c.file_rss_pages + c.shmem_rss_pages,
                    c.rss_pages,
                    c.file_rss_pages,
                    c.shmem_rss_pages,
                    c.pgtable_pages * super::types::PAGE_SIZE,
                    c.swap_pages,
                    c.oom_score_adj,
                    c.comm
                ));
            }
            self.printk(header);
        }
        self.printk(format!(
            "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task={},pid={},uid=0",
            chosen.comm, chosen.pid
        ));
        self.trace_mark_victim(&chosen);
        self.printk(killed_line(&chosen));
        self.events.oom_kill += 1;
        self.trace_oom_reaper(Event::WakeReaper, chosen.pid);
        self.trace_oom_reaper(Event::StartTaskReaping, chosen.pid);
        if let Ok(slot) = self.procs.slot_of(chosen.pid) {
            self.exit_process(slot);
        }
        self.trace_oom_reaper(Event::FinishTaskReaping, chosen.pid);
        self.printk(format!(
            "oom_reaper: reaped process {} ({}), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
            chosen.pid, chosen.comm
        ));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pid: u32, rss: u64, swap: u64, adj: i64) -> OomCandidate {
        OomCandidate {
            pid: Pid(pid),
            comm: format!("p{pid}"),
            rss_pages: rss,
            file_rss_pages: 0,
            shmem_rss_pages: 0,
            swap_pages: swap,
            pgtable_pages: 1,
            total_vm_pages: rss + swap,
            oom_score_adj: adj,
        }
    }

    #[test]
    fn biggest_is_chosen_and_minus_1000_spared() {
        let total = 262144;
        let list = [c(2, 100, 0, 0), c(3, 5000, 1000, 0), c(4, 90000, 0, -1000)];
        assert_eq!(select_victim(&list, total), Some(1));
        assert_eq!(oom_score(&list[2], total), 0);
    }

    #[test]
    fn adj_shifts_the_choice() {
        let total = 262144;
        let list = [c(2, 100, 0, 1000), c(3, 5000, 0, 0)];
        assert_eq!(select_victim(&list, total), Some(0));
        let list = [c(2, 100, 0, -1000), c(3, 100, 0, -1000)];
        assert_eq!(select_victim(&list, total), None);
    }

    #[test]
    fn ties_go_to_the_newer_task() {
        let list = [c(2, 100, 0, 0), c(3, 100, 0, 0)];
        assert_eq!(select_victim(&list, 262144), Some(1));
    }

    #[test]
    fn oom_score_formula() {
        let total = 1_000_000;
        // badness 1 page: (1000 + 0) * 2 / 3 = 666.
        let mut p = c(2, 0, 0, 0);
        p.pgtable_pages = 1;
        assert_eq!(oom_score(&p, total), 666);
        // Half of memory: (1000 + 500) * 2 / 3 = 1000.
        p.rss_pages = 500_000 - 1;
        assert_eq!(oom_score(&p, total), 1000);
        p.oom_score_adj = 1000;
        assert_eq!(oom_score(&p, total), 1666);
    }

    #[test]
    fn killed_line_format() {
        let line = killed_line(&c(7, 10, 0, 0));
        assert_eq!(
            line,
            "Out of memory: Killed process 7 (p7) total-vm:40kB, anon-rss:40kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0"
        );
    }
}
