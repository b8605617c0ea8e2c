//! `MOUNT/tracing` through a real mount: trace_pipe read by a thread while
//! another drives the machine, a blocked reader woken by a command and a
//! killed one leaving nothing behind, poll, O_NONBLOCK, `echo > trace`,
//! set_event appends, modes, EINVAL with dmesg lines, and the tree at
//! /sys/kernel/tracing under `mmfs exec`.

mod common;

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Mount;

fn open_pipe(m: &Mount, flags: i32) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(m.path("tracing/trace_pipe"))
        .expect("open trace_pipe")
}

#[test]
fn trace_pipe_streams_to_a_reader_thread_while_the_machine_runs() {
    let m = Mount::new();
    m.write(
        "tracing/set_event",
        "exceptions:page_fault_user kmem:mm_page_alloc\n",
    )
    .unwrap();
    assert_eq!(
        m.read("tracing/set_event"),
        "exceptions:page_fault_user\nkmem:mm_page_alloc\n"
    );
    let mut pipe = open_pipe(&m, 0);
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut text = String::new();
        // Blocking reads: each returns when events arrive.
        while !text.contains("tracing_mark_write: done") {
            let n = pipe.read(&mut buf).expect("read trace_pipe");
            assert!(n > 0, "trace_pipe never ends");
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        tx.send(text).unwrap();
    });
    // The reader is blocked on an empty buffer before anything happens.
    std::thread::sleep(Duration::from_millis(300));
    let pid = m.created("spawn tracee");
    m.write(&format!("{pid}/ctl"), "mmap 2M name=b\n").unwrap();
    for _ in 0..4 {
        m.write(&format!("{pid}/ctl"), "touch b 512K\n").unwrap();
        m.write(&format!("{pid}/ctl"), "madvise b 512K dontneed\n")
            .unwrap();
    }
    m.write("tracing/trace_marker", "done\n").unwrap();
    let text = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the reader saw the marker");
    reader.join().unwrap();
    let faults = text
        .lines()
        .filter(|l| l.contains(&format!("tracee-{pid} ")) && l.contains("page_fault_user"))
        .count();
    assert_eq!(faults, 4 * 128, "{text}");
    assert!(text.contains("gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP"));
    // Consumed: the trace file holds nothing, the counts say so.
    let trace = m.read("tracing/trace");
    assert!(trace.lines().all(|l| l.starts_with('#')), "{trace}");
    assert!(trace.contains("# entries-in-buffer/entries-written: 0/"));
}

#[test]
fn a_blocked_reader_wakes_on_a_command_and_a_killed_one_goes() {
    let m = Mount::new();
    m.write("tracing/events/kmem/kmalloc/enable", "1\n")
        .unwrap();
    let mut cat = Command::new("cat")
        .arg(m.path("tracing/trace_pipe"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        cat.try_wait().unwrap().is_none(),
        "cat blocks on an empty pipe"
    );
    m.ctl("kmalloc 100 tag=x");
    let mut out = cat.stdout.take().unwrap();
    let mut buf = [0u8; 4096];
    let n = out.read(&mut buf).unwrap();
    let line = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(
        line.contains("kmalloc: call_site=0x0 ptr=")
            && line.contains("bytes_req=100 bytes_alloc=128"),
        "{line}"
    );
    // Blocked again; SIGKILL must end it although its read is in the daemon.
    std::thread::sleep(Duration::from_millis(200));
    cat.kill().unwrap();
    let start = Instant::now();
    while cat.try_wait().unwrap().is_none() {
        assert!(
            // A hang guard of minutes, as elsewhere: a busy machine is slow,
            // not hung.
            start.elapsed() < Duration::from_secs(120),
            "killed reader hangs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The daemon still answers, and serves the next reader.
    m.ctl("kmalloc 200 tag=y");
    let mut pipe = open_pipe(&m, libc::O_NONBLOCK);
    let mut chunk = [0u8; 4096];
    let n = pipe.read(&mut chunk).unwrap();
    let text = std::str::from_utf8(&chunk[..n]).unwrap();
    assert!(text.contains("bytes_req=200"), "{text}");
    // Empty now: a non-blocking read says so instead of waiting.
    let err = pipe.read(&mut chunk).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
}

#[test]
fn poll_reports_events() {
    let m = Mount::new();
    m.write("tracing/tracing_on", "1\n").unwrap();
    let pipe = open_pipe(&m, libc::O_NONBLOCK);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&pipe);
    let poll = |timeout: i32| {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, timeout) };
        (n, p.revents)
    };
    assert_eq!(poll(100), (0, 0));
    let marker = m.path("tracing/trace_marker");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::write(marker, "ping").unwrap();
    });
    let (n, revents) = poll(5000);
    writer.join().unwrap();
    assert_eq!(n, 1);
    assert!(revents & libc::POLLIN != 0);
}

#[test]
fn files_modes_clear_and_bad_input() {
    let m = Mount::new();
    let mode = |rel: &str| std::fs::metadata(m.path(rel)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("tracing/trace"), 0o640);
    assert_eq!(mode("tracing/trace_pipe"), 0o440);
    assert_eq!(mode("tracing/trace_marker"), 0o220);
    assert_eq!(mode("tracing/events/kmem/kfree/format"), 0o440);
    assert_eq!(mode("tracing/events"), 0o750);
    let real_format = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/linux-samples/trace/formats/kmem:mm_page_alloc"
    ))
    .unwrap();
    assert_eq!(
        m.read("tracing/events/kmem/mm_page_alloc/format"),
        real_format
    );
    assert_eq!(m.read("tracing/events/kmem/mm_page_alloc/id"), "653\n");
    assert_eq!(m.read("tracing/buffer_size_kb"), "7 (expanded: 1408)\n");
    assert_eq!(m.read("tracing/available_events").lines().count(), 31);
    // Appends with >>, `!` disables, > replaces.
    let append = |text: &str| {
        m.bash(&format!("echo '{text}' >> \"$M/tracing/set_event\""))
            .status
            .success()
    };
    assert!(append("kfree"));
    assert!(append("oom"));
    assert!(append("!oom:mark_victim"));
    assert_eq!(m.read("tracing/events/oom/enable"), "X\n");
    assert_eq!(m.read("tracing/events/oom/mark_victim/enable"), "0\n");
    assert_eq!(m.read("tracing/set_event").lines().count(), 6);
    m.write("tracing/events/enable", "0\n").unwrap();
    assert_eq!(m.read("tracing/set_event"), "");
    m.write("tracing/events/kmem/enable", "1\n").unwrap();
    assert_eq!(m.read("tracing/buffer_size_kb"), "1408\n");
    m.write("tracing/trace_marker", "one").unwrap();
    m.ctl("kmalloc 64 tag=t");
    let trace = m.read("tracing/trace");
    assert!(trace.contains("tracing_mark_write: one\n"), "{trace}");
    assert!(trace.starts_with("# tracer: nop\n#\n# entries-in-buffer/entries-written: "));
    // `echo > trace` clears.
    assert!(m.bash("echo > \"$M/tracing/trace\"").status.success());
    assert!(
        m.read("tracing/trace")
            .contains("entries-written: 0/0   #P:2\n")
    );
    for (file, text) in [
        ("tracing/set_event", "kmem:nonesuch\n"),
        ("tracing/events/kmem/kfree/enable", "2\n"),
        ("tracing/buffer_size_kb", "0\n"),
        ("tracing/buffer_size_kb", "65537\n"),
        ("tracing/tracing_on", "on\n"),
    ] {
        let err = m.write(file, text).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{file} {text}");
        let dmesg = m.read("dmesg");
        assert!(
            dmesg
                .lines()
                .last()
                .unwrap()
                .contains(&format!("mmfs: {file}")),
            "{dmesg}"
        );
    }
    assert_eq!(m.read("tracing/tracing_on"), "1\n");
    // Bytes that are not UTF-8: no event by that name; a marker keeps them.
    let raw = |rel: &str, bytes: &[u8]| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.path(rel))
            .unwrap();
        f.write_all(bytes)
    };
    let err = raw("tracing/set_event", b"\xff\xfe\n").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert!(
        m.read("dmesg")
            .lines()
            .last()
            .unwrap()
            .contains("set_event")
    );
    raw("tracing/trace_marker", b"bin\xffary\n").unwrap();
    assert!(
        m.read("tracing/trace")
            .contains("tracing_mark_write: bin\u{fffd}ary\n")
    );
    m.write("tracing/buffer_size_kb", "65536\n").unwrap();
    assert_eq!(m.read("tracing/buffer_total_size_kb"), "131072\n");
    // trace_marker is write-only; format files are read-only.
    let err = std::fs::read(m.path("tracing/trace_marker")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert!(m.write("tracing/events/kmem/kfree/format", "x").is_err());
}

#[test]
fn exec_sees_the_tree_at_sys_kernel_tracing() {
    let m = Mount::new();
    let (code, out) = m.exec_text(&[
        "sh",
        "-c",
        "echo 1 > /sys/kernel/tracing/events/kmem/kmalloc/enable && \
         cat /sys/kernel/tracing/set_event && \
         head -1 /sys/kernel/tracing/trace",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "kmem:kmalloc\n# tracer: nop\n");
    assert_eq!(m.read("tracing/set_event"), "kmem:kmalloc\n");
}

#[test]
fn a_trace_of_megabytes_reads_whole_through_the_window() {
    let m = Mount::new();
    m.write("tracing/buffer_size_kb", "8192\n").unwrap();
    m.write(
        "tracing/set_event",
        "exceptions:page_fault_user kmem:mm_page_alloc\n",
    )
    .unwrap();
    let pid = m.created("spawn big");
    m.write(&format!("{pid}/ctl"), "mmap 64M name=b\ntouch b 64M\n")
        .unwrap();
    // Read in odd-sized pieces, as a seq_file reader may.
    let mut file = std::fs::File::open(m.path("tracing/trace")).unwrap();
    let mut text = Vec::new();
    let mut buf = vec![0u8; 40_000];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(text).unwrap();
    assert!(text.len() > 4 << 20, "{} bytes", text.len());
    let held: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("# entries-in-buffer/entries-written: "))
        .and_then(|v| v.split('/').next()?.parse().ok())
        .unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), held);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("page_fault_user"))
            .count(),
        16384
    );
}
