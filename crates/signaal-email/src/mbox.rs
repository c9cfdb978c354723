//! mbox archives, one message at a time.
//!
//! mbox has no standard, only habits (mboxo, mboxrd, mboxcl, mboxcl2): a message starts at a
//! `From ` line, writers quote body lines that start with `From ` as `>From ` (mboxrd also quotes
//! `>From ` as `>>From `), and some write a `Content-Length:` header and do not quote at all. A
//! body line starting with `From ` that a writer did not quote must not cut a message in two, so
//! a `From ` line separates messages only when it looks like one (a sender, a time and a year)
//! and a header line follows it; a `Content-Length:` is honoured when the message really ends
//! there (end of file, or a `From ` line, after at most one blank line).
//!
//! Memory stays bounded: of a message over the size limit only its head is kept, and of a line
//! only as much as the limit allows, whatever the file holds.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use chrono::{DateTime, NaiveDate, Utc};

/// One message of an mbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMessage {
    /// The message with its `From ` line removed and `>From ` quoting undone; only the first
    /// `head` bytes when it is over the size limit.
    pub bytes: Vec<u8>,
    /// The whole message's size in bytes.
    pub size: usize,
    /// The date on the `From ` line: when the mailbox got the message.
    pub received: Option<DateTime<Utc>>,
}

/// One line as read: its first bytes (all of them unless it is absurdly long) and its length.
#[derive(Debug)]
struct Line {
    bytes: Vec<u8>,
    len: usize,
}

/// The messages of an mbox stream, in order.
pub struct Mbox<R> {
    reader: R,
    /// Lines read ahead to decide where a message ends, in file order.
    pending: VecDeque<Line>,
    max_bytes: usize,
    head: usize,
}

impl<R: BufRead> Mbox<R> {
    /// Messages over `max_bytes` keep only their first `head` bytes.
    pub fn new(reader: R, max_bytes: usize, head: usize) -> Mbox<R> {
        Mbox {
            reader,
            pending: VecDeque::new(),
            max_bytes,
            head,
        }
    }

    /// The next line, bounded: bytes past the size limit are counted, not kept.
    fn read_line(&mut self) -> io::Result<Option<Line>> {
        match self.pending.pop_front() {
            Some(line) => Ok(Some(line)),
            None => self.read_from_stream(),
        }
    }

    fn read_from_stream(&mut self) -> io::Result<Option<Line>> {
        let cap = self.max_bytes.saturating_add(1);
        let mut bytes = Vec::new();
        let mut len = 0;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                break;
            }
            let (n, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = cap.saturating_sub(bytes.len());
            bytes.extend_from_slice(&buf[..n.min(room)]);
            len += n;
            self.reader.consume(n);
            if done {
                break;
            }
        }
        Ok((len > 0).then_some(Line { bytes, len }))
    }

    /// The line `k` places ahead, without consuming it.
    fn peek(&mut self, k: usize) -> io::Result<Option<&Line>> {
        while self.pending.len() <= k {
            match self.read_from_stream()? {
                Some(line) => self.pending.push_back(line),
                None => return Ok(None),
            }
        }
        Ok(self.pending.get(k))
    }

    /// Whether the line at `k` starts a new message.
    fn separator_at(&mut self, k: usize) -> io::Result<bool> {
        let starts = self.peek(k)?.is_some_and(|l| is_from_line(&l.bytes));
        Ok(starts && self.peek(k + 1)?.is_some_and(|l| is_header_line(&l.bytes)))
    }

    /// Whether the message ends right here: end of file, or a `From ` line after at most one
    /// blank line.
    fn at_boundary(&mut self) -> io::Result<bool> {
        let Some(line) = self.peek(0)? else {
            return Ok(true);
        };
        if line.bytes.starts_with(b"From ") {
            return Ok(true);
        }
        if !is_blank(&line.bytes) {
            return Ok(false);
        }
        Ok(self.peek(1)?.is_none_or(|l| l.bytes.starts_with(b"From ")))
    }

    fn next_message(&mut self) -> io::Result<Option<MboxMessage>> {
        // The `From ` line that opens the message; what comes before the first one is not mail.
        let from_line = loop {
            match self.read_line()? {
                None => return Ok(None),
                Some(line) if line.bytes.starts_with(b"From ") => break line,
                Some(_) => continue,
            }
        };
        let mut acc = Acc::new(self.max_bytes, self.head);
        let mut content_length = None;
        // The header block.
        loop {
            let Some(line) = self.peek(0)? else {
                return Ok(Some(acc.finish(&from_line)));
            };
            if line.bytes.starts_with(b"From ") && self.separator_at(0)? {
                return Ok(Some(acc.finish(&from_line)));
            }
            let Some(line) = self.read_line()? else {
                return Ok(Some(acc.finish(&from_line)));
            };
            if let Some(n) = content_length_of(&line.bytes) {
                content_length = Some(n);
            }
            let blank = is_blank(&line.bytes);
            acc.push_unquoted(line);
            if blank {
                break;
            }
        }
        // mboxcl/mboxcl2: the body is exactly `Content-Length` bytes, if the file agrees.
        if let Some(n) = content_length.filter(|n| *n <= self.max_bytes) {
            let mut body = Vec::new();
            let mut got = 0;
            while got < n {
                match self.read_line()? {
                    Some(line) => {
                        got += line.len;
                        body.push(line);
                    }
                    None => break,
                }
            }
            if got == n && self.at_boundary()? {
                for line in body {
                    acc.push(line);
                }
                return Ok(Some(acc.finish(&from_line)));
            }
            // Not consistent: read the body as if there were no Content-Length.
            for line in body.into_iter().rev() {
                self.pending.push_front(line);
            }
        }
        while let Some(line) = self.peek(0)? {
            if line.bytes.starts_with(b"From ") && self.separator_at(0)? {
                break;
            }
            if let Some(line) = self.read_line()? {
                acc.push_unquoted(line);
            }
        }
        acc.drop_trailing_blank_line();
        Ok(Some(acc.finish(&from_line)))
    }
}

impl<R: BufRead> Iterator for Mbox<R> {
    type Item = io::Result<MboxMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_message().transpose()
    }
}

/// A message being read: whole up to the limit, its head only past it.
struct Acc {
    bytes: Vec<u8>,
    size: usize,
    max: usize,
    head: usize,
}

impl Acc {
    fn new(max: usize, head: usize) -> Acc {
        Acc {
            bytes: Vec::new(),
            size: 0,
            max,
            head,
        }
    }

    fn push(&mut self, line: Line) {
        self.size = self.size.saturating_add(line.len);
        if self.size <= self.max {
            self.bytes.extend_from_slice(&line.bytes);
        } else if self.bytes.len() < self.head {
            self.bytes.extend_from_slice(&line.bytes);
            self.bytes.truncate(self.head);
        } else if self.bytes.len() > self.head {
            self.bytes.truncate(self.head);
            self.bytes.shrink_to_fit();
        }
    }

    /// mboxo/mboxrd: `>From `, `>>From `, … lose one `>`.
    fn push_unquoted(&mut self, mut line: Line) {
        let quotes = line.bytes.iter().take_while(|b| **b == b'>').count();
        if quotes > 0 && line.bytes[quotes..].starts_with(b"From ") {
            line.bytes.remove(0);
            line.len -= 1;
        }
        self.push(line);
    }

    /// The blank line a writer puts before the next `From ` line is not part of the message.
    fn drop_trailing_blank_line(&mut self) {
        if self.size > self.max {
            return;
        }
        for ending in [&b"\r\n\r\n"[..], b"\n\n"] {
            if self.bytes.ends_with(ending) {
                let cut = ending.len() / 2;
                self.bytes.truncate(self.bytes.len() - cut);
                self.size -= cut;
                return;
            }
        }
    }

    fn finish(self, from_line: &Line) -> MboxMessage {
        MboxMessage {
            bytes: self.bytes,
            size: self.size,
            received: from_line_date(&from_line.bytes),
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// `Content-Length: n` as a header line.
fn content_length_of(line: &[u8]) -> Option<usize> {
    let (name, value) = line.split_at(line.iter().position(|b| *b == b':')?);
    if !name.eq_ignore_ascii_case(b"content-length") {
        return None;
    }
    std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok()
}

/// An RFC 5322 header field line: a name of printable ASCII without `:`, then `:`.
pub fn is_header_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    colon > 0 && line[..colon].iter().all(|b| (33..=126).contains(b))
}

/// A `From ` line as writers make it: `From sender date`, the date with a time and a year
/// (`Tue Nov 17 09:00:00 2026`, Gmail's `Wed Jun 03 10:25:21 +0000 2020`). A sentence such as
/// "From what I read …" is not one.
pub fn is_from_line(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"From ") else {
        return false;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return false;
    };
    let mut tokens = rest.split_whitespace();
    if tokens.next().is_none() {
        return false;
    }
    let tokens: Vec<&str> = tokens.collect();
    tokens.iter().any(|t| time_of(t).is_some()) && tokens.iter().any(|t| year_of(t).is_some())
}

fn time_of(token: &str) -> Option<(u32, u32, u32)> {
    let mut parts = token.split(':');
    let h = parts.next()?;
    let m = parts.next()?;
    let s = parts.next().unwrap_or("0");
    if parts.next().is_some() || h.is_empty() || h.len() > 2 || m.len() != 2 || s.len() > 2 {
        return None;
    }
    let (h, m, s) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    (h < 24 && m < 60 && s < 61).then_some((h, m, s))
}

fn year_of(token: &str) -> Option<i32> {
    let year: i32 = (token.len() == 4 && token.bytes().all(|b| b.is_ascii_digit()))
        .then(|| token.parse().ok())??;
    (1970..=2200).contains(&year).then_some(year)
}

fn month_of(token: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let t = token.get(..3)?.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == t).map(|i| i as u32 + 1)
}

/// The date on a `From ` line, in UTC; a `+hhmm` zone when the line has one, else read as UTC.
pub fn from_line_date(line: &[u8]) -> Option<DateTime<Utc>> {
    let rest = std::str::from_utf8(line.strip_prefix(b"From ")?).ok()?;
    let tokens: Vec<&str> = rest.split_whitespace().skip(1).collect();
    let month_at = tokens.iter().position(|t| month_of(t).is_some())?;
    let month = month_of(tokens[month_at])?;
    let day: u32 = tokens[month_at + 1..]
        .iter()
        .find(|t| t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()?;
    let (h, m, s) = tokens.iter().find_map(|t| time_of(t))?;
    let year = tokens.iter().find_map(|t| year_of(t))?;
    let offset = tokens
        .iter()
        .find_map(|t| {
            let (sign, digits) = match t.as_bytes().first()? {
                b'+' => (1, &t[1..]),
                b'-' => (-1, &t[1..]),
                _ => return None,
            };
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: i64 = digits.parse().ok()?;
            Some(sign * ((n / 100) * 3600 + (n % 100) * 60))
        })
        .unwrap_or(0);
    let local = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(h, m, s.min(59))?;
    Some(local.and_utc() - chrono::Duration::seconds(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(mbox: &str) -> Vec<String> {
        Mbox::new(mbox.as_bytes(), usize::MAX, 64)
            .map(|m| m.map(|m| String::from_utf8_lossy(&m.bytes).into_owned()))
            .collect::<io::Result<_>>()
            .unwrap_or_else(|e| vec![format!("error: {e}")])
    }

    #[test]
    fn from_lines_are_told_from_sentences() {
        let cases: &[(&str, bool)] = &[
            ("From klant@voorbeeld.nl Tue Nov 17 09:00:00 2026\n", true),
            (
                "From 1589012345678901234@xxx Wed Jun 03 10:25:21 +0000 2020\n",
                true,
            ),
            ("From - Tue Nov 17 09:00:00 2026\n", true),
            ("From ???@??? Tue Nov 17 09:00 2026\n", true),
            ("From what I read, nothing happened.\n", false),
            ("From the start of 2026 I waited.\n", false),
            ("From: klant@voorbeeld.nl\n", false),
            ("From \n", false),
        ];
        for (line, want) in cases {
            assert_eq!(is_from_line(line.as_bytes()), *want, "{line:?}");
        }
    }

    #[test]
    fn from_line_dates() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "From a@b Tue Nov 17 09:00:00 2026",
                Some("2026-11-17T09:00:00+00:00"),
            ),
            (
                "From 1@xxx Wed Jun 03 10:25:21 +0000 2020",
                Some("2020-06-03T10:25:21+00:00"),
            ),
            (
                "From a@b Tue Nov 17 09:00:00 2026 +0100",
                Some("2026-11-17T08:00:00+00:00"),
            ),
            ("From a@b Tue Nov 31 09:00:00 2026", None),
            ("From a@b sometime", None),
        ];
        for (line, want) in cases {
            assert_eq!(
                from_line_date(line.as_bytes())
                    .map(|d| d.to_rfc3339())
                    .as_deref(),
                *want,
                "{line}"
            );
        }
    }

    #[test]
    fn an_unquoted_from_in_a_body_does_not_split_the_message() {
        let mbox = "From a@b Tue Nov 17 09:00:00 2026\nSubject: een\n\nregel\n\nFrom what I read, nobody answered.\nFrom now on I call.\n\nFrom a@b Tue Nov 17 09:01:00 2026\nSubject: twee\n\nw\n";
        assert_eq!(
            read(mbox),
            [
                "Subject: een\n\nregel\n\nFrom what I read, nobody answered.\nFrom now on I call.\n",
                "Subject: twee\n\nw\n"
            ]
        );
    }

    #[test]
    fn mboxrd_quoting_is_undone_one_level() {
        let mbox = "From a@b Tue Nov 17 09:00:00 2026\nSubject: q\n\n>From a@b Tue Nov 17 09:00:00 2026\n>>From here\n> From there\n";
        assert_eq!(
            read(mbox),
            ["Subject: q\n\nFrom a@b Tue Nov 17 09:00:00 2026\n>From here\n> From there\n"]
        );
    }

    #[test]
    fn content_length_is_honoured_when_consistent() {
        // mboxcl2: the body holds an unquoted From_ line with a header after it.
        let body = "Zie hieronder.\nFrom a@b Tue Nov 17 08:00:00 2026\nSubject: doorgestuurd\n";
        let mbox = format!(
            "From a@b Tue Nov 17 09:00:00 2026\nSubject: cl\nContent-Length: {}\n\n{body}\nFrom a@b Tue Nov 17 09:01:00 2026\nSubject: twee\n\nw\n",
            body.len()
        );
        let got = read(&mbox);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with(body), "{got:?}");
        // A wrong Content-Length is ignored: the From_ lines decide.
        let wrong = mbox.replace(
            &format!("Content-Length: {}", body.len()),
            "Content-Length: 7",
        );
        let got = read(&wrong);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].contains("Zie hieronder."), "{got:?}");
    }

    #[test]
    fn oversized_messages_keep_their_head_and_size() -> io::Result<()> {
        let big = "x".repeat(1000);
        let mbox = format!(
            "From a@b Tue Nov 17 09:00:00 2026\nSubject: groot\n\n{big}\n\nFrom a@b Tue Nov 17 09:01:00 2026\nSubject: klein\n\nk\n"
        );
        let got: Vec<MboxMessage> =
            Mbox::new(mbox.as_bytes(), 100, 10).collect::<io::Result<_>>()?;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].bytes, b"Subject: g");
        assert!(got[0].size > 1000);
        assert_eq!(got[1].bytes, b"Subject: klein\n\nk\n");
        Ok(())
    }
}
