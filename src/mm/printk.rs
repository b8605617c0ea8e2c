//! The kernel log (Linux: kernel/printk). Records carry the simulated clock.

use std::collections::VecDeque;

/// Records kept, like a bounded log_buf: the oldest are dropped first.
pub const LOG_RECORDS: usize = 8192;
/// Bytes of text kept (like booting with `log_buf_len=1M`).
pub const LOG_BUF_BYTES: usize = 1 << 20;
/// Longest record kept whole; longer ones are cut (Linux cuts lines at
/// 1024 bytes; a record here may hold a multi-line table).
pub const MAX_RECORD_BYTES: usize = 64 << 10;

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
    /// Σ text bytes of the records.
    bytes: usize,
}

impl Dmesg {
    /// Append a record.
    pub fn log(&mut self, time_ns: u64, text: impl Into<String>) {
        let mut text = text.into();
        if text.len() > MAX_RECORD_BYTES {
            let mut end = MAX_RECORD_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("\n[record truncated]");
        }
        self.bytes += text.len();
        self.records.push_back(Record { time_ns, text });
        while self.records.len() > LOG_RECORDS || self.bytes > LOG_BUF_BYTES {
            let Some(old) = self.records.pop_front() else {
                break;
            };
            self.bytes -= old.text.len();
        }
    }

    /// Σ bytes of the kept records' text.
    pub fn bytes(&self) -> usize {
        self.bytes
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

/// `struct ratelimit_state`: at most `burst` events per `interval_ns` of
/// simulated time (`__ratelimit`).
#[derive(Clone, Debug)]
pub struct RateLimit {
    /// Window length.
    pub interval_ns: u64,
    /// Events allowed per window.
    pub burst: u32,
    begin: Option<u64>,
    printed: u32,
    missed: u32,
}

impl RateLimit {
    /// A limit of `burst` per `interval_ns`.
    pub fn new(interval_ns: u64, burst: u32) -> RateLimit {
        RateLimit {
            interval_ns,
            burst,
            begin: None,
            printed: 0,
            missed: 0,
        }
    }

    /// May the event at `now` be printed? The second value is the number
    /// of events suppressed in the window that just ended (to report).
    pub fn allow(&mut self, now: u64) -> (bool, u32) {
        let mut suppressed = 0;
        let begin = *self.begin.get_or_insert(now);
        if now.saturating_sub(begin) >= self.interval_ns {
            suppressed = std::mem::take(&mut self.missed);
            self.begin = Some(now);
            self.printed = 0;
        }
        if self.printed < self.burst {
            self.printed += 1;
            (true, suppressed)
        } else {
            self.missed += 1;
            (false, suppressed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_is_bounded_in_bytes_and_records() {
        let mut d = Dmesg::default();
        for i in 0..100_000u64 {
            d.log(i, "x".repeat(100));
        }
        assert!(d.bytes() <= LOG_BUF_BYTES);
        assert!(d.records().count() <= LOG_RECORDS);
        d.log(0, "y".repeat(10 << 20));
        assert!(d.bytes() <= LOG_BUF_BYTES);
        assert!(d.last().unwrap().ends_with("[record truncated]"));
    }

    #[test]
    fn ratelimit_allows_a_burst_per_interval() {
        let mut rs = RateLimit::new(5_000, 10);
        let allowed = (0..25).filter(|_| rs.allow(100).0).count();
        assert_eq!(allowed, 10);
        assert_eq!(rs.allow(5_100), (true, 15));
    }
}
