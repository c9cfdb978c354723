//! Finding messages on disk: Maildir (`cur/`, `new/`, Maildir++ `.Folder`s), message files and
//! mbox files, told apart by what they hold.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::mbox::{self, Mbox};

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
    #[error("cannot read `{path}`: {reason}")]
    NotMail { path: PathBuf, reason: &'static str },
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
///
/// What a file holds is read from its first bytes, not its name: an mbox (a `From ` line) or a
/// message (an RFC 5322 header block), in `cur/`, `new/`, a Maildir++ `.Folder` or anywhere else.
/// In a folder, files that are neither are passed over (unless named as mail: `.eml`, `.mbox`,
/// `cur/`, `new/`, which go to the parser and on to the dead-letter topic with its reason); a
/// file given by itself that is neither is an error.
pub struct Messages<'a> {
    files: std::vec::IntoIter<PathBuf>,
    mbox: Option<OpenMbox>,
    skip: Skip<'a>,
    max_bytes: usize,
}

struct OpenMbox {
    path: PathBuf,
    next: usize,
    messages: Mbox<BufReader<fs::File>>,
}

/// How much of a file is read to tell what it holds.
const SNIFF_BYTES: u64 = 16 * 1024;

/// What a file holds, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Messages each opened by a `From ` line.
    Mbox,
    /// One message: an RFC 5322 header block first.
    Message,
}

/// Header names of which a real message has at least one in its header block; lines of the form
/// `name: value` alone are not enough (YAML, HTTP dumps, notes).
const MAIL_HEADERS: [&str; 22] = [
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "received",
    "return-path",
    "delivered-to",
    "mime-version",
    "reply-to",
    "sender",
    "in-reply-to",
    "references",
    "x-mailer",
    "user-agent",
    "dkim-signature",
    "authentication-results",
    "x-original-to",
    "envelope-to",
    "thread-topic",
    "content-transfer-encoding",
];

/// What the bytes at the start of a file hold, if mail: an mbox `From ` line, or a header block
/// (header fields and their continuations up to a blank line or the end of `head`) with at least
/// one mail header in it.
pub fn sniff(head: &[u8]) -> Option<Shape> {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let mut lines = head.split_inclusive(|b| *b == b'\n').peekable();
    let first = *lines.peek()?;
    if first.starts_with(b"From ")
        && (mbox::is_from_line(first)
            || head
                .split(|b| *b == b'\n')
                .nth(1)
                .is_some_and(mbox::is_header_line))
    {
        return Some(Shape::Mbox);
    }
    let complete = (head.len() as u64) < SNIFF_BYTES;
    let mut known = false;
    let mut fields = 0;
    for line in lines {
        let whole = line.ends_with(b"\n");
        if !whole && !complete {
            // Cut by the sniff window: says nothing.
            break;
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if fields == 0 {
                return None;
            }
            continue;
        }
        if !mbox::is_header_line(line) {
            return None;
        }
        fields += 1;
        let name = line.split(|b| *b == b':').next().unwrap_or_default();
        known |= MAIL_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_bytes()));
    }
    known.then_some(Shape::Message)
}

/// The first bytes of `path`, for [`sniff`].
fn head_of(path: &Path) -> Result<Vec<u8>, FolderError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(SNIFF_BYTES as usize);
    fs::File::open(path)
        .and_then(|f| f.take(SNIFF_BYTES).read_to_end(&mut head))
        .map_err(io(path))?;
    Ok(head)
}

/// Files whose name says they are mail: read even when they do not look like it, so that the
/// parser's reason reaches the dead-letter topic instead of the file being passed over.
fn named_as_mail(path: &Path) -> bool {
    let in_maildir = path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "cur" || n == "new");
    in_maildir || path.extension().is_some_and(|e| e == "eml" || e == "mbox")
}

impl<'a> Messages<'a> {
    pub fn new(path: &Path, skip: Skip<'a>, max_bytes: usize) -> Result<Messages<'a>, FolderError> {
        let meta = fs::metadata(path).map_err(io(path))?;
        let mut files = Vec::new();
        if meta.is_file() {
            // Given by itself: whatever its name, it must be mail. An empty file is an mbox
            // spool with nothing in it (`/var/mail/klachten` after the client took the mail).
            let head = head_of(path)?;
            if head.iter().all(u8::is_ascii_whitespace) {
                tracing::debug!(path = %path.display(), "empty file, no messages");
            } else if sniff(&head).is_none() {
                return Err(FolderError::NotMail {
                    path: path.to_path_buf(),
                    reason: "neither an email message (RFC 5322 header block) nor an mbox file (`From ` line)",
                });
            } else {
                files.push(path.to_path_buf());
            }
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
            return Some(Ok(Found {
                key,
                bytes: message.bytes,
                size: message.size,
                received: message.received,
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
            // A single message already done is not opened again.
            if (self.skip)(&path.to_string_lossy()) {
                continue;
            }
            let shape = match head_of(&path) {
                Ok(head) => sniff(&head),
                Err(e) => return Some(Err(e)),
            };
            match shape {
                Some(Shape::Mbox) => match fs::File::open(&path) {
                    Ok(file) => {
                        self.mbox = Some(OpenMbox {
                            messages: Mbox::new(
                                BufReader::new(file),
                                self.max_bytes,
                                OVERSIZED_HEAD,
                            ),
                            path,
                            next: 0,
                        });
                        continue;
                    }
                    Err(e) => return Some(Err(io(&path)(e))),
                },
                Some(Shape::Message) => {}
                None if named_as_mail(&path) => {}
                None => {
                    tracing::debug!(path = %path.display(), "not mail, passed over");
                    continue;
                }
            }
            return Some(read_file(&path, self.max_bytes));
        }
    }
}

/// Maildir++ folders that hold no customer's mail: what the organisation sent or drafted, what
/// was thrown away, what the spam filter caught (the usual names of Dovecot, Courier, Outlook
/// and Thunderbird, in English and Dutch). `Sent.2025` and `INBOX.Sent` count as well.
fn is_special_folder(name: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "sent",
        "sent items",
        "sent messages",
        "sent mail",
        "drafts",
        "draft",
        "trash",
        "deleted items",
        "deleted messages",
        "junk",
        "junk e-mail",
        "junk email",
        "spam",
        "templates",
        "outbox",
        "verzonden",
        "verzonden items",
        "concepten",
        "prullenbak",
        "verwijderde items",
        "ongewenste e-mail",
        "postvak uit",
    ];
    name.split('.').any(|part| {
        let part = part.trim().to_lowercase();
        SPECIAL.iter().any(|s| part == *s)
    })
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FolderError> {
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let ft = entry.file_type().map_err(io(&p))?;
        if name == "tmp" && ft.is_dir() {
            // Maildir writers create files in tmp/ and rename them when complete.
            continue;
        }
        if name.starts_with('.') {
            // Maildir++ keeps subfolders as `.Name` beside `cur/` and `new/`; other hidden
            // entries (`.DS_Store`, `.git`, `.uidvalidity`) are not mail.
            let maildir_plus = ft.is_dir() && (p.join("cur").is_dir() || p.join("new").is_dir());
            if !maildir_plus || is_special_folder(name.trim_start_matches('.')) {
                continue;
            }
        }
        if ft.is_dir() {
            collect(&p, out)?;
        } else if ft.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// One message in a file of its own.
fn read_file(path: &Path, max_bytes: usize) -> Result<Found, FolderError> {
    let key = path.to_string_lossy().to_string();
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
        return Ok(Found {
            key,
            bytes: head,
            size,
            received,
        });
    }
    let bytes = fs::read(path).map_err(io(path))?;
    Ok(Found::new(key, bytes).received(received))
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
