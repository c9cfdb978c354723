//! `signaal import` as a new user runs it (issue 12): the profile spelled as in the config,
//! folders for every channel, the counts and their reasons at the end, `--explain`, a non-zero
//! exit for a file it cannot read or an export whose every row was rejected, and error messages
//! cut to a readable size however large the input they quote. Every fixture is written here.
//! Needs only the binary (`cargo build -p signaal`), no Kafka or database: all runs are dry runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::{signaal_bin, Result};

/// What one `signaal import … --dry-run` run gave.
struct Run {
    ok: bool,
    code: Option<i32>,
    /// One parsed envelope per stdout line.
    envelopes: Vec<serde_json::Value>,
    stderr: String,
}

impl Run {
    /// `signal.<field>` of every envelope, in output order.
    fn field(&self, field: &str) -> Vec<String> {
        self.envelopes
            .iter()
            .map(|v| v["signal"][field].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn import(args: &[&str]) -> Result<Run> {
    import_with(None, args)
}

/// Runs `signaal [--config CONFIG] import ARGS… --dry-run`. The working directory is a fresh
/// temporary one, so no `signaal.toml` of the checkout is picked up.
fn import_with(config: Option<&Path>, args: &[&str]) -> Result<Run> {
    let cwd = tempfile::tempdir()?;
    let mut cmd = Command::new(signaal_bin()?);
    cmd.current_dir(cwd.path()).env_remove("SIGNAAL_CONFIG");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.arg("import").args(args).arg("--dry-run").output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut envelopes = Vec::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        envelopes.push(
            serde_json::from_str(line)
                .map_err(|e| format!("stdout line is not an envelope ({e}): {line}"))?,
        );
    }
    Ok(Run {
        ok: out.status.success(),
        code: out.status.code(),
        envelopes,
        stderr,
    })
}

fn write(dir: &Path, name: &str, content: &str) -> Result<String> {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&p, content)?;
    Ok(p.to_string_lossy().into_owned())
}

/// `Master.csv` as `cdr_csv` writes it with `loguniqueid` and `loguserfield` (18 columns, no
/// header): accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start,
/// answer, end, duration, billsec, disposition, amaflags, uniqueid, userfield.
const MASTER_CSV: &str = concat!(
    "\"\",\"0687654321\",\"300\",\"from-trunk\",\"\"\"Anouk\"\" <0687654321>\",",
    "\"PJSIP/trunk-0000a1\",\"PJSIP/2001-0000a2\",\"Queue\",\"balie,t,,,600\",",
    "\"2026-10-05 14:02:10\",\"2026-10-05 14:09:40\",\"2026-10-05 14:15:00\",530,320,",
    "\"ANSWERED\",\"DOCUMENTATION\",\"1759672930.311\",\"paspoort kwijt, wil spoedafspraak\"\n",
    "\"\",\"0201112233\",\"300\",\"from-trunk\",\"\"\"\"\" <0201112233>\",",
    "\"PJSIP/trunk-0000a3\",\"\",\"Queue\",\"balie,t,,,600\",",
    "\"2026-10-05 14:20:00\",\"\",\"2026-10-05 14:31:00\",660,0,",
    "\"NO ANSWER\",\"DOCUMENTATION\",\"1759673999.312\",\"\"\n",
);

/// Item 17: `--profile` takes the config's spelling (`asterisk_cdr`) as well as the command
/// line's (`asterisk-cdr`), with the same result.
#[test]
fn the_profile_is_taken_in_the_config_spelling_too() -> Result {
    let dir = tempfile::tempdir()?;
    let master = write(dir.path(), "Master.csv", MASTER_CSV)?;
    let config_spelling = import(&["phone", "--profile", "asterisk_cdr", &master])?;
    assert!(
        config_spelling.ok,
        "`--profile asterisk_cdr` refused: {}",
        config_spelling.stderr
    );
    let cli_spelling = import(&["phone", "--profile", "asterisk-cdr", &master])?;
    assert!(cli_spelling.ok, "{}", cli_spelling.stderr);
    assert_eq!(
        config_spelling.envelopes.len(),
        2,
        "{}",
        config_spelling.stderr
    );
    assert_eq!(config_spelling.field("id"), cli_spelling.field("id"));
    for (spelling, profile) in [
        ("generic_csv", "phone"),
        ("genesys_cloud", "phone"),
        ("generic_ndjson", "phone"),
    ] {
        let run = import(&[profile, "--profile", spelling, "/nonexistent"])?;
        assert!(
            !run.stderr.contains("invalid value"),
            "`--profile {spelling}` refused: {}",
            run.stderr
        );
    }
    Ok(())
}

/// An X API v2 recent-search page with one post.
fn x_page(id: &str, text: &str) -> String {
    format!(
        r#"{{"data":[{{"id":"{id}","text":"{text}","author_id":"4242","created_at":"2026-10-05T08:00:00.000Z","conversation_id":"{id}","edit_history_tweet_ids":["{id}"]}}],"includes":{{"users":[{{"id":"4242","name":"Noor","username":"noor_b"}}]}},"meta":{{"newest_id":"{id}","oldest_id":"{id}","result_count":1}}}}"#
    )
}

/// A Graph API `/{page-id}/feed` page with one visitor post.
fn feed_page(id: &str, text: &str) -> String {
    format!(
        r#"{{"data":[{{"created_time":"2026-10-05T09:00:00+0000","from":{{"name":"Daan","id":"7000000000000001"}},"id":"{id}","message":"{text}"}}],"paging":{{"cursors":{{"before":"QVFIUmx","after":"QVFIUmy"}}}}}}"#
    )
}

/// A page webhook delivery (the POST body) with one visitor comment.
fn webhook_delivery(comment_id: &str, text: &str) -> String {
    format!(
        r#"{{"object":"page","entry":[{{"id":"5550001","time":1759654800,"changes":[{{"field":"feed","value":{{"from":{{"id":"7000000000000002","name":"Lotte"}},"item":"comment","comment_id":"{comment_id}","post_id":"5550001_10","parent_id":"5550001_10","verb":"add","created_time":1759654700,"message":"{text}"}}}}]}}]}}"#
    )
}

fn calls_csv(call_id: &str, note: &str) -> String {
    format!("call_id;started_at;caller;notes\n{call_id};05-10-2026 10:00;0612345678;{note}\n")
}

/// Item 17: `twitter`, `facebook`, `facebook-webhook` and `phone` take folders, as the help
/// says: every file directly in the folder, in name order; hidden files, files still being
/// written (`.part`, `.tmp`) and subfolders (a phone inbox's `done/`) are left alone.
#[test]
fn folders_are_read_file_by_file_in_name_order() -> Result {
    let cases: [(&str, &[&str], [String; 2]); 4] = [
        (
            "twitter",
            &[],
            [
                x_page("1842000000000000001", "eerste bestand"),
                x_page("1842000000000000002", "tweede bestand"),
            ],
        ),
        (
            "facebook",
            &["--page-id", "5550001"],
            [
                feed_page("5550001_21", "eerste bestand"),
                feed_page("5550001_22", "tweede bestand"),
            ],
        ),
        (
            "facebook-webhook",
            &["--page-id", "5550001"],
            [
                webhook_delivery("5550001_10_31", "eerste bestand"),
                webhook_delivery("5550001_10_32", "tweede bestand"),
            ],
        ),
        (
            "phone",
            &[],
            [
                calls_csv("F-1", "eerste bestand"),
                calls_csv("F-2", "tweede bestand"),
            ],
        ),
    ];
    for (channel, extra, [first, second]) in cases {
        let dir = tempfile::tempdir()?;
        let folder = dir.path().join(channel);
        // Written second-first: the order must come from the names.
        let ext = if channel == "phone" { "csv" } else { "json" };
        write(&folder, &format!("2-later.{ext}"), &second)?;
        write(&folder, &format!("1-earlier.{ext}"), &first)?;
        write(&folder, ".DS_Store", "\0\0\x01Bud1")?;
        write(&folder, "3-upload.json.part", "{\"data\":[{\"id\"")?;
        write(&folder, "done/0-old.json", "not read: a subfolder")?;
        let mut args = vec![channel];
        args.extend_from_slice(extra);
        let folder = folder.to_string_lossy().into_owned();
        args.push(&folder);
        let run = import(&args)?;
        assert!(
            run.ok,
            "`import {channel}` of a folder failed: {}",
            run.stderr
        );
        assert_eq!(
            run.field("text"),
            ["eerste bestand", "tweede bestand"],
            "`import {channel}` of a folder: {}",
            run.stderr
        );
    }
    Ok(())
}

/// Item 17: without `--page-id` the page's own posts cannot be left out; the import says so.
#[test]
fn facebook_without_a_page_id_warns_that_own_posts_stay_in() -> Result {
    let dir = tempfile::tempdir()?;
    let feed = write(
        dir.path(),
        "feed.json",
        &feed_page("5550001_21", "waar blijft mijn pas"),
    )?;
    let without = import(&["facebook", &feed])?;
    assert!(without.ok, "{}", without.stderr);
    assert!(
        without.stderr.contains("--page-id") && without.stderr.contains("own posts"),
        "no warning without `--page-id`: {}",
        without.stderr
    );
    let with = import(&["facebook", "--page-id", "5550001", &feed])?;
    assert!(with.ok, "{}", with.stderr);
    assert!(
        !with.stderr.contains("--page-id"),
        "warned although `--page-id` was given: {}",
        with.stderr
    );
    let delivery = write(
        dir.path(),
        "delivery.json",
        &webhook_delivery("5550001_10_31", "geen reactie"),
    )?;
    let webhook = import(&["facebook-webhook", &delivery])?;
    assert!(
        webhook.stderr.contains("--page-id"),
        "no warning for a webhook delivery without `--page-id`: {}",
        webhook.stderr
    );
    Ok(())
}

/// Item 12 (the command's part): a file the profile cannot read fails the import with its
/// reason, and the other files are still read: one stray file does not hold back the rest.
#[test]
fn a_file_that_cannot_be_read_fails_the_import_and_the_rest_is_read() -> Result {
    let dir = tempfile::tempdir()?;
    let first = write(dir.path(), "a.csv", &calls_csv("U-1", "eerste"))?;
    // A wrong file: no `started_at` column (a report rather than a call export).
    let wrong = write(dir.path(), "b.csv", "week;gesprekken\n41;1200\n")?;
    let last = write(dir.path(), "c.csv", &calls_csv("U-3", "laatste"))?;
    let run = import(&["phone", &first, &wrong, &last])?;
    assert!(!run.ok, "exit 0 with an unreadable file: {}", run.stderr);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        run.field("text"),
        ["eerste", "laatste"],
        "the files around the unreadable one: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("b.csv") && run.stderr.contains("started_at"),
        "the reason names the file and what is missing: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 of 3 files could not be read"),
        "{}",
        run.stderr
    );
    Ok(())
}

/// Item 12 with the readers' part: error bodies and files of another kind are not read as empty
/// pages. (Relies on the social and phone readers refusing these shapes.)
#[test]
fn error_bodies_and_files_of_another_kind_fail_the_import() -> Result {
    let dir = tempfile::tempdir()?;
    let x401 = write(
        dir.path(),
        "x-401.json",
        r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#,
    )?;
    let empty = write(dir.path(), "empty.json", "[]")?;
    let genesys = write(
        dir.path(),
        "conversations.json",
        r#"{"conversations":[{"conversationId":"6b1f3c1e-0000-4000-8000-000000000001","conversationStart":"2026-10-05T08:00:00.000Z","participants":[]}],"totalHits":1}"#,
    )?;
    for (args, what) in [
        (vec!["twitter", x401.as_str()], "an X 401 body"),
        (vec!["twitter", empty.as_str()], "`[]` as an X page"),
        (
            vec!["facebook", "--page-id", "5550001", empty.as_str()],
            "`[]` as a feed page",
        ),
        (
            vec!["phone", "--profile", "twilio", genesys.as_str()],
            "a Genesys page given as Twilio",
        ),
    ] {
        let run = import(&args)?;
        assert!(!run.ok, "{what} was accepted: {}", run.stderr);
        assert!(run.envelopes.is_empty(), "{what} gave signals");
        assert!(
            run.stderr.contains("not imported:"),
            "{what}: no reason given: {}",
            run.stderr
        );
    }
    Ok(())
}

/// A mail from a customer, an auto-reply and a bounce: one signal, two skipped.
fn mails(dir: &Path) -> Result<()> {
    write(
        dir,
        "1-klacht.eml",
        "From: Fatima de Wit <fatima@example.nl>\r\nTo: klachten@gemeente.example\r\n\
         Subject: Afspraak niet nagekomen\r\nDate: Mon, 05 Oct 2026 09:12:00 +0200\r\n\
         Message-ID: <k1@example.nl>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         De monteur is niet gekomen en niemand belde af.\r\n",
    )?;
    write(
        dir,
        "2-afwezig.eml",
        "From: Jeroen Smit <jeroen@example.nl>\r\nTo: klachten@gemeente.example\r\n\
         Subject: Afwezig: uw melding\r\nDate: Mon, 05 Oct 2026 09:13:00 +0200\r\n\
         Message-ID: <a1@example.nl>\r\nAuto-Submitted: auto-replied\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nIk ben tot 12 oktober afwezig.\r\n",
    )?;
    write(
        dir,
        "3-bounce.eml",
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.nl>\r\n\
         To: klachten@gemeente.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Date: Mon, 05 Oct 2026 09:14:00 +0200\r\nMessage-ID: <b1@mx.example.nl>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"BND\"\r\n\r\n--BND\r\nContent-Type: text/plain\r\n\r\n\
         The mail could not be delivered.\r\n--BND\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.nl\r\n\r\nFinal-Recipient: rfc822; niemand@example.nl\r\n\
         Action: failed\r\nStatus: 5.1.1\r\n--BND--\r\n",
    )?;
    Ok(())
}

/// Item 16: the closing line gives what was read and what became of it, skipped items by reason;
/// `--explain` says for each skipped item why.
#[test]
fn the_counts_give_skips_by_reason_and_explain_names_each() -> Result {
    let dir = tempfile::tempdir()?;
    mails(dir.path())?;
    let folder = dir.path().to_string_lossy().into_owned();
    let run = import(&["email", &folder, "--explain"])?;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        run.field("subject"),
        ["Afspraak niet nagekomen"],
        "{}",
        run.stderr
    );
    let summary = run
        .stderr
        .lines()
        .find(|l| l.starts_with("read "))
        .ok_or_else(|| format!("no closing line: {}", run.stderr))?;
    assert_eq!(
        summary,
        "read 3 items: would publish 1 signal, 0 rejected, 2 skipped \
         (auto_submitted: 1, delivery_status: 1)"
    );
    for (file, reason) in [
        ("2-afwezig.eml", "auto_submitted"),
        ("3-bounce.eml", "delivery_status"),
    ] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("skipped ") && l.contains(file) && l.ends_with(reason)),
            "`--explain` does not say why `{file}` was skipped: {}",
            run.stderr
        );
    }
    // Without `--explain` the counts only.
    let quiet = import(&["email", &folder])?;
    assert!(
        !quiet.stderr.lines().any(|l| l.starts_with("skipped ")),
        "{}",
        quiet.stderr
    );
    Ok(())
}

/// Item 16: an export whose every row is rejected (a wrong profile or date format) fails the
/// import instead of looking like an empty one.
#[test]
fn every_row_rejected_fails_the_import() -> Result {
    let dir = tempfile::tempdir()?;
    let csv = write(
        dir.path(),
        "calls.csv",
        "call_id;started_at;caller;notes\nR-1;gisteren;0612345678;boos\nR-2;vorige week;0612345679;blij\n",
    )?;
    let run = import(&["phone", &csv])?;
    assert!(!run.ok, "every row rejected, exit 0: {}", run.stderr);
    assert!(
        run.stderr
            .contains("read 2 items: would publish 0 signals, 2 rejected, 0 skipped"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing to publish"), "{}", run.stderr);
    // One good row among them is a partial export, not a failure.
    let mixed = write(
        dir.path(),
        "mixed.csv",
        "call_id;started_at;caller;notes\nR-1;gisteren;0612345678;boos\nR-3;05-10-2026 10:00;0612345670;blij\n",
    )?;
    let run = import(&["phone", &mixed])?;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.envelopes.len(), 1);
    Ok(())
}

/// Item 20: an error that quotes its input (a 300 KB header, a 300 KB field, a 300 KB config
/// line) is cut to a readable size on stderr, and still says what went wrong where.
#[test]
fn error_messages_are_cut_to_a_readable_size() -> Result {
    const HUGE: usize = 300_000;
    const READABLE: usize = 8 * 1024;
    let dir = tempfile::tempdir()?;
    let noise = "x".repeat(HUGE);

    let header = write(dir.path(), "header.csv", &format!("{noise};caller\n1;2\n"))?;
    let run = import(&["phone", &header])?;
    assert!(!run.ok, "{}", &run.stderr[..run.stderr.len().min(500)]);
    assert!(
        run.stderr.len() < READABLE,
        "a bad header gives {} bytes of errors",
        run.stderr.len()
    );
    assert!(run.stderr.contains("header.csv"), "{}", run.stderr);

    let field = write(
        dir.path(),
        "field.csv",
        &format!(
            "call_id;started_at;caller;notes\nH-1;{noise};0612345678;boos\nH-2;05-10-2026 10:00;0612345670;blij\n"
        ),
    )?;
    let run = import(&["phone", &field])?;
    assert!(
        run.stderr.len() < READABLE,
        "a bad field gives {} bytes of errors",
        run.stderr.len()
    );
    assert!(run.stderr.contains("field.csv:2"), "{}", run.stderr);
    assert_eq!(run.envelopes.len(), 1, "{}", run.stderr);

    // The binary's own last line: a config it cannot parse, quoting the line.
    let config = write(
        dir.path(),
        "signaal.toml",
        &format!("[bus]\nbrokers = \"{noise}\n"),
    )?;
    let run = import_with(Some(Path::new(&config)), &["twitter", &header])?;
    assert!(!run.ok);
    assert!(
        run.stderr.len() < READABLE,
        "a bad config gives {} bytes of errors",
        run.stderr.len()
    );
    assert!(run.stderr.starts_with("signaal: "), "{}", run.stderr);
    Ok(())
}
