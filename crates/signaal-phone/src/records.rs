//! CSV records with bounded lines and fields.
//!
//! A CSV reader trusts its quotes: one unclosed `"` in row 5 makes the rest of a 10,000-row
//! export one field, and a 50 MB line is held whole in memory. [`Records`] reads physical lines
//! of at most [`Limits::max_line_bytes`] (the rest of a longer line is passed over unread, so
//! memory stays flat) and splits them into fields with the usual rules (a field that starts with
//! `"` is quoted, `""` inside it is one `"`, line breaks inside it belong to it). A quoted field
//! that runs past [`Limits::max_field_bytes`] or spans more than [`Limits::max_field_lines`]
//! line breaks, or is still open at the end of the file, is an unclosed quote: its record is
//! rejected with the line the quote opened on, and reading resumes at the first line after it
//! that looks like a row of its own.

use std::collections::VecDeque;
use std::io::BufRead;
use std::ops::RangeInclusive;

/// Line breaks a quoted field may span by default; a note of a hundred lines is no note.
pub const MAX_FIELD_LINE_BREAKS: usize = 100;

/// How much of a rejected line or record is kept for the dead-letter topic.
const RAW_KEPT: usize = 64 * 1024;

const QUOTE: u8 = b'"';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_field_bytes: usize,
    pub max_field_lines: usize,
    pub max_line_bytes: usize,
}

impl Limits {
    /// Limits for quoted fields of at most `max_field_bytes`; a line may hold a few such fields
    /// (and is at least 1 MiB).
    pub fn new(max_field_bytes: usize) -> Self {
        let max_field_bytes = max_field_bytes.max(1);
        Limits {
            max_field_bytes,
            max_field_lines: MAX_FIELD_LINE_BREAKS,
            max_line_bytes: max_field_bytes.saturating_mul(4).max(1024 * 1024),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(crate::DEFAULT_MAX_FIELD_BYTES)
    }
}

/// One physical line (without its `\n`).
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based.
    pub number: u64,
    /// The line, or only its head when it is longer than the limit.
    pub bytes: Vec<u8>,
    /// The line's real length when it was over the limit.
    pub overlong: Option<u64>,
}

/// Physical lines of at most `max_line_bytes`, read without ever holding more.
pub struct Lines<R> {
    inner: R,
    max_line_bytes: usize,
    number: u64,
    failed: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        Lines {
            inner,
            max_line_bytes,
            number: 0,
            failed: false,
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = std::io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut bytes: Vec<u8> = Vec::new();
        let mut total: u64 = 0;
        let mut any = false;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A reader that failed once (a decoding error, a vanished file) is done.
                    self.failed = true;
                    self.number += 1;
                    return Some(Err(e));
                }
            };
            if buf.is_empty() {
                break;
            }
            any = true;
            let (chunk, used, end) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            total += chunk.len() as u64;
            if bytes.capacity() == 0 {
                bytes.reserve_exact(if end { chunk.len() } else { 256 });
            }
            let room = self.max_line_bytes.saturating_sub(bytes.len());
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.inner.consume(used);
            if end {
                break;
            }
        }
        if !any {
            return None;
        }
        self.number += 1;
        let overlong = (total > self.max_line_bytes as u64).then_some(total);
        if overlong.is_some() {
            bytes.truncate(4096);
        }
        Some(Ok(Line {
            number: self.number,
            bytes,
            overlong,
        }))
    }
}

/// What [`Records`] yields.
#[derive(Debug)]
pub enum Record {
    /// The fields of one record, and the line it starts on.
    Fields { line: u64, fields: csv::ByteRecord },
    /// A line or record that cannot be a row, why, and its (head of) bytes.
    Bad {
        line: u64,
        reason: String,
        raw: Vec<u8>,
        /// The file ended inside a quoted field: a file still being written may finish it.
        unfinished: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartField,
    InField,
    InQuoted,
    /// A `"` inside a quoted field: `""` (a quote) or the field's end.
    QuoteInQuoted,
}

/// A record being split: fields done, the field in progress, and where the scan is.
struct Split {
    fields: csv::ByteRecord,
    field: Vec<u8>,
    state: State,
    /// Bytes and line breaks of the quoted field in progress.
    quoted_bytes: usize,
    quoted_lines: usize,
    /// A quoted field that spanned lines closed with text after its quote (`…"klant belde`):
    /// the quote that closed it opened the next field, so its own quote was never closed.
    broken_close: bool,
}

impl Split {
    fn new() -> Self {
        Split::with_capacity(0, 0)
    }

    /// A split whose record has room for `bytes` in `fields` fields (no growing on the way).
    fn with_capacity(bytes: usize, fields: usize) -> Self {
        Split {
            fields: csv::ByteRecord::with_capacity(bytes, fields),
            field: Vec::new(),
            state: State::StartField,
            quoted_bytes: 0,
            quoted_lines: 0,
            broken_close: false,
        }
    }

    fn end_field(&mut self) {
        self.fields.push_field(&self.field);
        self.field.clear();
        self.state = State::StartField;
    }

    /// Feeds one line; `Ok(true)` when the record ends with it, `Ok(false)` when a quoted field
    /// goes on to the next line, `Err` when that field is over a limit.
    fn feed(&mut self, line: &[u8], delimiter: u8, limits: &Limits) -> Result<bool, Overflow> {
        let mut i = 0;
        while i < line.len() {
            match self.state {
                State::StartField => {
                    let b = line[i];
                    i += 1;
                    if b == QUOTE {
                        self.state = State::InQuoted;
                        self.quoted_bytes = 0;
                        self.quoted_lines = 0;
                    } else if b == delimiter {
                        self.end_field();
                    } else {
                        self.field.push(b);
                        self.state = State::InField;
                    }
                }
                State::InField => {
                    let rest = &line[i..];
                    match rest.iter().position(|b| *b == delimiter) {
                        Some(n) => {
                            self.field.extend_from_slice(&rest[..n]);
                            i += n + 1;
                            self.end_field();
                        }
                        None => {
                            self.field.extend_from_slice(rest);
                            i = line.len();
                        }
                    }
                }
                State::InQuoted => {
                    let rest = &line[i..];
                    let n = rest.iter().position(|b| *b == QUOTE).unwrap_or(rest.len());
                    self.field.extend_from_slice(&rest[..n]);
                    self.quoted_bytes += n;
                    i += n;
                    if i < line.len() {
                        i += 1;
                        self.state = State::QuoteInQuoted;
                    }
                    if self.quoted_bytes > limits.max_field_bytes {
                        return Err(Overflow::Bytes);
                    }
                }
                State::QuoteInQuoted => {
                    let b = line[i];
                    i += 1;
                    if b == QUOTE {
                        self.field.push(QUOTE);
                        self.quoted_bytes += 1;
                        self.state = State::InQuoted;
                    } else if b == delimiter {
                        self.end_field();
                    } else {
                        // `"a"b`: what follows the closing quote belongs to the field.
                        self.field.push(b);
                        self.state = State::InField;
                        self.broken_close |= self.quoted_lines > 0;
                    }
                }
            }
        }
        if self.state == State::InQuoted {
            self.field.push(b'\n');
            self.quoted_bytes += 1;
            self.quoted_lines += 1;
            if self.quoted_lines > limits.max_field_lines {
                return Err(Overflow::Lines);
            }
            if self.quoted_bytes > limits.max_field_bytes {
                return Err(Overflow::Bytes);
            }
            return Ok(false);
        }
        self.end_field();
        Ok(true)
    }
}

enum Overflow {
    Bytes,
    Lines,
}

/// The records of a CSV file, each with the line it starts on; see the module documentation.
pub struct Records<R> {
    lines: Lines<R>,
    /// Lines read ahead by a quoted field that turned out to be unclosed: read again.
    pending: VecDeque<Line>,
    delimiter: u8,
    limits: Limits,
    /// How many fields a row has; it tells a row from the middle of a runaway field.
    width: Option<RangeInclusive<usize>>,
    /// What else a row has (a readable time where the format has one).
    row_test: Option<RowTest>,
}

/// Tells a row from a line of a note that happens to hold as many delimiters.
pub type RowTest = Box<dyn Fn(&csv::ByteRecord) -> bool + Send>;

impl<R: BufRead> Records<R> {
    pub fn new(reader: R, delimiter: u8, limits: Limits) -> Self {
        Records {
            lines: Lines::new(reader, limits.max_line_bytes),
            pending: VecDeque::new(),
            delimiter,
            limits,
            width: None,
            row_test: None,
        }
    }

    /// Sets how many fields a row has (from the header, or the format's documentation) and
    /// what else it must have (`test`), so that an unclosed quote is noticed when it swallows a
    /// row, and reading resumes at a line that looks like a row.
    pub fn set_rows(&mut self, width: RangeInclusive<usize>, test: Option<RowTest>) {
        self.width = Some(width);
        self.row_test = test;
    }

    fn passes(&self, fields: &csv::ByteRecord) -> bool {
        self.width
            .as_ref()
            .is_some_and(|w| w.contains(&fields.len()))
            && self.row_test.as_ref().is_none_or(|t| t(fields))
    }

    fn line(&mut self) -> Option<std::io::Result<Line>> {
        match self.pending.pop_front() {
            Some(l) => Some(Ok(l)),
            None => self.lines.next(),
        }
    }

    /// Whether `line` alone looks like the start of a row: a whole row of the right width, or
    /// the start of one whose last field goes on to the next line.
    fn plausible(&self, line: &Line) -> bool {
        if line.overlong.is_some() || line.bytes.is_empty() {
            return false;
        }
        let Some(width) = &self.width else {
            return true;
        };
        let mut split = Split::new();
        let limits = Limits {
            max_field_lines: usize::MAX,
            max_field_bytes: usize::MAX,
            ..self.limits
        };
        match split.feed(&line.bytes, self.delimiter, &limits) {
            Ok(true) => self.passes(&split.fields),
            Ok(false) => !split.fields.is_empty() && split.fields.len() < *width.end(),
            Err(_) => false,
        }
    }

    /// Whether `line` alone is a whole row: of the expected width, passing the row test, and
    /// of at least two fields (with a test) or three (without), which a line of a note hardly
    /// ever is.
    fn is_row(&self, line: &Line) -> bool {
        let least = if self.row_test.is_some() { 2 } else { 3 };
        if line.overlong.is_some() || self.width.as_ref().is_none_or(|w| *w.start() < least) {
            return false;
        }
        let mut split = Split::new();
        matches!(
            split.feed(&line.bytes, self.delimiter, &self.limits),
            Ok(true)
        ) && self.passes(&split.fields)
    }

    /// Rejects the record that opened a quoted field on `first` and swallowed `taken`: the lines
    /// up to the first plausible row are part of it (looking at most
    /// [`Limits::max_field_lines`] lines further when none of `taken` is), the rest are read
    /// again.
    fn reject(&mut self, first: Line, taken: Vec<Line>, why: &str, unfinished: bool) -> Record {
        let mut raw = first.bytes;
        let mut last_dropped = None;
        let mut drop_line = |raw: &mut Vec<u8>, l: &Line| {
            if raw.len() < RAW_KEPT {
                raw.push(b'\n');
                raw.extend_from_slice(&l.bytes);
            }
            last_dropped = Some(l.number);
        };
        let mut again: Vec<Line> = Vec::new();
        let mut taken = taken.into_iter();
        for l in taken.by_ref() {
            if self.plausible(&l) {
                again.push(l);
                break;
            }
            drop_line(&mut raw, &l);
        }
        again.extend(taken);
        let mut failure = String::new();
        if again.is_empty() && !unfinished {
            for _ in 0..self.limits.max_field_lines {
                match self.line() {
                    None => break,
                    Some(Err(e)) => {
                        failure = format!("; then an unreadable line: {e}");
                        break;
                    }
                    Some(Ok(l)) if self.plausible(&l) => {
                        again.push(l);
                        break;
                    }
                    Some(Ok(l)) => drop_line(&mut raw, &l),
                }
            }
        }
        raw.truncate(RAW_KEPT);
        let next = match (again.first(), last_dropped) {
            (Some(l), _) => format!("; reading resumes at line {}", l.number),
            (None, Some(n)) => format!("; reading resumes after line {n}"),
            (None, None) => String::new(),
        };
        for l in again.into_iter().rev() {
            self.pending.push_front(l);
        }
        Record::Bad {
            line: first.number,
            reason: format!(
                "a quoted field opened on line {} {why} (an unclosed quote?){next}{failure}",
                first.number
            ),
            raw,
            unfinished,
        }
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let first = loop {
            match self.line()? {
                Err(e) => {
                    return Some(Record::Bad {
                        line: self.lines.number,
                        reason: format!("unreadable line: {e}"),
                        raw: Vec::new(),
                        unfinished: false,
                    })
                }
                // Blank lines are no records (as in every CSV reader).
                Ok(l) if l.bytes.is_empty() && l.overlong.is_none() => continue,
                Ok(l) => break l,
            }
        };
        if let Some(len) = first.overlong {
            return Some(Record::Bad {
                line: first.number,
                reason: format!(
                    "line {} is {len} bytes, over the limit of {} bytes for one line: not read",
                    first.number, self.limits.max_line_bytes
                ),
                raw: first.bytes,
                unfinished: false,
            });
        }
        let fields = self.width.as_ref().map_or(16, |w| *w.end());
        let mut split = Split::with_capacity(first.bytes.len(), fields);
        let mut taken: Vec<Line> = Vec::new();
        loop {
            let current = taken.last().map_or(&first.bytes, |l| &l.bytes);
            match split.feed(current, self.delimiter, &self.limits) {
                Ok(true) if split.broken_close => {
                    let at = taken.last().map_or(first.number, |l| l.number);
                    let why = format!("ends on line {at} with text after its closing quote");
                    return Some(self.reject(first, taken, &why, false));
                }
                Ok(true) => {
                    return Some(Record::Fields {
                        line: first.number,
                        fields: split.fields,
                    })
                }
                Err(Overflow::Bytes) => {
                    let why = format!("runs past {} bytes", self.limits.max_field_bytes);
                    return Some(self.reject(first, taken, &why, false));
                }
                Err(Overflow::Lines) => {
                    let why = format!(
                        "spans more than {} line breaks",
                        self.limits.max_field_lines
                    );
                    return Some(self.reject(first, taken, &why, false));
                }
                Ok(false) => {}
            }
            match self.line() {
                None => {
                    return Some(self.reject(
                        first,
                        taken,
                        "is still open at the end of the file",
                        true,
                    ))
                }
                Some(Err(e)) => {
                    return Some(Record::Bad {
                        line: first.number,
                        reason: format!("unreadable line: {e}"),
                        raw: first.bytes,
                        unfinished: false,
                    })
                }
                Some(Ok(l)) if l.overlong.is_some() => {
                    let why = format!("runs into line {}, which is over the line limit", l.number);
                    let mut taken = taken;
                    taken.push(l);
                    return Some(self.reject(first, taken, &why, false));
                }
                Some(Ok(l)) => {
                    // A whole row inside a quoted field: the quote was never closed.
                    let row = self.is_row(&l).then_some(l.number);
                    taken.push(l);
                    if let Some(n) = row {
                        let why = format!("runs over line {n}, which is a row of its own");
                        return Some(self.reject(first, taken, &why, false));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (line, fields) for rows, (line, reason) for rejects.
    fn read(csv: &str, width: Option<RangeInclusive<usize>>, limits: Limits) -> Vec<String> {
        let mut r = Records::new(csv.as_bytes(), b';', limits);
        if let Some(w) = width {
            r.set_rows(w, None);
        }
        r.map(|rec| match rec {
            Record::Fields { line, fields } => format!(
                "{line}: {}",
                fields
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
                    .join("|")
            ),
            Record::Bad { line, reason, .. } => format!("{line}! {reason}"),
        })
        .collect()
    }

    fn small() -> Limits {
        Limits {
            max_field_bytes: 40,
            max_field_lines: 3,
            max_line_bytes: 200,
        }
    }

    #[test]
    fn fields_as_csv_readers_split_them() {
        let got = read(
            "a;b;c\n\n\"x;y\";\"say \"\"hi\"\"\";\n\"two\nlines\";z;\"\"\n\"a\"b;c\"d;e\n",
            None,
            Limits::default(),
        );
        assert_eq!(
            got,
            [
                "1: a|b|c",
                "3: x;y|say \"hi\"|",
                "4: two\nlines|z|",
                "6: ab|c\"d|e",
            ]
        );
    }

    #[test]
    fn an_unclosed_quote_is_rejected_with_its_line_and_reading_resumes() {
        let mut csv = String::from("id;datum;notitie\n");
        for i in 1..=10 {
            if i == 5 {
                csv.push_str("5;2026-11-17;\"klant zegt dit is onacceptabel\n");
            } else {
                csv.push_str(&format!("{i};2026-11-17;ok {i}\n"));
            }
        }
        let got = read(&csv, Some(3..=3), Limits::default());
        assert_eq!(got.len(), 11, "{got:#?}");
        assert_eq!(got[4], "5: 4|2026-11-17|ok 4");
        assert!(
            got[5].starts_with(
                "6! a quoted field opened on line 6 runs over line 7, which is a row of its own"
            ),
            "{}",
            got[5]
        );
        assert!(got[5].ends_with("reading resumes at line 7"), "{}", got[5]);
        assert_eq!(got[6], "7: 6|2026-11-17|ok 6");
        assert_eq!(got[10], "11: 10|2026-11-17|ok 10");

        // Without a known width (or rows of two fields), the size limit catches it.
        let narrow = csv.replace(";2026-11-17", "");
        let got = read(&narrow, None, small());
        assert!(
            got[5].starts_with("6! a quoted field opened on line 6 runs past 40 bytes"),
            "{}",
            got[5]
        );
        assert_eq!(got[6], "7: 6|ok 6", "{got:#?}");

        // A later quote that seems to close it, with text after: the quote opened a field.
        let closed = read(
            "1;a;b\n2;c;\"open\nnote\n3;d;\"x\"\n",
            Some(3..=3),
            Limits::default(),
        );
        assert!(
            closed[1].starts_with("2! a quoted field opened on line 2 runs over line 4"),
            "{closed:?}"
        );
        assert_eq!(closed[2], "4: 3|d|x");
        let broken = read("1;a;\"open\nfoo\nbar;\"x\n", Some(3..=3), Limits::default());
        assert!(
            broken[0]
                .starts_with("1! a quoted field opened on line 1 ends on line 3 with text after"),
            "{broken:?}"
        );

        // Too many line breaks, and still open at the end of the file.
        let lines = read(
            "1;\"a\nb\nc\nd\ne\n2;x;y\n",
            Some(3..=3),
            Limits {
                max_field_bytes: 1000,
                ..small()
            },
        );
        assert!(
            lines[0]
                .starts_with("1! a quoted field opened on line 1 spans more than 3 line breaks"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "6: 2|x|y", "the note's other lines are no rows");
        let eof = read(
            "1;a;b\n2;c;\"open\nstill the note\n",
            Some(3..=3),
            Limits::default(),
        );
        assert!(
            eof[1].starts_with(
                "2! a quoted field opened on line 2 is still open at the end of the file"
            ),
            "{eof:?}"
        );
        assert_eq!(eof.len(), 2);
    }

    /// A note line with as many semicolons as a row has fields is no row when its time field
    /// is no time.
    #[test]
    fn a_row_test_tells_a_note_line_from_a_row() {
        let csv = "1;2026-11-17;\"boos; wil terugbellen; morgen\nklant; zegt; dit\nnog\"\n2;2026-11-18;ok\n";
        let mut r = Records::new(csv.as_bytes(), b';', Limits::default());
        r.set_rows(
            3..=3,
            Some(Box::new(|f: &csv::ByteRecord| {
                f.get(1).is_some_and(|t| t.starts_with(b"2026-"))
            })),
        );
        let lines: Vec<u64> = r
            .map(|rec| match rec {
                Record::Fields { line, .. } => line,
                Record::Bad { reason, .. } => panic!("{reason}"),
            })
            .collect();
        assert_eq!(lines, [1, 4]);
    }

    #[test]
    fn a_line_over_the_limit_is_passed_over_unread() {
        let long = "x".repeat(5_000);
        let csv = format!("a;b\n{long};1\n\"{long}\nc;d\n");
        let got = read(&csv, Some(2..=2), small());
        assert_eq!(got[0], "1: a|b");
        assert!(
            got[1].starts_with("2! line 2 is 5002 bytes, over the limit of 200 bytes"),
            "{}",
            got[1]
        );
        assert!(got[2].starts_with("3! line 3 is 5001 bytes"), "{}", got[2]);
        assert_eq!(got[3], "4: c|d");
        assert_eq!(got.len(), 4);
    }

    /// A reader of `n` bytes of one line that never holds them: what `Lines` keeps is bounded.
    struct Endless(u64);

    impl std::io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (buf.len() as u64).min(self.0) as usize;
            buf[..n].fill(b'y');
            self.0 -= n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_fifty_megabyte_line_is_not_held() {
        let reader = std::io::BufReader::new(Endless(50 * 1024 * 1024));
        let mut lines = Lines::new(reader, 1024 * 1024);
        let line = match lines.next() {
            Some(Ok(l)) => l,
            other => panic!("{other:?}"),
        };
        assert_eq!(line.overlong, Some(50 * 1024 * 1024));
        assert!(
            line.bytes.capacity() <= 2 * 1024 * 1024,
            "{}",
            line.bytes.capacity()
        );
        assert!(lines.next().is_none());
    }
}
