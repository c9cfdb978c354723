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

/// Up to `limit` messages under `path`, in a stable order. `skip` tells which keys are already
/// done, so their bytes are not read again. Of a file over `max_bytes` only the beginning is read.
pub fn scan(
    path: &Path,
    skip: &dyn Fn(&str) -> bool,
    limit: usize,
    max_bytes: usize,
) -> Result<Vec<Found>, FolderError> {
    let mut found = Vec::new();
    let meta = fs::metadata(path).map_err(io(path))?;
    if meta.is_file() {
        read_file(path, skip, max_bytes, &mut found)?;
        found.truncate(limit);
        return Ok(found);
    }
    let mut files = Vec::new();
    collect(path, &mut files)?;
    files.sort();
    for f in files {
        if found.len() >= limit {
            break;
        }
        read_file(&f, skip, max_bytes, &mut found)?;
    }
    found.truncate(limit);
    Ok(found)
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

fn read_file(
    path: &Path,
    skip: &dyn Fn(&str) -> bool,
    max_bytes: usize,
    out: &mut Vec<Found>,
) -> Result<(), FolderError> {
    let key = path.to_string_lossy().to_string();
    if is_mbox(path) {
        let file = fs::File::open(path).map_err(io(path))?;
        for (n, message) in
            mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(file)).enumerate()
        {
            let message = message.map_err(io(path))?;
            let key = format!("{key}#{n}");
            if !skip(&key) {
                // 0: the `From ` line has no date that parses.
                let received = i64::try_from(message.internal_date())
                    .ok()
                    .filter(|secs| *secs > 0)
                    .and_then(|secs| Utc.timestamp_opt(secs, 0).single());
                out.push(Found::new(key, message.unwrap_contents()).received(received));
            }
        }
        return Ok(());
    }
    let in_maildir = path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "cur" || n == "new");
    let is_eml = path.extension().is_some_and(|e| e == "eml");
    if !(in_maildir || is_eml) || skip(&key) {
        return Ok(());
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
        out.push(Found {
            key,
            bytes: head,
            size,
            received,
        });
        return Ok(());
    }
    let bytes = fs::read(path).map_err(io(path))?;
    out.push(Found::new(key, bytes).received(received));
    Ok(())
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
}
