//! A window of a text file's lines, read as a stream: lines before the window are skipped
//! without being held, a long line keeps only its first bytes, and the read stops as soon
//! as the window is full, a NUL byte shows the file is binary, or `max_scan_bytes` were
//! read: a 1 GB file (or one without line endings) costs no more memory than its window
//! and no more time than the scan cap.

use std::io::{self, BufRead};

use ports::{LineSlice, LineWindow, TextLine};

/// Bytes at the start of a file always checked for NUL (as git and grep decide "binary").
const HEAD_BYTES: u64 = 8 * 1024;

/// The line being read.
#[derive(Default)]
struct Current {
    kept: Vec<u8>,
    cut: bool,
    /// Any byte of it seen (a last line without a line ending still counts).
    started: bool,
}

/// Reads the lines `window` asks for from `reader`.
///
/// # Errors
/// The reader's I/O errors.
pub(crate) fn read_window(mut reader: impl BufRead, window: &LineWindow) -> io::Result<LineSlice> {
    let first = window.offset.max(1);
    let limit = window.limit.max(1);
    let mut out = LineSlice::default();
    let mut line_no: u64 = 1;
    let mut current = Current::default();
    let mut taken = 0usize;
    let mut scanned: u64 = 0;
    loop {
        let budget = window.max_scan_bytes.saturating_sub(scanned);
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        if budget == 0 {
            return Ok(scan_capped(out, current, line_no >= first));
        }
        let buf = &buf[..buf.len().min(usize::try_from(budget).unwrap_or(usize::MAX))];
        let head = usize::try_from(HEAD_BYTES.saturating_sub(scanned)).unwrap_or(usize::MAX);
        if buf[..buf.len().min(head)].contains(&0) {
            out.binary = true;
            return Ok(out);
        }
        let mut at = 0;
        while at < buf.len() {
            let rest = &buf[at..];
            let (segment, ends) = match rest.iter().position(|b| *b == b'\n') {
                Some(pos) => (&rest[..pos], true),
                None => (rest, false),
            };
            at += segment.len() + usize::from(ends);
            current.started = true;
            if line_no >= first {
                keep(&mut current, segment, window.max_line_bytes);
            }
            if !ends {
                continue;
            }
            if line_no >= first {
                taken += push(&mut out, std::mem::take(&mut current));
            }
            current = Current::default();
            line_no += 1;
            if out.binary || out.lines.len() >= limit || taken >= window.max_bytes {
                reader.consume(at);
                out.more = !reader.fill_buf()?.is_empty();
                if !out.more {
                    out.total = Some(line_no - 1);
                }
                return Ok(out);
            }
        }
        let len = buf.len();
        scanned += len as u64;
        reader.consume(len);
    }
    if current.started {
        if line_no >= first {
            push(&mut out, current);
        }
        line_no += 1;
    }
    out.total = Some(line_no - 1);
    Ok(out)
}

/// Stopped mid-file by the scan cap: what was read so far, the line in progress (when it is
/// in the window) cut.
fn scan_capped(mut out: LineSlice, mut current: Current, in_window: bool) -> LineSlice {
    if in_window && current.started {
        current.cut = true;
        push(&mut out, current);
    }
    out.more = true;
    out.scan_capped = true;
    out
}

/// Adds a piece of the current line, keeping at most `max` bytes of it.
fn keep(current: &mut Current, segment: &[u8], max: usize) {
    let room = max.saturating_sub(current.kept.len());
    if segment.len() > room {
        current.cut = true;
    }
    current
        .kept
        .extend_from_slice(&segment[..segment.len().min(room)]);
}

/// Adds a finished line to the window; returns its kept length.
fn push(out: &mut LineSlice, mut line: Current) -> usize {
    if !line.cut && line.kept.last() == Some(&b'\r') {
        line.kept.pop();
    }
    if line.kept.contains(&0) {
        out.binary = true;
    }
    let len = line.kept.len();
    out.lines.push(TextLine {
        text: String::from_utf8_lossy(&line.kept).into_owned(),
        cut: line.cut,
    });
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(offset: u64, limit: usize) -> LineWindow {
        LineWindow {
            offset,
            limit,
            max_bytes: 1 << 20,
            max_line_bytes: 1 << 10,
            max_scan_bytes: 1 << 30,
        }
    }

    fn texts(slice: &LineSlice) -> Vec<&str> {
        slice.lines.iter().map(|l| l.text.as_str()).collect()
    }

    /// A reader handing out at most `chunk` bytes at a time, to cross buffer boundaries.
    fn chunked(data: &[u8], chunk: usize) -> io::BufReader<impl io::Read + '_> {
        struct Small<'a>(&'a [u8], usize);
        impl io::Read for Small<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        io::BufReader::with_capacity(chunk, Small(data, chunk))
    }

    #[test]
    fn windows_match_str_lines_across_buffer_boundaries() {
        let text = "one\r\ntwo\n\nfour\nfive";
        for chunk in [1, 2, 3, 7, 64] {
            let all = read_window(chunked(text.as_bytes(), chunk), &window(1, 100)).unwrap();
            assert_eq!(texts(&all), text.lines().collect::<Vec<_>>(), "{chunk}");
            assert_eq!((all.more, all.total), (false, Some(5)));
            let mid = read_window(chunked(text.as_bytes(), chunk), &window(2, 2)).unwrap();
            assert_eq!(texts(&mid), ["two", ""]);
            assert_eq!((mid.more, mid.total), (true, None));
            let end = read_window(chunked(text.as_bytes(), chunk), &window(4, 2)).unwrap();
            assert_eq!(texts(&end), ["four", "five"]);
            assert_eq!((end.more, end.total), (false, Some(5)));
        }
    }

    #[test]
    fn the_last_full_window_knows_there_is_nothing_more() {
        let full = read_window(&b"a\nb\n"[..], &window(1, 2)).unwrap();
        assert_eq!((full.more, full.total), (false, Some(2)));
        let past = read_window(&b"a\nb\n"[..], &window(9, 2)).unwrap();
        assert!(past.lines.is_empty());
        assert_eq!(past.total, Some(2));
        let empty = read_window(&b""[..], &window(1, 2)).unwrap();
        assert_eq!((empty.lines.len(), empty.total), (0, Some(0)));
    }

    #[test]
    fn long_lines_are_cut_and_the_byte_cap_stops_the_read() {
        let mut data = vec![b'x'; 5000];
        data.extend_from_slice("\nshort\nnext\n".as_bytes());
        let w = LineWindow {
            offset: 1,
            limit: 100,
            max_bytes: 10,
            max_line_bytes: 8,
            max_scan_bytes: 1 << 30,
        };
        let got = read_window(chunked(&data, 100), &w).unwrap();
        assert_eq!(got.lines[0].text, "xxxxxxxx");
        assert!(got.lines[0].cut);
        assert_eq!(
            texts(&got),
            ["xxxxxxxx", "short"],
            "stops once 10 bytes are taken"
        );
        assert!(got.more);
    }

    #[test]
    fn nul_bytes_in_the_head_or_the_window_mean_binary() {
        assert!(
            read_window(&b"a\0b\nc\n"[..], &window(2, 1))
                .unwrap()
                .binary
        );
        let mut late = vec![b'a'; 20_000];
        late.extend_from_slice(b"\n\0\n");
        assert!(!read_window(&late[..], &window(1, 1)).unwrap().binary);
        assert!(read_window(&late[..], &window(2, 1)).unwrap().binary);
    }

    #[test]
    fn the_scan_cap_bounds_the_read_even_without_line_endings() {
        let data = vec![b'q'; 100_000];
        let w = LineWindow {
            max_scan_bytes: 1000,
            ..window(1, 5)
        };
        let got = read_window(chunked(&data, 64), &w).unwrap();
        assert_eq!(got.lines.len(), 1);
        assert!(got.lines[0].cut && got.more && got.scan_capped);
        assert_eq!(got.total, None);
        // An offset beyond the cap: nothing, and it says why.
        let text: String = (0..1000).map(|i| format!("{i}\n")).collect();
        let far = LineWindow {
            max_scan_bytes: 100,
            ..window(900, 5)
        };
        let got = read_window(text.as_bytes(), &far).unwrap();
        assert!(got.lines.is_empty() && got.scan_capped && got.more);
    }
}
