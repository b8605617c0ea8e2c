//! The kernel log (Linux: kernel/printk). Records carry the simulated clock.

use std::collections::VecDeque;

/// Records kept, like a bounded log_buf: the oldest are dropped first.
pub const LOG_RECORDS: usize = 8192;

/// One log record: a timestamp in nanoseconds of simulated time and the
/// text, which may hold several lines (dmesg indents the continuations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Simulated time in ns.
    pub time_ns: u64,
    /// The message, without a trailing newline.
    pub text: String,
}

/// The kernel ring buffer.
#[derive(Clone, Debug, Default)]
pub struct Dmesg {
    records: VecDeque<Record>,
}

impl Dmesg {
    /// Append a record.
    pub fn log(&mut self, time_ns: u64, text: impl Into<String>) {
        if self.records.len() == LOG_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(Record {
            time_ns,
            text: text.into(),
        });
    }

    /// Records, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.iter()
    }

    /// The text of the newest record.
    pub fn last(&self) -> Option<&str> {
        self.records.back().map(|r| r.text.as_str())
    }
}
