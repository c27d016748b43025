//! What the fleet commands print: the graph as a tree, JSON or Graphviz.

use kiln_build::{Pending, Rollout, RolloutImage, Running, rfc3339};
use kiln_fleet::{EdgeKind, Graph, ImageNode, OutdatedReport, Plan, RebuildReport, Status, Tested};

use crate::output;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Text,
    Json,
    Dot,
}

pub fn graph(graph: &Graph, format: GraphFormat) {
    match format {
        GraphFormat::Json => output::json(graph),
        GraphFormat::Dot => print!("{}", dot(graph)),
        GraphFormat::Text => print!("{}", tree(graph)),
    }
}

fn tree(graph: &Graph) -> String {
    let mut out = String::new();
    for root in graph.images.iter().filter(|i| i.parent.is_none()) {
        branch(graph, root, "", None, &mut out);
    }
    if !graph.fragments.is_empty() {
        out.push_str("fragments:\n");
        for f in &graph.fragments {
            out.push_str(&format!(
                "  {}  included by {}\n",
                f.path,
                f.included_by.join(", ")
            ));
        }
    }
    out
}

/// One image and, below it, the images built on it; `last` is `None` for
/// a root, else whether this is its parent's last child.
fn branch(graph: &Graph, image: &ImageNode, prefix: &str, last: Option<bool>, out: &mut String) {
    let (connector, below) = match last {
        None => ("", String::new()),
        Some(true) => ("└─ ", format!("{prefix}   ")),
        Some(false) => ("├─ ", format!("{prefix}│  ")),
    };
    let includes = if image.includes.is_empty() {
        String::new()
    } else {
        format!("  + {}", image.includes.join(", "))
    };
    out.push_str(&format!(
        "{prefix}{connector}{} {}  ({}){includes}\n",
        image.name, image.version, image.dir
    ));
    for (i, child) in image.children.iter().enumerate() {
        if let Some(node) = graph.image(child) {
            let last = i + 1 == image.children.len();
            branch(graph, node, &below, Some(last), out);
        }
    }
}

fn dot(graph: &Graph) -> String {
    let mut out = String::from("digraph kiln {\n  rankdir=BT;\n");
    for image in &graph.images {
        out.push_str(&format!(
            "  {} [shape=box, label={}];\n",
            quote(&image.name),
            quote(&format!("{} {}", image.name, image.version))
        ));
    }
    for f in &graph.fragments {
        out.push_str(&format!("  {} [shape=note];\n", quote(&f.path)));
    }
    for edge in &graph.edges {
        let style = match edge.kind {
            EdgeKind::From => "",
            EdgeKind::Include => " [style=dashed]",
        };
        out.push_str(&format!(
            "  {} -> {}{style};\n",
            quote(&edge.from),
            quote(&edge.to)
        ));
    }
    out.push_str("}\n");
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn outdated(report: &OutdatedReport, json: bool) {
    if json {
        return output::json(report);
    }
    for image in &report.images {
        if !image.is_outdated() {
            println!("{} {}: fresh", image.name, image.version);
            continue;
        }
        let security = image.pending.iter().filter(|p| p.security).count()
            + image
                .inherited
                .iter()
                .filter(|i| i.pending.security)
                .count();
        println!(
            "{} {}: {} outdated, {} inherited ({security} security)",
            image.name,
            image.version,
            image.pending.len(),
            image.inherited.len()
        );
        for p in &image.pending {
            println!("  {}", pending(p));
        }
        for i in &image.inherited {
            println!("  {}  (from {})", pending(&i.pending), i.from);
        }
    }
}

pub fn running(running: &[Running], json: bool) {
    if json {
        return output::json(&serde_json::json!({ "environments": running }));
    }
    if running.is_empty() {
        println!("no environment runs an image of this tree");
    }
    for r in running {
        let security = r.pending.iter().filter(|p| p.security).count();
        let short = r.build.strip_prefix("sha256:").unwrap_or(&r.build);
        let short = short.get(..12).unwrap_or(short);
        if r.pending.is_empty() {
            println!("{} runs {} {} ({short}): fresh", r.env, r.image, r.version);
            continue;
        }
        println!(
            "{} runs {} {} ({short}): {} updates pending ({security} security)",
            r.env,
            r.image,
            r.version,
            r.pending.len()
        );
        for p in &r.pending {
            println!("  {}", pending(p));
        }
    }
}

fn pending(p: &Pending) -> String {
    let flag = if p.security { ", security" } else { "" };
    // Debian's suites speak for themselves; a repository is named.
    let origin = p
        .repository()
        .map_or(String::new(), |r| format!("repository {r} "));
    format!(
        "{} {} -> {}  (source {}, {origin}{}{flag})",
        p.name, p.locked, p.available, p.source, p.suite
    )
}

pub fn plan(plan: &Plan, json: bool) {
    if json {
        return output::json(plan);
    }
    if plan.is_empty() {
        println!("nothing to rebuild");
        return;
    }
    for (w, wave) in plan.waves.iter().enumerate() {
        println!("wave {}:", w + 1);
        for p in wave {
            let boots = if p.boots { ", boot-tested" } else { "" };
            println!("  {}  ({}{boots})", p.name, p.reason);
        }
    }
}

pub fn rebuild(report: &RebuildReport, json: bool) {
    if json {
        return output::json(report);
    }
    if let Some(id) = report.rollout {
        let runs = if report.attempt > 1 {
            format!(" (continued: run {})", report.attempt)
        } else {
            String::new()
        };
        println!("rollout {id}{runs}: `kiln rollouts {id}` shows it again");
    }
    for o in &report.images {
        let status = match o.status {
            Status::Passed => "passed",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        };
        let mut notes = vec![o.reason.clone()];
        if !o.relocked.is_empty() {
            let moved: Vec<String> = o
                .relocked
                .iter()
                .map(|c| {
                    format!(
                        "{} {} -> {}",
                        c.name,
                        c.from.as_deref().unwrap_or("none"),
                        c.to.as_deref().unwrap_or("none")
                    )
                })
                .collect();
            notes.push(format!("relocked {}", moved.join(", ")));
        }
        if o.cached {
            notes.push("built already".into());
        }
        match o.tested {
            Some(Tested::Passed) => notes.push("boot test passed".into()),
            Some(Tested::Reused) => notes.push("tested already".into()),
            Some(Tested::Failed) => notes.push("boot test failed".into()),
            None => {}
        }
        if let Some(env) = &o.promoted {
            notes.push(format!("promoted to {env}"));
        }
        println!(
            "wave {} {} {status}  ({})",
            o.wave,
            o.name,
            notes.join("; ")
        );
        if let Some(detail) = &o.detail {
            for line in detail.lines() {
                println!("    {line}");
            }
        }
    }
}

pub fn rollouts(list: &[Rollout], json: bool) {
    if json {
        return output::json(&serde_json::json!({ "rollouts": list }));
    }
    if list.is_empty() {
        println!("no rollout recorded: `kiln rebuild` records one per run");
        return;
    }
    println!(
        "{:>4}  {:<20}  {:<11}  {:>4}  {:<24}  IMAGES",
        "ID", "STARTED", "STATE", "RUNS", "TRIGGER"
    );
    for r in list {
        println!(
            "{:>4}  {:<20}  {:<11}  {:>4}  {:<24}  {}",
            r.id,
            rfc3339(r.started_at),
            state(r),
            r.attempts,
            r.trigger,
            counts(&r.images)
        );
    }
}

pub fn rollout(r: &Rollout, json: bool) {
    if json {
        return output::json(r);
    }
    println!("rollout {}: {} in {}", r.id, r.trigger, r.dir);
    println!(
        "started {} by {}, {} run{}; {}",
        rfc3339(r.started_at),
        r.who,
        r.attempts,
        if r.attempts == 1 { "" } else { "s" },
        match r.finished_at {
            Some(at) => format!("finished {}: {}", rfc3339(at), state(r)),
            None =>
                "not finished: killed or still running; the same `kiln rebuild` continues it".into(),
        }
    );
    println!("options: {}", r.options);
    for i in &r.images {
        println!(
            "wave {} {} {}  ({})",
            i.wave,
            i.name,
            i.status,
            image_notes(i).join("; ")
        );
        if let Some(detail) = &i.detail {
            for line in detail.lines() {
                println!("    {line}");
            }
        }
    }
}

fn state(r: &Rollout) -> &str {
    r.outcome.as_deref().unwrap_or("unfinished")
}

/// `3 passed, 1 failed`, in a fixed order.
fn counts(images: &[RolloutImage]) -> String {
    let parts: Vec<String> = ["passed", "failed", "skipped", "started"]
        .iter()
        .filter_map(|s| {
            let n = images.iter().filter(|i| i.status == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    if parts.is_empty() {
        "none yet".into()
    } else {
        parts.join(", ")
    }
}

fn image_notes(i: &RolloutImage) -> Vec<String> {
    let mut notes = vec![i.reason.clone()];
    if let Some(build) = &i.build {
        notes.push(format!("build {}", crate::trace::short(build)));
    }
    if i.cached {
        notes.push("built already".into());
    }
    match i.tested.as_deref() {
        Some("passed") => notes.push("boot test passed".into()),
        Some("reused") => notes.push("tested already".into()),
        Some("failed") => notes.push("boot test failed".into()),
        _ => {}
    }
    if let Some(env) = &i.promoted {
        notes.push(format!("promoted to {env}"));
    }
    notes
}
