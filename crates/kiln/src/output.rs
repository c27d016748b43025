//! Everything the binary prints: reports on stdout, progress and errors on
//! stderr.

use std::error::Error as _;
use std::io::IsTerminal;

use kiln_build::{CheckReport, LockReport};

/// Progress lines on a terminal; nothing in logs or with `--json`.
pub struct Progress {
    show: bool,
}

impl Progress {
    pub fn new(json: bool) -> Progress {
        Progress {
            show: !json && std::io::stderr().is_terminal(),
        }
    }
}

impl kiln_build::Progress for Progress {
    fn step(&self, message: &str) {
        if self.show {
            eprintln!("  {message}");
        }
    }
}

pub fn error(e: &kiln_build::Error) {
    eprintln!("error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
        source = s.source();
    }
    if let Some(hint) = e.hint() {
        eprintln!("hint: {hint}");
    }
}

fn json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: serialising the report: {e}"),
    }
}

pub fn lock(r: &LockReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let suites: Vec<String> = r
        .suites
        .iter()
        .map(|s| format!("{} ({})", s.name, s.date))
        .collect();
    println!(
        "locked {}: {} packages from {} in {:.1}s",
        r.image,
        r.packages,
        suites.join(", "),
        r.seconds
    );
    for c in &r.changes {
        match (&c.from, &c.to) {
            (None, Some(to)) => println!("  + {} {to}", c.name),
            (Some(from), None) => println!("  - {} {from}", c.name),
            (Some(from), Some(to)) => println!("  ~ {} {from} -> {to}", c.name),
            (None, None) => {}
        }
    }
    if r.written {
        println!("wrote {}", r.lockfile.display());
    } else {
        println!("{} is up to date", r.lockfile.display());
    }
}

pub fn check(r: &CheckReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    if r.fresh {
        println!("{} is up to date", r.lockfile.display());
    } else {
        println!("{} is stale:", r.lockfile.display());
        for c in &r.changes {
            println!("  {c}");
        }
        println!("hint: run `kiln lock` and commit the result");
    }
}
