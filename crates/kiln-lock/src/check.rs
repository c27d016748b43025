//! What changed between a lock and the definition it should match.

use std::fmt;

use crate::model::Lock;

/// One lock input whose value differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Dotted path, e.g. `install` or `parent.lock`.
    pub field: String,
    pub locked: String,
    pub now: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: locked {}, definition has {}",
            self.field, self.locked, self.now
        )
    }
}

/// Compares `lock` with the definition's current inputs (and the parent's
/// current lock digest). Empty when the lock is fresh.
pub fn changes(
    lock: &Lock,
    inputs: &toml::Table,
    checksum: &str,
    parent_lock: Option<&str>,
) -> Vec<Change> {
    let mut out = Vec::new();
    diff_tables("", &lock.inputs, inputs, &mut out);
    if out.is_empty() && lock.checksum != checksum {
        out.push(Change {
            field: "checksum".into(),
            locked: lock.checksum.clone(),
            now: checksum.into(),
        });
    }
    let locked_parent = lock.parent.as_ref().map(|p| p.lock.as_str());
    if locked_parent != parent_lock {
        out.push(Change {
            field: "parent lock".into(),
            locked: locked_parent.unwrap_or("none").into(),
            now: parent_lock.unwrap_or("none").into(),
        });
    }
    out
}

/// Descends into tables so a change names its leaf: `base.suite`, not `base`.
fn diff_tables(prefix: &str, locked: &toml::Table, now: &toml::Table, out: &mut Vec<Change>) {
    let mut keys: Vec<&String> = locked.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let field = format!("{prefix}{key}");
        match (locked.get(key), now.get(key)) {
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => {
                diff_tables(&format!("{field}."), a, b, out)
            }
            (a, b) if a != b => out.push(Change {
                field,
                locked: show(a),
                now: show(b),
            }),
            _ => {}
        }
    }
}

fn show(v: Option<&toml::Value>) -> String {
    match v {
        None => "nothing".into(),
        Some(toml::Value::String(s)) => format!("\"{s}\""),
        Some(v) => v.to_string(),
    }
}
