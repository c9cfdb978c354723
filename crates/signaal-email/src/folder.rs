//! Finding messages on disk: Maildir (`cur/`, `new/`), `.eml` files and mbox files.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};

/// One message found on disk or on an IMAP server. `key` is stable across scans and identifies
/// the message for the source's cursor: the path for a file, `path#n` for the n-th message of an
/// mbox.
#[derive(Debug, Clone)]
pub struct Found {
    pub key: String,
    /// The whole message, or only its beginning when it is over the size limit.
    pub bytes: Vec<u8>,
    /// The whole message's size in bytes.
    pub size: usize,
    /// When the mailbox got the message (IMAP INTERNALDATE, the date on an mbox `From ` line, a
    /// file's modification time): the signal's time when the message has no Date header.
    pub received: Option<DateTime<Utc>>,
}

impl Found {
    pub fn new(key: String, bytes: Vec<u8>) -> Found {
        let size = bytes.len();
        Found {
            key,
            bytes,
            size,
            received: None,
        }
    }

    pub fn received(self, received: Option<DateTime<Utc>>) -> Found {
        Found { received, ..self }
    }
}

/// How much of an oversized file is read, for the dead-letter record.
const OVERSIZED_HEAD: usize = 64 * 1024;

/// Errors reading the folder itself (as opposed to a single bad message).
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FolderError + '_ {
    move |source| FolderError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Skips what is done already, by key; `Sync` so that a worker can hold a [`Messages`] across
/// awaits.
pub type Skip<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// Up to `limit` messages under `path`, in a stable order. `skip` tells which keys are already
/// done, so their bytes are not read again. Of a file over `max_bytes` only the beginning is read.
pub fn scan(
    path: &Path,
    skip: Skip<'_>,
    limit: usize,
    max_bytes: usize,
) -> Result<Vec<Found>, FolderError> {
    Messages::new(path, skip, max_bytes)?.take(limit).collect()
}

/// The messages under `path`, one at a time, in a stable order: files sorted by path, the
/// messages of an mbox in file order. Only the message at hand is in memory, however large the
/// folder or the mbox archive; of a message over `max_bytes` only the beginning is kept.
pub struct Messages<'a> {
    files: std::vec::IntoIter<PathBuf>,
    mbox: Option<Mbox>,
    skip: Skip<'a>,
    max_bytes: usize,
}

struct Mbox {
    path: PathBuf,
    next: usize,
    messages: mail_parser::mailbox::mbox::MessageIterator<BufReader<fs::File>>,
}

impl<'a> Messages<'a> {
    pub fn new(path: &Path, skip: Skip<'a>, max_bytes: usize) -> Result<Messages<'a>, FolderError> {
        let meta = fs::metadata(path).map_err(io(path))?;
        let mut files = Vec::new();
        if meta.is_file() {
            files.push(path.to_path_buf());
        } else {
            collect(path, &mut files)?;
            files.sort();
        }
        Ok(Messages {
            files: files.into_iter(),
            mbox: None,
            skip,
            max_bytes,
        })
    }

    /// The next `n` messages (fewer at the end; none when the walk is over).
    pub fn chunk(&mut self, n: usize) -> Result<Vec<Found>, FolderError> {
        self.by_ref().take(n).collect()
    }

    /// The next message of the open mbox, if any.
    fn next_in_mbox(&mut self) -> Option<Result<Found, FolderError>> {
        let mbox = self.mbox.as_mut()?;
        loop {
            let message = match mbox.messages.next() {
                None => {
                    self.mbox = None;
                    return None;
                }
                Some(Err(e)) => {
                    let error = io(&mbox.path)(e);
                    self.mbox = None;
                    return Some(Err(error));
                }
                Some(Ok(message)) => message,
            };
            let key = format!("{}#{}", mbox.path.to_string_lossy(), mbox.next);
            mbox.next += 1;
            if (self.skip)(&key) {
                continue;
            }
            // 0: the `From ` line has no date that parses.
            let received = i64::try_from(message.internal_date())
                .ok()
                .filter(|secs| *secs > 0)
                .and_then(|secs| Utc.timestamp_opt(secs, 0).single());
            let mut bytes = message.unwrap_contents();
            let size = bytes.len();
            if size > self.max_bytes {
                bytes.truncate(OVERSIZED_HEAD);
                bytes.shrink_to_fit();
            }
            return Some(Ok(Found {
                key,
                bytes,
                size,
                received,
            }));
        }
    }
}

impl Iterator for Messages<'_> {
    type Item = Result<Found, FolderError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(found) = self.next_in_mbox() {
                return Some(found);
            }
            let path = self.files.next()?;
            if is_mbox(&path) {
                match fs::File::open(&path) {
                    Ok(file) => {
                        self.mbox = Some(Mbox {
                            messages: mail_parser::mailbox::mbox::MessageIterator::new(
                                BufReader::new(file),
                            ),
                            path,
                            next: 0,
                        })
                    }
                    Err(e) => return Some(Err(io(&path)(e))),
                }
                continue;
            }
            match read_file(&path, self.skip, self.max_bytes) {
                Ok(None) => continue,
                Ok(Some(found)) => return Some(Ok(found)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FolderError> {
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name == "tmp" {
            // Maildir writers create files in tmp/ and rename them when complete.
            continue;
        }
        let ft = entry.file_type().map_err(io(&p))?;
        if ft.is_dir() {
            collect(&p, out)?;
        } else if ft.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

fn is_mbox(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "mbox")
}

/// A Maildir or `.eml` file, unless it is skipped or not mail.
fn read_file(path: &Path, skip: Skip<'_>, max_bytes: usize) -> Result<Option<Found>, FolderError> {
    let key = path.to_string_lossy().to_string();
    let in_maildir = path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "cur" || n == "new");
    let is_eml = path.extension().is_some_and(|e| e == "eml");
    if !(in_maildir || is_eml) || skip(&key) {
        return Ok(None);
    }
    let meta = fs::metadata(path).map_err(io(path))?;
    // A Maildir delivery agent writes the file when the mail arrives.
    let received = meta.modified().ok().map(DateTime::<Utc>::from);
    let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    if size > max_bytes {
        use std::io::Read;
        let mut head = Vec::with_capacity(OVERSIZED_HEAD);
        fs::File::open(path)
            .and_then(|f| f.take(OVERSIZED_HEAD as u64).read_to_end(&mut head))
            .map_err(io(path))?;
        return Ok(Some(Found {
            key,
            bytes: head,
            size,
            received,
        }));
    }
    let bytes = fs::read(path).map_err(io(path))?;
    Ok(Some(Found::new(key, bytes).received(received)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_maildir_eml_and_mbox_messages() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let md = dir.path().join("inbox");
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(md.join(sub))?;
        }
        fs::write(md.join("new/1.host"), "Subject: a\r\n\r\nx\r\n")?;
        fs::write(md.join("tmp/2.host"), "Subject: half written\r\n\r\n")?;
        fs::write(dir.path().join("one.eml"), "Subject: b\r\n\r\ny\r\n")?;
        fs::write(dir.path().join("notes.txt"), "not mail")?;
        fs::write(
            dir.path().join("box.mbox"),
            "From a@b Tue Nov 17 09:00:00 2026\nSubject: c\n\nz\n>From the start\n\nFrom a@b Tue Nov 17 09:01:00 2026\nSubject: d\n\nw\n",
        )?;
        let found = scan(dir.path(), &|_| false, usize::MAX, usize::MAX)?;
        let keys: Vec<String> = found
            .iter()
            .map(|f| {
                f.key
                    .trim_start_matches(&*dir.path().to_string_lossy())
                    .to_string()
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                "/box.mbox#0",
                "/box.mbox#1",
                "/inbox/new/1.host",
                "/one.eml"
            ]
        );
        // mbox `>From ` quoting is undone: the body says what the sender wrote.
        let body = String::from_utf8_lossy(&found[0].bytes);
        assert!(body.contains("\nFrom the start"), "{body}");
        assert!(!body.contains(">From"), "{body}");
        // Arrival times: the `From ` line's date for mbox, the modification time for files.
        let received: Vec<String> = found[..2]
            .iter()
            .filter_map(|f| f.received.map(|t| t.to_rfc3339()))
            .collect();
        assert_eq!(
            received,
            ["2026-11-17T09:00:00+00:00", "2026-11-17T09:01:00+00:00"]
        );
        let modified: DateTime<Utc> = fs::metadata(md.join("new/1.host"))?.modified()?.into();
        assert_eq!(found[2].received, Some(modified));
        let again = scan(
            dir.path(),
            &|k| k.ends_with("one.eml"),
            usize::MAX,
            usize::MAX,
        )?;
        assert_eq!(again.len(), 3);
        // Over the limit only the beginning is read, and the whole size is reported.
        let big = scan(&dir.path().join("one.eml"), &|_| false, 1, 4)?;
        let whole = "Subject: b\r\n\r\ny\r\n".len();
        assert_eq!((big[0].size, big[0].bytes.len()), (whole, whole));
        Ok(())
    }

    #[test]
    fn an_mbox_is_read_a_message_at_a_time_and_oversized_ones_keep_their_head(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("archief.mbox");
        let mut mbox = String::new();
        for n in 0..5 {
            mbox.push_str(&format!(
                "From klant@voorbeeld.nl Tue Nov 17 09:0{n}:00 2026\nSubject: {n}\n\n"
            ));
            // Message 3 is large: 200 KB of text.
            let body = if n == 3 {
                "x".repeat(200_000)
            } else {
                format!("bericht {n}")
            };
            mbox.push_str(&body);
            mbox.push_str("\n\n");
        }
        fs::write(&path, mbox)?;

        // A limit stops inside the mbox (it used to read every message of the file).
        let first = scan(&path, &|_| false, 2, usize::MAX)?;
        assert_eq!(first.len(), 2);

        // A walk goes on where the last chunk ended; skipped keys are passed over.
        let skip = |k: &str| k.ends_with("#1");
        let mut messages = Messages::new(&path, &skip, 100_000)?;
        let chunk: Vec<Found> = messages.by_ref().take(2).collect::<Result<_, _>>()?;
        let rest: Vec<Found> = messages.collect::<Result<_, _>>()?;
        let keys = |fs: &[Found]| -> Vec<String> {
            fs.iter()
                .map(|f| f.key.rsplit('#').next().unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(keys(&chunk), ["0", "2"]);
        assert_eq!(keys(&rest), ["3", "4"]);
        // Over the limit: the size of the whole message, the bytes of its beginning only.
        assert!(rest[0].size > 200_000);
        assert_eq!(rest[0].bytes.len(), OVERSIZED_HEAD);
        assert_eq!(rest[1].bytes.len(), rest[1].size);
        Ok(())
    }
}
