//! Email source: turns RFC 5322 messages from IMAP mailboxes ([`imap`]), Maildir folders, mbox
//! files and `.eml` files into raw signals.
//!
//! [`parse::parse_message`] is pure: bytes in, a signal (or a reason to skip or reject) out.
//! [`folder`] finds messages on disk; [`worker`] polls a folder, publishes what is new and records
//! each message in the store only after Kafka confirmed it.

pub mod folder;
pub mod imap;
pub mod mbox;
pub mod parse;
pub mod worker;

pub use parse::{parse_message, parse_received, parse_with, Outcome, Rules};
