//! Tracing on a Kernel (no FUSE): every event line matches a regex derived
//! from the print fmt of the real 6.18 `format` file (and the same regexes
//! match the real capture), a swap-pressure and OOM scenario traces
//! kswapd, lru_shrink and mark_victim in order with non-decreasing
//! timestamps, and the same commands on a fresh boot give the same bytes.

use std::collections::BTreeMap;

use mmfs::ctl::{Machine, Scope};
use mmfs::mm::MachineConfig;
use mmfs::mm::trace::{EVENTS, Event};
use mmfs::mm::types::{Arch, Pid};
use mmfs::procfs::trace::{TraceFile, render};
use regex::Regex;

const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/reference/linux-samples/trace"
);

fn boot(mem: u64) -> Machine {
    Machine::boot(MachineConfig {
        arch: Arch::X86_64,
        mem_bytes: mem,
    })
    .unwrap()
}

fn sys(k: &mut Machine, line: &str) {
    k.execute_line(Scope::System, line)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
}

fn run(k: &mut Machine, pid: Pid, line: &str) -> Result<(), i32> {
    k.execute_line(Scope::Process(pid), line)
        .map(|_| ())
        .map_err(|e| e.errno())
}

fn spawn(k: &mut Machine, name: &str) -> Pid {
    sys(k, &format!("spawn {name}"));
    Pid(k.ns_last_pid)
}

fn trace(k: &Machine) -> String {
    render(k, TraceFile::Trace)
}

/// The quoted format string of a `print fmt:` line.
fn print_fmt(format: &str) -> String {
    let line = format
        .lines()
        .find_map(|l| l.strip_prefix("print fmt: \""))
        .expect("print fmt");
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().unwrap()),
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

/// A regex for the FIELDS of an event, from its print fmt: integers for
/// `%d %u %ld %lu %zu %hd %lld`, hex digits for `%lx`, a hashed pointer
/// (16 hex digits) for `%p`, a word for `%s` and for `%pS`/`%ps` (a symbol
/// or a hex address), literal text for the rest.
fn fmt_regex(fmt: &str) -> String {
    let mut re = String::new();
    let b = fmt.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            let c = fmt[i..].chars().next().unwrap();
            re.push_str(&regex::escape(&c.to_string()));
            i += c.len_utf8();
            continue;
        }
        let mut j = i + 1;
        let mut width = String::new();
        while j < b.len() && (b[j] == b'-' || b[j].is_ascii_digit()) {
            width.push(b[j] as char);
            j += 1;
        }
        let mut conv = String::new();
        while j < b.len() && matches!(b[j], b'l' | b'h' | b'z') {
            conv.push(b[j] as char);
            j += 1;
        }
        conv.push(b[j] as char);
        j += 1;
        if conv == "p" && j < b.len() && matches!(b[j], b'S' | b's') {
            conv.push(b[j] as char);
            j += 1;
        }
        let piece = match conv.trim_start_matches(['l', 'h', 'z']) {
            "d" | "i" => "-?[0-9]+",
            "u" => "[0-9]+",
            "x" => "[0-9a-f]+",
            "p" => "[0-9a-f]{16}",
            "pS" | "ps" => "\\S+",
            "s" if width.starts_with('-') => "\\S+ *",
            "s" => "\\S+",
            other => panic!("conversion %{other} in {fmt}"),
        };
        re.push_str(piece);
        i = j;
    }
    re
}

/// Event name → full-line regex, for every event of the reference formats.
fn line_regexes() -> BTreeMap<String, Regex> {
    let mut out = BTreeMap::new();
    let prefix = r"^ *\S+-[0-9]+ +\[[0-9]{3}\] [.dDbBNnpZzHhs0-9]{5} +[0-9]+\.[0-9]{6}: ";
    for info in EVENTS.iter() {
        let path = format!("{REFERENCE}/formats/{}:{}", info.system, info.name);
        let format = std::fs::read_to_string(&path).unwrap();
        // The served format is the real one, byte for byte.
        assert_eq!(format, info.format, "{path}");
        let body = if info.event == Event::Print {
            // ftrace:print shows as the marker's function: its text.
            "tracing_mark_write: .*".to_string()
        } else {
            format!("{}: {}", info.name, fmt_regex(&print_fmt(&format)))
        };
        out.insert(
            info.name.to_string(),
            Regex::new(&format!("{prefix}{body}$")).unwrap(),
        );
    }
    out
}

/// The event name of a trace line.
fn event_of(line: &str) -> &str {
    let rest = line.split_once("]").unwrap().1;
    let after_ts = rest.split_once(": ").unwrap().1;
    let name = after_ts.split_once(':').unwrap().0;
    if name == "tracing_mark_write" {
        "print"
    } else {
        name
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn the_regexes_match_the_real_capture() {
    let re = line_regexes();
    let real = std::fs::read_to_string(format!("{REFERENCE}/trace")).unwrap();
    let mut seen = 0;
    for line in lines(&real) {
        let name = event_of(line);
        let r = &re[name];
        assert!(r.is_match(line), "{name}: {line}");
        seen += 1;
    }
    assert!(seen > 60);
}

/// A session that fires every event: processes, faults of each kind,
/// slab and kmalloc objects, files in and out of the page cache, swap,
/// reclaim and an OOM kill, a marker, fallbacks to other migrate types
/// and compaction.
fn busy_session(k: &mut Machine) {
    sys(k, "mkswap /dev/sdb1 32M");
    sys(k, "swapon /dev/sdb1");
    let a = spawn(k, "worker");
    run(k, a, "mmap 8M name=buf").unwrap();
    run(k, a, "touch buf 64K read").unwrap();
    run(k, a, "touch buf 8M").unwrap();
    sys(k, &format!("fork {a}"));
    run(k, a, "touch buf 64K").unwrap();
    sys(k, "kmalloc 100 count=3 tag=k");
    sys(k, "kmalloc 20000 tag=big");
    sys(k, "kfree tag=k");
    sys(k, "kfree tag=big");
    sys(k, "kmem_cache_create widget 200");
    sys(k, "kmem_cache_alloc widget count=5 tag=w");
    sys(k, "kmem_cache_free tag=w");
    run(k, a, "write /f 0 256K").unwrap();
    // fsync waits on pages under writeback: folio_wait_writeback.
    run(k, a, "fsync /f").unwrap();
    run(k, a, "read /f 0 256K").unwrap();
    run(k, a, "mmap 256K file=/f name=map").unwrap();
    run(k, a, "touch map 256K read").unwrap();
    k.write_oom_score_adj(a, "100").unwrap();
    k.kernel.trace_marker("hello from the test\n");
    let hog = spawn(k, "hog");
    // Two mappings, each below what overcommit refuses at once.
    run(k, hog, "mmap 80M name=h").unwrap();
    run(k, hog, "touch h 80M").unwrap();
    run(k, hog, "mmap 80M name=i").unwrap();
    // Swap fills, then the OOM killer takes the hog.
    assert_eq!(run(k, hog, "touch i 80M"), Err(libc::ENOMEM));
    sys(k, "tick 10");
    // Compaction: begin and end per zone.
    k.sysctl_write("vm/compact_memory", "1").unwrap();
}

fn traced_machine() -> Machine {
    let mut k = boot(128 << 20);
    k.write_trace(TraceFile::BufferSizeKb, "65536").unwrap();
    k.write_trace(TraceFile::EventsEnable, "1\n").unwrap();
    k
}

#[test]
fn every_line_matches_its_format_and_every_event_fires() {
    let re = line_regexes();
    let mut k = traced_machine();
    busy_session(&mut k);
    let text = trace(&k);
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for line in lines(&text) {
        let name = event_of(line);
        let r = re
            .get(name)
            .unwrap_or_else(|| panic!("unknown event: {line}"));
        assert!(r.is_match(line), "{name}: {line}");
        *counts.entry(name).or_default() += 1;
    }
    let missing: Vec<&str> = EVENTS
        .iter()
        .map(|i| i.name)
        .filter(|n| !counts.contains_key(n))
        .collect();
    assert!(missing.is_empty(), "never fired: {missing:?}\n{counts:?}");
    let (held, written) = k.kernel.trace.counts();
    assert_eq!(held, written, "a 64M buffer holds the whole session");
    assert!(text.contains(&format!(
        "# entries-in-buffer/entries-written: {held}/{written}   #P:2\n"
    )));
}

#[test]
fn swap_pressure_and_oom_trace_in_order() {
    let mut k = boot(128 << 20);
    k.write_trace(TraceFile::BufferSizeKb, "65536").unwrap();
    k.write_trace(TraceFile::SetEvent, "vmscan oom exceptions:page_fault_user")
        .unwrap();
    sys(&mut k, "mkswap /dev/sdb1 32M");
    sys(&mut k, "swapon /dev/sdb1");
    let hog = spawn(&mut k, "hog");
    run(&mut k, hog, "mmap 100M name=h").unwrap();
    run(&mut k, hog, "mmap 100M name=i").unwrap();
    run(&mut k, hog, "touch h 100M").unwrap();
    assert_eq!(run(&mut k, hog, "touch i 100M"), Err(libc::ENOMEM));
    let text = trace(&k);
    let all = lines(&text);
    let first = |name: &str| {
        all.iter()
            .position(|l| event_of(l) == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let wake = first("mm_vmscan_kswapd_wake");
    let shrink = first("mm_vmscan_lru_shrink_inactive");
    let victim = first("mark_victim");
    assert!(wake < shrink && shrink < victim, "{wake} {shrink} {victim}");
    assert!(first("mm_vmscan_write_folio") < victim);
    assert!(
        all[wake].trim_start().starts_with("kswapd0-5 "),
        "{}",
        all[wake]
    );
    assert!(
        all[victim].contains(&format!("mark_victim: pid={hog} comm=hog total-vm=")),
        "{}",
        all[victim]
    );
    // The reaper's events follow, by oom_reaper.
    let reap = first("start_task_reaping");
    assert!(reap > victim && all[reap].trim_start().starts_with("oom_reaper-3 "));
    assert!(first("finish_task_reaping") > reap);
    let ts: Vec<f64> = all
        .iter()
        .map(|l| {
            let rest = l.split_once("] ").unwrap().1;
            rest[6..]
                .trim_start()
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "timestamps go back");
    k.check_invariants().unwrap();
}

#[test]
fn same_commands_same_bytes() {
    let run_once = || {
        let mut k = traced_machine();
        busy_session(&mut k);
        trace(&k)
    };
    let (a, b) = (run_once(), run_once());
    assert!(a.len() > 100_000);
    assert!(a == b, "traces differ between two fresh boots");
}

#[test]
fn trace_pipe_consumes_in_order_and_clear_resets_the_counts() {
    let mut k = traced_machine();
    let p = spawn(&mut k, "p");
    run(&mut k, p, "mmap 1M name=b").unwrap();
    run(&mut k, p, "touch b 1M").unwrap();
    let whole = lines(&trace(&k)).join("\n") + "\n";
    let mut piped = String::new();
    loop {
        let chunk = k.trace_pipe_take(4096);
        if chunk.is_empty() {
            break;
        }
        assert!(chunk.ends_with('\n'));
        piped.push_str(&chunk);
    }
    assert_eq!(piped, whole);
    let (held, written) = k.kernel.trace.counts();
    assert_eq!(held, 0);
    assert!(written > 256);
    k.truncate_trace(TraceFile::Trace);
    assert_eq!(k.kernel.trace.counts(), (0, 0));
}

#[test]
fn trace_windows_join_into_the_whole_text() {
    let mut k = traced_machine();
    let p = spawn(&mut k, "p");
    run(&mut k, p, "mmap 4M name=b").unwrap();
    run(&mut k, p, "touch b 4M").unwrap();
    let whole = trace(&k);
    assert!(whole.len() > 300_000);
    let mut joined = String::new();
    let mut from = Some(0);
    let mut windows = 0;
    while let Some(f) = from {
        let before = joined.len();
        from = mmfs::procfs::trace::render_trace_window(&k, f, 64 << 10, &mut joined);
        assert!(joined.len() - before < (64 << 10) + 512);
        windows += 1;
    }
    assert_eq!(joined, whole);
    assert!(windows > 4);
}

#[test]
fn tracing_off_and_disabled_events_record_nothing() {
    let mut k = boot(128 << 20);
    let p = spawn(&mut k, "p");
    run(&mut k, p, "mmap 1M name=b").unwrap();
    run(&mut k, p, "touch b 1M").unwrap();
    assert_eq!(k.kernel.trace.counts(), (0, 0));
    k.write_trace(TraceFile::SetEvent, "kmem:mm_page_alloc")
        .unwrap();
    k.write_trace(TraceFile::TracingOn, "0").unwrap();
    run(&mut k, p, "mmap 1M name=c").unwrap();
    run(&mut k, p, "touch c 1M").unwrap();
    assert_eq!(k.kernel.trace.counts(), (0, 0));
    k.write_trace(TraceFile::TracingOn, "1").unwrap();
    run(&mut k, p, "mmap 1M name=d").unwrap();
    run(&mut k, p, "touch d 1M").unwrap();
    let text = trace(&k);
    assert!(lines(&text).iter().all(|l| event_of(l) == "mm_page_alloc"));
    assert!(lines(&text).len() >= 256);
}

#[test]
fn bad_writes_are_einval_with_a_dmesg_line() {
    let mut k = boot(128 << 20);
    let cases = [
        (TraceFile::SetEvent, "kmem:nope"),
        (TraceFile::SetEvent, "nosuch"),
        (TraceFile::EventEnable(Event::Kfree), "2"),
        (TraceFile::EventsEnable, "yes"),
        (TraceFile::BufferSizeKb, "0"),
        (TraceFile::BufferSizeKb, "65537"),
        (TraceFile::BufferSizeKb, "lots"),
        (TraceFile::TracingOn, "2"),
        (TraceFile::TracingOn, ""),
    ];
    for (file, text) in cases {
        let before = k.kernel.dmesg.records().count();
        let err = k.write_trace(file, text).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL, "{file:?} {text:?}");
        assert_eq!(
            k.kernel.dmesg.records().count(),
            before + 1,
            "{file:?} {text:?}"
        );
        assert!(k.kernel.dmesg.last().unwrap().contains("mmfs: tracing/"));
    }
    // Nothing was enabled or resized by the refusals.
    assert_eq!(render(&k, TraceFile::SetEvent), "");
    assert_eq!(render(&k, TraceFile::BufferSizeKb), "7 (expanded: 1408)\n");
    // `!name` disables; tokens before a bad one stay applied.
    k.write_trace(TraceFile::SetEvent, "kfree kmalloc").unwrap();
    k.write_trace(TraceFile::SetEvent, "!kfree oom:mark_victim bogus")
        .unwrap_err();
    assert_eq!(
        render(&k, TraceFile::SetEvent),
        "oom:mark_victim\nkmem:kmalloc\n"
    );
    assert_eq!(render(&k, TraceFile::EventsEnable), "X\n");
    assert_eq!(render(&k, TraceFile::EventEnable(Event::Kmalloc)), "1\n");
    k.truncate_trace(TraceFile::SetEvent);
    assert_eq!(render(&k, TraceFile::EventsEnable), "0\n");
}

/// Writeback events as this machine's 6.18 kernel printed them (ext4 on
/// vda, `dd conv=fsync` of two pages):
///   dd-6316 [001] d..1. 18301.576660: writeback_dirty_folio: bdi 254:0: ino=2162689 index=0
///   dd-6316 [001] ..... 18301.576791: folio_wait_writeback: bdi 254:0: ino=2162689 index=0
/// — dirtying under the i_pages lock, waiting in process context; mmfs's
/// disk is sda, bdi 8:0.
#[test]
fn writeback_events_read_as_the_real_ones() {
    let mut k = boot(128 << 20);
    k.write_trace(TraceFile::SetEvent, "writeback:*\n").unwrap();
    let a = spawn(&mut k, "dd");
    run(&mut k, a, "write /w 0 8K").unwrap();
    run(&mut k, a, "fsync /w").unwrap();
    let text = trace(&k);
    let lines = lines(&text);
    let ino = lines[0]
        .split("ino=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let dirty: Vec<&&str> = lines
        .iter()
        .filter(|l| event_of(l) == "writeback_dirty_folio" && l.contains(&format!("ino={ino} ")))
        .collect();
    // The file's two pages; the journal's metadata pages of the block
    // device's inode follow (the real capture has those too).
    assert_eq!(dirty.len(), 2, "{text}");
    for (index, line) in dirty.iter().enumerate() {
        assert!(line.contains(" d..1. "), "{line}");
        assert!(
            line.ends_with(&format!(
                "writeback_dirty_folio: bdi 8:0: ino={ino} index={index}"
            )),
            "{line}"
        );
    }
    let wait = lines
        .iter()
        .find(|l| event_of(l) == "folio_wait_writeback")
        .unwrap_or_else(|| panic!("fsync waited on nothing:\n{text}"));
    assert!(wait.contains(" ..... "), "{wait}");
    assert!(
        wait.ends_with(&format!("folio_wait_writeback: bdi 8:0: ino={ino} index=0")),
        "{wait}"
    );
}
