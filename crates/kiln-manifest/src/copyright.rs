//! Reading a package's copyright file for the licences it names.
//!
//! Machine-readable (DEP-5) files name licences in `License` fields; the
//! rest are prose, read by what they cite from `/usr/share/common-licenses/`
//! and a few unmistakable phrases. The names stay Debian's here;
//! [`crate::license`] maps them to SPDX.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::deb822;
use crate::inroot;

/// A licence as a copyright file names it, with its text when the file
/// gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub name: String,
    pub text: Option<String>,
}

/// The licences the package's copyright file names; none when it has no
/// copyright file or names nothing recognisable.
pub(crate) fn of_package(root: &Path, package: &str) -> std::io::Result<Vec<Found>> {
    let doc = format!("/usr/share/doc/{package}/copyright");
    let Some(path) = inroot::resolve(root, &doc)? else {
        return Ok(Vec::new());
    };
    if !fs_err::metadata(&path)?.is_file() {
        return Ok(Vec::new());
    }
    // Copyright files predate UTF-8 in places; a stray Latin-1 byte must not
    // lose the package's licences.
    let bytes = fs_err::read(&path)?;
    Ok(from_text(&String::from_utf8_lossy(&bytes)))
}

pub(crate) fn from_text(text: &str) -> Vec<Found> {
    let paragraphs = deb822::parse(text);
    let machine_readable = paragraphs
        .first()
        .is_some_and(|p| p.get("Format").is_some() || p.get("Format-Specification").is_some());
    let found = if machine_readable {
        dep5(&paragraphs)
    } else {
        Vec::new()
    };
    if found.is_empty() {
        free_form(text)
    } else {
        found
    }
}

/// A machine-readable (DEP-5) file: names from the header and `Files`
/// paragraphs; texts from any paragraph whose `License` names one licence.
fn dep5(paragraphs: &[deb822::Paragraph]) -> Vec<Found> {
    let mut names: Vec<String> = Vec::new();
    let mut texts: HashMap<String, String> = HashMap::new();
    for (i, p) in paragraphs.iter().enumerate() {
        let Some(value) = p.get("License") else {
            continue;
        };
        let first = deb822::first_line(value);
        if first.is_empty() {
            continue;
        }
        let body = deb822::body(value);
        let here = if is_prose(first) {
            // Some files put the licence's text where its name belongs.
            let text = if body.is_empty() {
                first.to_string()
            } else {
                format!("{first}\n{body}")
            };
            texts.entry(first.to_string()).or_insert(text);
            vec![first.to_string()]
        } else {
            let here = names_in(first);
            if let ([one], false) = (here.as_slice(), body.is_empty()) {
                texts.entry(one.clone()).or_insert(body);
            }
            here
        };
        if i == 0 || p.get("Files").is_some() {
            names.extend(here);
        }
    }
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .map(|name| Found {
            text: texts.get(&name).cloned(),
            name,
        })
        .collect()
}

/// The licence names in a DEP-5 `License` line: `GPL-2+ or Artistic`,
/// `BSD-3-clause and Expat`, `GPL-2+ with OpenSSL exception`. Which of them
/// apply is not kept: the manifest records each licence that appears.
fn names_in(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut flush = |cur: &mut Vec<&str>| {
        if !cur.is_empty() {
            names.push(cur.join(" "));
            cur.clear();
        }
    };
    for word in line.split_whitespace() {
        let (word, ends) = match word.strip_suffix(',') {
            Some(w) => (w, true),
            None => (word, false),
        };
        let word = word.trim_matches(['(', ')']);
        if is_operator(word) {
            flush(&mut cur);
        } else if !word.is_empty() {
            cur.push(word);
        }
        if ends {
            flush(&mut cur);
        }
    }
    flush(&mut cur);
    names
}

fn is_operator(word: &str) -> bool {
    ["or", "and", "and/or", "|", "&"]
        .iter()
        .any(|op| word.eq_ignore_ascii_case(op))
}

/// Whether a `License` line is a sentence rather than a licence
/// expression: splitting prose at "and" would invent licences.
fn is_prose(line: &str) -> bool {
    const IN_NAMES: [&str; 9] = [
        "with",
        "exception",
        "clause",
        "like",
        "style",
        "public",
        "domain",
        "license",
        "licence",
    ];
    line.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| {
            !w.is_empty()
                && w.chars().all(|c| c.is_ascii_lowercase())
                && !is_operator(w)
                && !IN_NAMES.contains(w)
        })
        .count()
        >= 3
}

/// A free-form file: what it cites from `/usr/share/common-licenses/`, and
/// a few unmistakable phrases.
fn free_form(text: &str) -> Vec<Found> {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = flat.to_ascii_lowercase();
    let any_later = lower.contains("any later version");
    let mut names: Vec<String> = Vec::new();
    const DIR: &str = "/usr/share/common-licenses/";
    for (at, _) in flat.match_indices(DIR) {
        let cited: String = flat[at + DIR.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_'))
            .collect();
        let cited = cited.trim_end_matches('.');
        let name = match cited {
            "" => continue,
            // Debian's file of that name is the 3-clause licence.
            "BSD" => "BSD-3-clause".to_string(),
            "GPL" | "LGPL" => match version_near(&lower) {
                Some(v) => format!("{cited}-{v}"),
                None => cited.to_string(),
            },
            other => other.to_string(),
        };
        let gnu = name.contains("GPL") || name.starts_with("GFDL");
        let name = if any_later && gnu && !name.ends_with('+') {
            format!("{name}+")
        } else {
            name
        };
        names.push(name);
    }
    if lower
        .contains("permission is hereby granted, free of charge, to any person obtaining a copy")
    {
        names.push("Expat".to_string());
    }
    if lower.contains("this is free and unencumbered software released into the public domain") {
        names.push("Unlicense".to_string());
    } else if lower.contains("public domain") {
        names.push("public-domain".to_string());
    }
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .map(|name| Found { name, text: None })
        .collect()
}

/// The GNU licence version that prose such as "either version 2 of the
/// License" states.
fn version_near(lower: &str) -> Option<&'static str> {
    for (phrase, v) in [
        ("version 2.1", "2.1"),
        ("version 2", "2"),
        ("version 3", "3"),
    ] {
        if lower.contains(&format!("either {phrase}")) || lower.contains(&format!("under {phrase}"))
        {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests;
