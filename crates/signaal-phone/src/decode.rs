//! Export files arrive as UTF-8, UTF-8 with a byte-order mark, Windows-1252 (Excel on Windows) or
//! UTF-16 (some Windows tools). Everything is read as UTF-8 bytes.

use std::io::Read;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// The encoding of a file that starts with `head` (its first few kilobytes): a byte-order mark
/// decides; otherwise UTF-8 when `head` is valid UTF-8 (a character cut off at the end is fine),
/// else Windows-1252.
pub fn detect(head: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(head) {
        return enc;
    }
    match std::str::from_utf8(head) {
        Ok(_) => UTF_8,
        // `error_len() == None`: the sample ends inside a character, not on a bad byte.
        Err(e) if e.error_len().is_none() => UTF_8,
        Err(_) => WINDOWS_1252,
    }
}

/// `reader` as UTF-8 bytes with `\n` line ends. UTF-8 passes through untouched (after its BOM),
/// so a row with invalid bytes stays invalid and is rejected with its line rather than silently
/// repaired.
pub fn utf8_reader<R: Read + Send + 'static>(
    reader: R,
    encoding: &'static Encoding,
) -> std::io::Result<Box<dyn Read + Send>> {
    Ok(Box::new(CrlfToLf::new(decoded(reader, encoding)?)))
}

fn decoded<R: Read + Send + 'static>(
    mut reader: R,
    encoding: &'static Encoding,
) -> std::io::Result<Box<dyn Read + Send>> {
    if encoding == UTF_8 {
        let mut bom = [0u8; 3];
        let mut got = 0;
        while got < 3 {
            let n = reader.read(&mut bom[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let start = if bom[..got] == [0xEF, 0xBB, 0xBF] {
            3
        } else {
            0
        };
        let prefix = bom[start..got].to_vec();
        return Ok(Box::new(std::io::Cursor::new(prefix).chain(reader)));
    }
    let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .bom_override(true)
        .build(reader);
    Ok(Box::new(decoder))
}

/// Turns `\r\n` into `\n`. Exports from Windows end lines with CRLF; the csv crate then reports
/// every record one line early (it counts the `\n` only when reading the next record), and notes
/// typed in Excel carry `\r\n` inside quoted fields. A lone `\r` is kept.
pub struct CrlfToLf<R> {
    inner: R,
    /// A `\r` that ended the previous read: whether it is dropped depends on the next byte.
    held_cr: bool,
}

impl<R: Read> CrlfToLf<R> {
    pub fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            held_cr: false,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // Leave room for a held `\r` that turns out not to precede `\n`.
            let start = usize::from(self.held_cr);
            if start >= buf.len() {
                return Ok(0);
            }
            let n = self.inner.read(&mut buf[start..])?;
            if n == 0 {
                if self.held_cr {
                    self.held_cr = false;
                    buf[0] = b'\r';
                    return Ok(1);
                }
                return Ok(0);
            }
            let mut out = 0;
            let mut i = 0;
            if self.held_cr {
                self.held_cr = false;
                if buf[start] != b'\n' {
                    buf[out] = b'\r';
                    out += 1;
                }
            }
            let end = start + n;
            i += start;
            while i < end {
                let b = buf[i];
                if b == b'\r' {
                    match buf.get(i + 1).filter(|_| i + 1 < end) {
                        Some(b'\n') => {
                            i += 1;
                            continue;
                        }
                        Some(_) => {}
                        None => {
                            self.held_cr = true;
                            i += 1;
                            continue;
                        }
                    }
                }
                buf[out] = b;
                out += 1;
                i += 1;
            }
            if out > 0 {
                return Ok(out);
            }
        }
    }
}

/// A name for logs and errors.
pub fn name(encoding: &'static Encoding) -> &'static str {
    match encoding {
        e if e == UTF_16LE => "UTF-16LE",
        e if e == UTF_16BE => "UTF-16BE",
        e => e.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &'static [u8]) -> String {
        let enc = detect(bytes);
        let mut out = String::new();
        utf8_reader(bytes, enc)
            .and_then(|mut r| r.read_to_string(&mut out))
            .map(|_| out)
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn crlf_becomes_lf_across_read_boundaries() {
        let input = b"a\r\nb\rc\r\n\"x\r\ny\"\r\r\n\r";
        for chunk in 1..8 {
            let mut r = CrlfToLf::new(Chunked(&input[..], chunk));
            let mut out = Vec::new();
            let mut buf = [0u8; 3];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(out, b"a\nb\rc\n\"x\ny\"\r\n\r", "chunk {chunk}");
        }
    }

    /// A reader that returns at most `.1` bytes per read.
    struct Chunked<'a>(&'a [u8], usize);

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn encodings_are_detected_and_read_as_utf8() {
        assert_eq!(detect(b"a;b\n\xc3\xa9"), UTF_8);
        assert_eq!(detect(b"a;b\n\xc3"), UTF_8, "cut inside a character");
        assert_eq!(detect(b"caf\xe9;\x80 10"), WINDOWS_1252);
        assert_eq!(
            read_all(b"\xef\xbb\xbfcall_id;notes\n1;caf\xc3\xa9"),
            "call_id;notes\n1;café"
        );
        assert_eq!(read_all(b"1;caf\xe9 \x80 10"), "1;café € 10");
        assert_eq!(read_all(b"\xff\xfea\x00;\x00b\x00"), "a;b");
        assert_eq!(name(detect(b"\xff\xfea\x00")), "UTF-16LE");
    }
}
