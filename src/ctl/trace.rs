//! Writes to the tracefs files (`MOUNT/tracing/`): parse the text, apply
//! it to the kernel's trace state, and leave a dmesg line for input the
//! kernel refuses (EINVAL), as every other control file does.

use super::Machine;
use crate::mm::error::{MmError, MmResult};
use crate::mm::trace::{EVENTS, Event, MAX_BUFFER_KB, enableable_events, systems};
use crate::procfs::trace::{TraceFile, match_events};

/// `0` or `1` (with an optional newline), as `enable` and `tracing_on`
/// take them.
fn parse_bool(file: &str, text: &str) -> MmResult<bool> {
    match text.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(MmError::Invalid(format!(
            "{file}: '{other}' is neither 0 nor 1"
        ))),
    }
}

fn file_name(file: TraceFile) -> String {
    match file {
        TraceFile::EventsEnable => "events/enable".into(),
        TraceFile::SystemEnable(s) => {
            format!("events/{}/enable", systems().get(s).copied().unwrap_or("?"))
        }
        TraceFile::EventEnable(e) => {
            let i = e.info();
            format!("events/{}/{}/enable", i.system, i.name)
        }
        other => crate::procfs::trace::TOP_FILES
            .iter()
            .find(|(_, _, f)| *f == other)
            .map_or("?", |(n, _, _)| n)
            .into(),
    }
}

impl Machine {
    /// A write to a file of `tracing/`. EINVAL for unknown events, sizes
    /// outside 1..=65536 KiB, `tracing_on` or `enable` other than 0/1;
    /// each refusal leaves one dmesg line.
    pub fn write_trace(&mut self, file: TraceFile, text: &str) -> MmResult<()> {
        let result = self.apply_trace_write(file, text);
        if let Err(err) = &result {
            let quoted: String = text.trim().chars().take(200).collect();
            self.kernel.printk(format!(
                "mmfs: tracing/{}: \"{quoted}\": {err}",
                file_name(file)
            ));
        }
        result
    }

    fn apply_trace_write(&mut self, file: TraceFile, text: &str) -> MmResult<()> {
        let trace = &mut self.kernel.trace;
        match file {
            TraceFile::SetEvent => {
                // Token by token, as ftrace_event_write: those before a
                // bad one stay applied.
                for token in text.split_whitespace() {
                    let (on, name) = match token.strip_prefix('!') {
                        Some(name) => (false, name),
                        None => (true, token),
                    };
                    let events = match_events(name);
                    if events.is_empty() {
                        return Err(MmError::Invalid(format!(
                            "set_event: no event '{name}' (see available_events)"
                        )));
                    }
                    for e in events {
                        trace.set_enabled(e, on);
                    }
                }
                Ok(())
            }
            TraceFile::EventEnable(e) => {
                let on = parse_bool("enable", text)?;
                trace.set_enabled(e, on);
                Ok(())
            }
            TraceFile::SystemEnable(_) | TraceFile::EventsEnable => {
                let on = parse_bool("enable", text)?;
                let system = match file {
                    TraceFile::SystemEnable(s) => systems().get(s).copied(),
                    _ => None,
                };
                for info in enableable_events() {
                    if system.is_none_or(|s| s == info.system) {
                        trace.set_enabled(info.event, on);
                    }
                }
                Ok(())
            }
            TraceFile::TracingOn => {
                let on = parse_bool("tracing_on", text)?;
                trace.set_tracing_on(on);
                Ok(())
            }
            TraceFile::BufferSizeKb => {
                let t = text.trim();
                let kb: u64 = t.parse().map_err(|_| {
                    MmError::Invalid(format!("buffer_size_kb: '{t}' is not a number of KiB"))
                })?;
                if !(1..=MAX_BUFFER_KB).contains(&kb) {
                    return Err(MmError::Invalid(format!(
                        "buffer_size_kb: {kb} out of range 1..{MAX_BUFFER_KB} (KiB per CPU)"
                    )));
                }
                trace.set_buffer_kb(kb);
                Ok(())
            }
            // Writing `trace` does nothing; opening it with O_TRUNC clears.
            TraceFile::Trace => Ok(()),
            TraceFile::TraceMarker => {
                self.kernel.trace_marker(text);
                Ok(())
            }
            _ => Err(MmError::Permission(format!(
                "tracing/{}: read-only",
                file_name(file)
            ))),
        }
    }

    /// Opening with O_TRUNC: `trace` is cleared, `set_event` disables
    /// every event; other files ignore it.
    pub fn truncate_trace(&mut self, file: TraceFile) {
        match file {
            TraceFile::Trace => self.kernel.trace.clear(),
            TraceFile::SetEvent => self.kernel.trace.disable_all(),
            _ => {}
        }
    }

    /// trace_pipe's consuming read: render and remove the oldest entries,
    /// at least one when any is held, until about `bytes` of text.
    pub fn trace_pipe_take(&mut self, bytes: usize) -> String {
        let mut out = String::with_capacity(bytes.min(1 << 20) + 512);
        while out.len() < bytes {
            let Some((e, text)) = self.kernel.trace.pop() else {
                break;
            };
            crate::procfs::trace::render_entry(
                &self.kernel,
                &e,
                text.as_deref().unwrap_or(""),
                &mut out,
            );
        }
        out
    }
}

/// Every event's identity, for the tree (system index, event).
pub fn tree_events() -> Vec<(usize, Event)> {
    let systems = systems();
    EVENTS
        .iter()
        .filter(|i| i.event.enableable())
        .filter_map(|i| {
            systems
                .iter()
                .position(|s| *s == i.system)
                .map(|s| (s, i.event))
        })
        .collect()
}
