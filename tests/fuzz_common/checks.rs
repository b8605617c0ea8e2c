//! Well-formedness and cross-file checks on rendered file text. They only
//! look at text, so the core fuzzer (renderers called directly) and the
//! soak test (files read through a real mount) share them. The last
//! section renders a [`Machine`]'s files to check them, or to snapshot them
//! for the "a refused command changes nothing" check.

use std::collections::BTreeMap;

use mmfs::ctl::Machine;
use mmfs::mm::sysctl::writable_sysctls;
use mmfs::mm::types::Pid;
use mmfs::procfs::pid::{PID_FILES, render_pid};
use mmfs::procfs::{GLOBAL_FILES, GlobalFile, pid_without_clock, render_global, without_clock};

/// Parse `/proc/meminfo` into (key, kB) pairs; an error names the first
/// malformed line. Every line is `Key:` padded value and an optional ` kB`.
pub fn parse_meminfo(text: &str) -> Result<Vec<(String, u64)>, String> {
    complete_lines("meminfo", text)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let (key, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("meminfo: no ':' in {line:?}"))?;
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("meminfo: bad key in {line:?}"));
        }
        let rest = rest.trim_start();
        let number = rest.strip_suffix(" kB").unwrap_or(rest);
        let value = number
            .parse::<u64>()
            .map_err(|_| format!("meminfo: bad value in {line:?}"))?;
        out.push((key.to_string(), value));
    }
    if out.is_empty() {
        return Err("meminfo is empty".into());
    }
    Ok(out)
}

/// A meminfo value by key.
pub fn meminfo_value(fields: &[(String, u64)], key: &str) -> Result<u64, String> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("meminfo has no {key}"))
}

/// Free pages from buddyinfo text: Σ count × 2^order, after checking that
/// every line is `Node N, zone NAME` and 11 counts.
pub fn buddyinfo_free_pages(text: &str) -> Result<u64, String> {
    complete_lines("buddyinfo", text)?;
    let mut free = 0u64;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() != 4 + 11 || words[0] != "Node" || words[2] != "zone" {
            return Err(format!("buddyinfo: malformed line {line:?}"));
        }
        for (order, n) in words[4..].iter().enumerate() {
            let n: u64 = n
                .parse()
                .map_err(|_| format!("buddyinfo: bad count {n:?} in {line:?}"))?;
            free = free
                .checked_add(n << order)
                .ok_or("buddyinfo: free pages overflow")?;
        }
    }
    Ok(free)
}

/// One row of `/proc/swaps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapRow {
    /// Filename column.
    pub path: String,
    /// Size in kB.
    pub size_kb: u64,
    /// Used in kB.
    pub used_kb: u64,
    /// Priority.
    pub prio: i64,
}

/// Parse `/proc/swaps`: the header line, then one row per active area.
pub fn parse_swaps(text: &str) -> Result<Vec<SwapRow>, String> {
    complete_lines("swaps", text)?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("swaps: no header")?;
    if !header.starts_with("Filename") {
        return Err(format!("swaps: bad header {header:?}"));
    }
    let mut rows = Vec::new();
    for line in lines {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() != 5 || (w[1] != "partition" && w[1] != "file") {
            return Err(format!("swaps: malformed row {line:?}"));
        }
        let num = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| format!("swaps: bad number {s:?} in {line:?}"))
        };
        let (size, used, prio) = (num(w[2])?, num(w[3])?, num(w[4])?);
        if size < 0 || used < 0 || used > size {
            return Err(format!("swaps: used exceeds size in {line:?}"));
        }
        rows.push(SwapRow {
            path: w[0].to_string(),
            size_kb: size as u64,
            used_kb: used as u64,
            prio,
        });
    }
    Ok(rows)
}

/// `name value` lines (vmstat) with a numeric value.
pub fn check_vmstat(text: &str) -> Result<(), String> {
    complete_lines("vmstat", text)?;
    for line in text.lines() {
        let mut w = line.split(' ');
        let (Some(name), Some(value), None) = (w.next(), w.next(), w.next()) else {
            return Err(format!("vmstat: malformed line {line:?}"));
        };
        if name.is_empty() || value.parse::<i64>().is_err() {
            return Err(format!("vmstat: malformed line {line:?}"));
        }
    }
    Ok(())
}

/// Non-empty text made of whole lines: it ends with a newline.
pub fn complete_lines(what: &str, text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if !text.ends_with('\n') {
        let tail: String = text
            .chars()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(format!("{what} does not end with a newline: ...{tail:?}"));
    }
    Ok(())
}

/// The cross-file identities of one consistent state (all texts rendered
/// from the same state): buddyinfo × 4 = MemFree, Σ swaps Used = SwapTotal
/// − SwapFree, Σ swaps Size = SwapTotal.
pub fn cross_check(buddyinfo: &str, meminfo: &str, swaps: &str) -> Result<(), String> {
    let free_pages = buddyinfo_free_pages(buddyinfo)?;
    let mi = parse_meminfo(meminfo)?;
    let mem_free = meminfo_value(&mi, "MemFree")?;
    if free_pages * 4 != mem_free {
        return Err(format!(
            "buddyinfo free {} kB != MemFree {mem_free} kB",
            free_pages * 4
        ));
    }
    let mem_total = meminfo_value(&mi, "MemTotal")?;
    if mem_free > mem_total {
        return Err(format!("MemFree {mem_free} > MemTotal {mem_total}"));
    }
    let rows = parse_swaps(swaps)?;
    let total = meminfo_value(&mi, "SwapTotal")?;
    let free = meminfo_value(&mi, "SwapFree")?;
    let size: u64 = rows.iter().map(|r| r.size_kb).sum();
    let used: u64 = rows.iter().map(|r| r.used_kb).sum();
    if size != total {
        return Err(format!("swaps Size sum {size} kB != SwapTotal {total} kB"));
    }
    if free > total || used != total - free {
        return Err(format!(
            "swaps Used sum {used} kB != SwapTotal {total} - SwapFree {free} kB"
        ));
    }
    Ok(())
}

/// File pages = Cached: meminfo's Cached + SwapCached + Buffers is
/// vmstat's nr_file_pages, the file LRUs hold no more than the cache, and
/// Dirty is part of it.
pub fn page_cache_check(meminfo: &str, vmstat: &str) -> Result<(), String> {
    let mi = parse_meminfo(meminfo)?;
    let get = |k: &str| meminfo_value(&mi, k);
    let file_pages = vmstat
        .lines()
        .find_map(|l| l.strip_prefix("nr_file_pages "))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("vmstat has no nr_file_pages")?;
    let cached = get("Cached")? + get("SwapCached")? + get("Buffers")?;
    if cached != file_pages * 4 {
        return Err(format!(
            "Cached + SwapCached + Buffers {cached} kB != nr_file_pages {file_pages} × 4 kB"
        ));
    }
    let lru = get("Active(file)")? + get("Inactive(file)")?;
    if lru > cached || get("Dirty")? > cached {
        return Err(format!(
            "file LRUs {lru} kB or Dirty exceed the cache {cached} kB"
        ));
    }
    Ok(())
}

/// meminfo's Shmem is the pages in every shmem object's index (each
/// counted once however many map it), and Cached includes them.
pub fn shmem_check(k: &Machine, meminfo: &str) -> Result<(), String> {
    use mmfs::mm::shmem::ShmemSlot;
    let mi = parse_meminfo(meminfo)?;
    let shmem = meminfo_value(&mi, "Shmem")?;
    let pages: u64 = k
        .shmem
        .iter()
        .map(|(_, o)| {
            o.pages
                .values()
                .filter(|s| matches!(s, ShmemSlot::Page(_)))
                .count() as u64
        })
        .sum();
    if shmem != pages * 4 {
        return Err(format!(
            "meminfo Shmem {shmem} kB but the shmem objects hold {pages} pages"
        ));
    }
    let cached = meminfo_value(&mi, "Cached")?;
    if shmem > cached {
        return Err(format!("Shmem {shmem} kB exceeds Cached {cached} kB"));
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Checks on a kernel's rendered state
// ---------------------------------------------------------------------

/// Errnos that mean the command was refused before it did anything.
pub fn is_validation_errno(e: i32) -> bool {
    matches!(
        e,
        libc::EINVAL | libc::ENOENT | libc::EEXIST | libc::EBUSY | libc::ESRCH | libc::EPERM
    )
}

/// True for the system files that are empty on a fresh machine: the log
/// and the disk table.
pub fn may_be_empty(file: GlobalFile) -> bool {
    matches!(file, GlobalFile::Dmesg | GlobalFile::Diskstats)
}

/// Render every file of `k` and check each is whole lines, vmstat parses,
/// the cross-file identities hold, and every process's files are sound.
pub fn check_all_files(k: &Machine) -> Result<(), String> {
    let mut texts = BTreeMap::new();
    for (name, _, file) in GLOBAL_FILES {
        let text = render_global(k, *file);
        if !may_be_empty(*file) || !text.is_empty() {
            complete_lines(name, &text)?;
        }
        texts.insert(*name, text);
    }
    check_vmstat(&texts["vmstat"])?;
    cross_check(&texts["buddyinfo"], &texts["meminfo"], &texts["swaps"])?;
    // meminfo SwapCached is the swap cache's pages.
    let swap_cached = meminfo_value(&parse_meminfo(&texts["meminfo"])?, "SwapCached")?;
    if swap_cached != k.swap.cache.len() * 4 {
        return Err(format!(
            "meminfo SwapCached {swap_cached} kB but {} pages in the swap cache",
            k.swap.cache.len()
        ));
    }
    page_cache_check(&texts["meminfo"], &texts["vmstat"])?;
    shmem_check(k, &texts["meminfo"])?;
    for name in writable_sysctls() {
        let v = k
            .sysctl_read(name)
            .map_err(|e| format!("sys/{name}: {e}"))?;
        complete_lines(name, &v)?;
    }
    for pid in k.pids() {
        for (name, _, file) in PID_FILES {
            let text = match render_pid(k, pid, *file) {
                Ok(text) => text,
                // A kernel thread has no mm: smaps_rollup is ESRCH, as on Linux.
                Err(e) if e.errno() == libc::ESRCH && k.kthreads.get(pid).is_some() => continue,
                Err(e) => return Err(format!("{pid}/{name}: {e}")),
            };
            check_pid_file(pid, name, &text)?;
        }
    }
    Ok(())
}

/// A per-process file is empty or whole lines; `cmdline` is NUL-separated,
/// `wchan` one word.
pub fn check_pid_file(pid: Pid, name: &str, text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    // wchan is a symbol name or "0", without a newline (as in Linux).
    if name == "wchan" {
        return if text.lines().count() == 1 && !text.ends_with('\n') {
            Ok(())
        } else {
            Err(format!("{pid}/wchan is not one word: {text:?}"))
        };
    }
    if name == "cmdline" {
        return if text.ends_with('\0') {
            Ok(())
        } else {
            Err(format!("{pid}/cmdline does not end with NUL: {text:?}"))
        };
    }
    complete_lines(&format!("{pid}/{name}"), text)
}

/// Every rendered file whose content a refused command must not change:
/// all system files but dmesg (the refusal is logged) and what follows the
/// clock (every command costs simulated time: `without_clock`); the
/// sysctls; every file of every process (`pid_without_clock`).
pub fn snapshot(k: &Machine) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, _, file) in GLOBAL_FILES {
        if let Some(text) = without_clock(*file, &render_global(k, *file)) {
            out.push((name.to_string(), text));
        }
    }
    for name in writable_sysctls() {
        out.push((
            format!("sys/{name}"),
            k.sysctl_read(name).unwrap_or_default(),
        ));
    }
    out.push(("pids".into(), format!("{:?}", k.pids())));
    for pid in k.pids() {
        for (name, _, file) in PID_FILES {
            let text = render_pid(k, pid, *file).map_or_else(
                |e| format!("error {e}"),
                |text| pid_without_clock(*file, &text),
            );
            out.push((format!("{pid}/{name}"), text));
        }
    }
    out
}

/// The first file whose text differs, with the first differing line.
pub fn first_difference(a: &[(String, String)], b: &[(String, String)]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("the set of files ({} → {})", a.len(), b.len()));
    }
    for ((name, x), (_, y)) in a.iter().zip(b) {
        if x != y {
            let line = x
                .lines()
                .zip(y.lines())
                .find(|(p, q)| p != q)
                .map(|(p, q)| format!("{p:?} → {q:?}"))
                .unwrap_or_else(|| "(line count)".into());
            return Some(format!("{name}: {line}"));
        }
    }
    None
}
