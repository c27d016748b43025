//! What the catalog commands print: `images`, `show`, `diff`, `promote`,
//! `rollback`, `where` and `history`.

use kiln_build::{Build, Deployment, DiffReport, Promotion, ShowReport, rfc3339};

use crate::output::{json, mib};

/// Builds are named by the first 12 hex digits of their id, as `docker
/// images` does; every command accepts that prefix back.
pub(crate) fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

fn verdict(b: &Build) -> &'static str {
    match &b.last_test {
        Some(t) if t.passed => "passed",
        Some(_) => "failed",
        None => "untested",
    }
}

pub fn images(builds: &[Build], deployments: &[Deployment], as_json: bool) {
    if as_json {
        return json(&builds);
    }
    if builds.is_empty() {
        println!("no builds recorded");
        return;
    }
    println!(
        "{:<12}  {:<16} {:<12} {:<20}  {:<8}  ENVIRONMENTS",
        "BUILD", "IMAGE", "VERSION", "BUILT", "TEST"
    );
    for b in builds {
        let envs: Vec<&str> = deployments
            .iter()
            .filter(|d| d.build == b.id)
            .map(|d| d.env.as_str())
            .collect();
        println!(
            "{:<12}  {:<16} {:<12} {:<20}  {:<8}  {}",
            short(&b.id),
            b.name,
            b.version,
            rfc3339(b.last_built_at),
            verdict(b),
            envs.join(", ")
        );
    }
}

pub fn show(r: &ShowReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let b = &r.build;
    println!("build       {}", b.id);
    println!("image       {} {}", b.name, b.version);
    if b.built_at == b.last_built_at {
        println!("built       {}", rfc3339(b.built_at));
    } else {
        println!(
            "built       {} (again {})",
            rfc3339(b.built_at),
            rfc3339(b.last_built_at)
        );
    }
    println!("kiln        {}", b.kiln_version);
    println!(
        "commit      {}",
        b.git_commit.as_deref().unwrap_or("(not in git)")
    );
    println!("definition  {}", b.definition_digest);
    println!("lock        {}", b.lock_digest);
    println!("source date {}", rfc3339(b.source_date_epoch));
    println!(
        "contents    {} packages, {} files, {} installed",
        r.packages,
        r.files,
        mib(r.installed_size)
    );
    println!("outputs:");
    if b.outputs.is_empty() {
        println!("  none (built only as a parent)");
    }
    for o in &b.outputs {
        println!(
            "  {:<12} {}  {}  {}",
            o.format,
            o.digest,
            mib(o.size),
            o.path
        );
    }
    println!("tests:");
    if r.tests.is_empty() {
        println!("  none");
    }
    for t in &r.tests {
        let boot = t
            .boot_seconds
            .map(|s| format!(", ready in {s:.1}s"))
            .unwrap_or_default();
        let mark = if t.passed { "passed" } else { "failed" };
        println!("  {}  {mark} ({}{boot})", rfc3339(t.at), t.accel);
    }
    println!("environments:");
    if r.environments.is_empty() {
        println!("  none");
    }
    for d in &r.environments {
        println!("  {:<16} since {} by {}", d.env, rfc3339(d.since), d.by);
    }
    // Only when there are some, so output from before `kiln push` is unchanged.
    if !r.pushes.is_empty() {
        println!("pushed:");
    }
    for p in &r.pushes {
        println!(
            "  {}  {} ({})",
            rfc3339(p.at),
            p.reference,
            p.tags.join(", ")
        );
    }
    println!("lineage:");
    for (depth, l) in r.lineage.iter().enumerate() {
        let arrow = if depth == 0 { "" } else { "from " };
        println!(
            "  {:indent$}{arrow}{} {}  {}",
            "",
            l.name,
            l.version,
            short(&l.id),
            indent = depth * 2
        );
    }
}

/// File lists longer than this are cut in text unless `--files`.
const FILES_SHOWN: usize = 20;

pub fn diff(r: &DiffReport, all_files: bool, as_json: bool) {
    if as_json {
        return json(r);
    }
    let d = &r.diff;
    println!(
        "{} {} ({}) → {} {} ({})",
        r.from.name,
        r.from.version,
        short(&r.from.id),
        r.to.name,
        r.to.version,
        short(&r.to.id)
    );
    if d.is_empty() {
        println!("no changes");
        return;
    }
    println!(
        "packages: {} added, {} removed, {} upgraded, {} downgraded",
        d.packages_added.len(),
        d.packages_removed.len(),
        d.upgraded.len(),
        d.downgraded.len()
    );
    for p in &d.packages_added {
        println!("  + {} {} ({})", p.name, p.version, p.architecture);
    }
    for p in &d.packages_removed {
        println!("  - {} {} ({})", p.name, p.version, p.architecture);
    }
    for p in &d.upgraded {
        println!("  ↑ {} {} → {}", p.name, p.from, p.to);
    }
    for p in &d.downgraded {
        println!("  ↓ {} {} → {}", p.name, p.from, p.to);
    }
    println!(
        "files: {} added, {} removed, {} changed",
        d.files_added.len(),
        d.files_removed.len(),
        d.files_changed.len()
    );
    let limit = if all_files { usize::MAX } else { FILES_SHOWN };
    let mut cut = 0;
    for (mark, list) in [("+", &d.files_added), ("-", &d.files_removed)] {
        for f in list.iter().take(limit) {
            println!("  {mark} {} ({}, {} bytes)", f.path, f.kind, f.size);
        }
        cut += list.len().saturating_sub(limit);
    }
    for f in d.files_changed.iter().take(limit) {
        println!("  ~ {}: {}", f.path, f.what.join(", "));
    }
    cut += d.files_changed.len().saturating_sub(limit);
    if cut > 0 {
        println!("  … and {cut} more (--files lists them all)");
    }
    println!(
        "size: installed {}, files {}",
        signed_mib(d.installed_size_change),
        signed_mib(d.file_bytes_change)
    );
}

fn signed_mib(bytes: i64) -> String {
    let sign = if bytes < 0 { "-" } else { "+" };
    format!("{sign}{}", mib(bytes.unsigned_abs()))
}

pub fn promotion(p: &Promotion, as_json: bool) {
    if as_json {
        return json(p);
    }
    let from = p
        .previous
        .as_deref()
        .map(|prev| format!(" (was {})", short(prev)))
        .unwrap_or_default();
    let forced = if p.forced {
        " — forced past a failed test"
    } else {
        ""
    };
    let verb = match p.kind {
        kiln_build::PromotionKind::Promote => "promoted",
        kiln_build::PromotionKind::Rollback => "rolled back",
    };
    println!(
        "{}: {verb} {} {} ({}){from}{forced}",
        p.env,
        p.name,
        p.version,
        short(&p.build)
    );
}

pub fn deployments(list: &[Deployment], as_json: bool) {
    if as_json {
        return json(&list);
    }
    if list.is_empty() {
        println!("no environment runs a build yet");
        println!("hint: `kiln promote BUILD --to ENV` records one");
        return;
    }
    println!(
        "{:<16} {:<16} {:<12} {:<12}  {:<20}  BY",
        "ENVIRONMENT", "IMAGE", "VERSION", "BUILD", "SINCE"
    );
    for d in list {
        println!(
            "{:<16} {:<16} {:<12} {:<12}  {:<20}  {}",
            d.env,
            d.name,
            d.version,
            short(&d.build),
            rfc3339(d.since),
            d.by
        );
    }
}

pub fn history(env: &str, list: &[Promotion], as_json: bool) {
    if as_json {
        return json(&list);
    }
    if list.is_empty() {
        println!("nothing was ever promoted to {env}");
        return;
    }
    println!(
        "{:>4}  {:<20}  {:<8}  {:<16} {:<12} {:<12}  {:<12}  BY",
        "SEQ", "WHEN", "KIND", "IMAGE", "VERSION", "BUILD", "PREVIOUS"
    );
    for p in list {
        let mut by = p.who.clone();
        if p.forced {
            by.push_str(" (forced)");
        }
        if let Some(note) = &p.note {
            by.push_str(&format!(" — {note}"));
        }
        println!(
            "{:>4}  {:<20}  {:<8}  {:<16} {:<12} {:<12}  {:<12}  {by}",
            p.seq,
            rfc3339(p.at),
            p.kind.as_str(),
            p.name,
            p.version,
            short(&p.build),
            p.previous.as_deref().map(short).unwrap_or("-"),
        );
    }
}
