//! The guest's serial console, as a file, and its last lines for errors.

use std::fmt;
use std::path::{Path, PathBuf};

/// How many console lines an error carries.
pub const TAIL_LINES: usize = 40;

/// The last lines of the guest's serial console, cleaned of terminal escape
/// sequences, for error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleTail {
    /// The console log, when it is kept after the run.
    pub path: Option<PathBuf>,
    pub lines: Vec<String>,
}

impl ConsoleTail {
    /// Reads the tail of `log`; a log that cannot be read gives no lines
    /// (this is only ever called while reporting another failure).
    pub(crate) fn read(log: &Path, kept: bool) -> ConsoleTail {
        let bytes = fs_err::read(log).unwrap_or_default();
        let text = clean(&bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        ConsoleTail {
            path: kept.then(|| log.to_path_buf()),
            lines: lines[start..].iter().map(|l| l.to_string()).collect(),
        }
    }
}

impl fmt::Display for ConsoleTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lines.is_empty() {
            f.write_str("the guest printed nothing on its serial console")?;
        } else {
            write!(f, "last {} lines of the guest console:", self.lines.len())?;
            for line in &self.lines {
                write!(f, "\n  | {line}")?;
            }
        }
        if let Some(path) = &self.path {
            write!(f, "\nfull console log: {}", path.display())?;
        }
        Ok(())
    }
}

/// Drops ANSI escape sequences (firmware and systemd colour and clear the
/// screen), carriage returns and other control characters.
fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ params final-byte; other escapes: ESC + one char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_carriage_returns_are_dropped() {
        let raw = b"\x1b[2J\x1b[01;01HBdsDxe: loading\r\n\x1b[0;32m  OK  \x1b[0m] Started\r\n";
        assert_eq!(clean(raw), "BdsDxe: loading\n  OK  ] Started\n");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        fs_err::write(&log, text).unwrap();
        let tail = ConsoleTail::read(&log, false);
        assert_eq!(tail.lines.len(), TAIL_LINES);
        assert_eq!(tail.lines[0], "line 60");
        assert_eq!(tail.lines[TAIL_LINES - 1], "line 99");
    }
}
