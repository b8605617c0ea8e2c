//! Per-handle line assembly for the control files (`ctl`, `PID/ctl`).
//!
//! A shell's `echo` sends one write per line, `cat plan > ctl` sends the
//! whole plan in writes the FUSE kernel module cuts at its `max_write`, so a
//! line may arrive split over two writes. [`LineBuffer`] turns that byte
//! stream back into lines: complete lines run in order as they arrive, a
//! partial line waits for its rest (or for close), and the memory it holds is
//! bounded by [`MAX_LINE`] bytes.

use crate::ctl::MAX_LINE;

/// The bytes of a control file handle that have not formed a line yet.
#[derive(Debug, Default)]
pub struct LineBuffer {
    /// The start of a line whose newline has not arrived; never longer than
    /// [`MAX_LINE`] bytes.
    partial: Vec<u8>,
    /// True after a partial line grew past the limit: the rest of that line
    /// is thrown away up to its newline, so its tail is not taken for a new
    /// command.
    discarding: bool,
}

impl LineBuffer {
    /// An empty buffer.
    pub fn new() -> LineBuffer {
        LineBuffer::default()
    }

    /// True when a partial line is waiting for its newline.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Take the bytes of one `write()` and run every line it completes, in
    /// order, through `run` (the bytes without the newline).
    ///
    /// The first line `run` rejects fails the whole write with its errno:
    /// lines before it stay done, the rest of this write (and any partial
    /// line) is dropped, as the writer sees the write fail. A partial line
    /// that grows past [`MAX_LINE`] bytes is handed to `run` cut at
    /// `MAX_LINE + 1` bytes (so the caller can log and refuse it) and fails
    /// the write with EINVAL; the rest of that line is skipped.
    pub fn feed<F>(&mut self, data: &[u8], mut run: F) -> Result<(), i32>
    where
        F: FnMut(&[u8]) -> Result<(), i32>,
    {
        let mut rest = data;
        if self.discarding {
            match rest.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    self.discarding = false;
                    rest = &rest[newline + 1..];
                }
                None => return Ok(()),
            }
        }
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(newline);
            rest = &tail[1..];
            let result = if self.partial.is_empty() {
                run(head)
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                run(&line)
            };
            if let Err(errno) = result {
                self.partial.clear();
                return Err(errno);
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        let total = self.partial.len().saturating_add(rest.len());
        if total > MAX_LINE {
            // Keep memory bounded: refuse the line now instead of growing.
            let room = (MAX_LINE + 1).saturating_sub(self.partial.len());
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..room.min(rest.len())]);
            self.discarding = true;
            return match run(&line) {
                Err(errno) => Err(errno),
                Ok(()) => Err(libc::EINVAL),
            };
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// The writer closed the file: run the partial line, if any, as if its
    /// newline had come.
    pub fn finish<F>(&mut self, mut run: F) -> Result<(), i32>
    where
        F: FnMut(&[u8]) -> Result<(), i32>,
    {
        self.discarding = false;
        if self.partial.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.partial);
        run(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `writes` one by one, recording every line run; lines equal to
    /// "bad" fail with EINVAL.
    fn drive(writes: &[&[u8]]) -> (Vec<String>, Vec<Result<(), i32>>, LineBuffer) {
        let mut buf = LineBuffer::new();
        let mut lines = Vec::new();
        let mut results = Vec::new();
        for w in writes {
            let r = buf.feed(w, |line| {
                lines.push(String::from_utf8_lossy(line).into_owned());
                if line == b"bad" {
                    Err(libc::EINVAL)
                } else {
                    Ok(())
                }
            });
            results.push(r);
        }
        (lines, results, buf)
    }

    #[test]
    fn one_write_per_line() {
        let (lines, results, buf) = drive(&[b"a 1\n", b"b 2\n"]);
        assert_eq!(lines, ["a 1", "b 2"]);
        assert_eq!(results, [Ok(()), Ok(())]);
        assert!(!buf.has_partial());
    }

    #[test]
    fn line_split_over_two_writes() {
        let (lines, results, buf) = drive(&[b"alloc_pa", b"ges 3\nti", b"ck\n"]);
        assert_eq!(lines, ["alloc_pages 3", "tick"]);
        assert_eq!(results, [Ok(()), Ok(()), Ok(())]);
        assert!(!buf.has_partial());
    }

    #[test]
    fn first_failure_fails_the_write_and_drops_the_rest() {
        let (lines, results, buf) = drive(&[b"one\nbad\nthree\npart", b"four\n"]);
        // "three" and the partial "part" are dropped with the failed write.
        assert_eq!(lines, ["one", "bad", "four"]);
        assert_eq!(results, [Err(libc::EINVAL), Ok(())]);
        assert!(!buf.has_partial());
    }

    #[test]
    fn partial_line_runs_at_finish() {
        let (lines, _, mut buf) = drive(&[b"x\ntail"]);
        assert_eq!(lines, ["x"]);
        assert!(buf.has_partial());
        let mut ran = Vec::new();
        buf.finish(|l| {
            ran.push(l.to_vec());
            Err(libc::ENOMEM)
        })
        .unwrap_err();
        assert_eq!(ran, [b"tail".to_vec()]);
        // A second close (dup'ed descriptor) has nothing left to run.
        assert_eq!(buf.finish(|_| Err(libc::EIO)), Ok(()));
    }

    #[test]
    fn overlong_partial_line_is_refused_and_skipped() {
        let big = vec![b'x'; 3000];
        let (lines, results, buf) = drive(&[&big, &big, b"xxx\nok\n"]);
        assert_eq!(results[0], Ok(()));
        assert_eq!(results[1], Err(libc::EINVAL));
        // The refused line was handed over cut just past the limit.
        assert_eq!(lines[0].len(), MAX_LINE + 1);
        // The tail of the long line is skipped; the next line runs.
        assert_eq!(lines[1..], ["ok"]);
        assert_eq!(results[2], Ok(()));
        assert!(!buf.has_partial());
    }

    #[test]
    fn exactly_max_line_is_accepted() {
        let line = vec![b'y'; MAX_LINE];
        let (lines, results, _) = drive(&[&line, b"\n"]);
        assert_eq!(results, [Ok(()), Ok(())]);
        assert_eq!(lines[0].len(), MAX_LINE);
    }

    #[test]
    fn blank_lines_reach_the_runner() {
        // Comments and blank lines are the kernel's to skip; the buffer
        // passes them on unchanged.
        let (lines, _, _) = drive(&[b"\n# c\n\n"]);
        assert_eq!(lines, ["", "# c", ""]);
    }
}
