//! `kiln plan`: the build graph as jobs for the CI a team already runs.
//! One job per image; a job needs its parent's; each runs
//! `kiln build && kiln test && kiln push` for its image, with the catalog,
//! registry and cache coming from the environment. The output is a pure
//! function of the graph: images sorted by wave, then by name.

use std::fmt::Write as _;

use crate::Error;

/// One image of the graph, as a plan needs it (kiln-fleet's `Graph` gives
/// them, with their waves).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    pub name: String,
    /// Relative to the directory planned (`.` for itself).
    pub dir: String,
    /// The parent image's name, for an image built `from` another.
    pub from: Option<String>,
    /// 0 for an image on a distribution, one more than its parent's.
    pub wave: usize,
    /// Whether it builds a disk image, so `kiln test` can boot it.
    pub bootable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanTarget {
    Github,
    Gitlab,
    Kubernetes,
    Json,
}

impl PlanTarget {
    pub const ALL: &[(&str, PlanTarget)] = &[
        ("github", PlanTarget::Github),
        ("gitlab", PlanTarget::Gitlab),
        ("kubernetes", PlanTarget::Kubernetes),
        ("json", PlanTarget::Json),
    ];
}

/// One image with its wave (0 for images with no parent in the graph).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedJob {
    pub name: String,
    pub dir: String,
    pub needs: Vec<String>,
    pub wave: usize,
    pub run: String,
}

/// The plan for `nodes`, as `target` wants it.
pub fn plan(nodes: &[Node], target: PlanTarget) -> Result<String, Error> {
    let jobs = order(nodes);
    Ok(match target {
        PlanTarget::Json => {
            let mut s = serde_json::to_string_pretty(&serde_json::json!({ "jobs": jobs }))
                .map_err(|e| Error::Internal(e.to_string()))?;
            s.push('\n');
            s
        }
        PlanTarget::Github => github(&jobs),
        PlanTarget::Gitlab => gitlab(&jobs),
        PlanTarget::Kubernetes => kubernetes(&jobs),
    })
}

/// Jobs in a valid order: by wave, then name.
pub fn order(nodes: &[Node]) -> Vec<PlannedJob> {
    let mut jobs: Vec<PlannedJob> = nodes
        .iter()
        .map(|node| {
            let dir = node.dir.clone();
            PlannedJob {
                name: node.name.clone(),
                needs: node.from.iter().cloned().collect(),
                wave: node.wave,
                // An image without a disk has nothing `kiln test` can boot.
                run: format!(
                    "kiln build {dir} && {}kiln push {dir} --to \"$KILN_REGISTRY/{}\"",
                    if node.bootable {
                        format!("kiln test {dir} && ")
                    } else {
                        String::new()
                    },
                    node.name
                ),
                dir,
            }
        })
        .collect();
    jobs.sort_by(|a, b| (a.wave, &a.name).cmp(&(b.wave, &b.name)));
    jobs
}

/// A YAML scalar: JSON's string syntax is YAML's double-quoted style.
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A job id GitHub and GitLab accept: image names are DNS labels, which
/// may start with a digit; ids may not.
fn job_id(name: &str) -> String {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("image-{name}")
    } else {
        name.to_string()
    }
}

/// What every job reads from the CI's settings.
const ENV: &[(&str, &str)] = &[
    ("KILN_CATALOG", "the shared catalog, a postgres:// URL"),
    (
        "KILN_REGISTRY",
        "REGISTRY/PREFIX the images are pushed under",
    ),
    (
        "KILN_REMOTE_CACHE",
        "REGISTRY/REPO of the shared stage cache",
    ),
];

fn github(jobs: &[PlannedJob]) -> String {
    let mut s = String::from("# Written by `kiln plan --for github`: one job per image.\n");
    let _ = writeln!(
        s,
        "# Set the repository secrets {}.",
        ENV.iter()
            .map(|(v, why)| format!("{v} ({why})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s.push_str("name: kiln\non:\n  push:\n  workflow_dispatch:\nenv:\n");
    for (var, _) in ENV {
        // Secrets, not `vars`: every CI runner's actionlint knows them, and
        // a catalog URL may carry a password.
        let _ = writeln!(s, "  {var}: ${{{{ secrets.{var} }}}}");
    }
    s.push_str("jobs:\n");
    for job in jobs {
        let _ = writeln!(s, "  {}:", job_id(&job.name));
        let _ = writeln!(s, "    name: {}", q(&format!("{} ({})", job.name, job.dir)));
        if !job.needs.is_empty() {
            let needs: Vec<String> = job.needs.iter().map(|n| job_id(n)).collect();
            let _ = writeln!(s, "    needs: [{}]", needs.join(", "));
        }
        s.push_str("    runs-on: ubuntu-latest\n    steps:\n");
        s.push_str("      - uses: actions/checkout@v4\n");
        let _ = writeln!(
            s,
            "      - name: {}",
            q(&format!("build, test and push {}", job.name))
        );
        let _ = writeln!(s, "        run: {}", q(&job.run));
    }
    s
}

fn gitlab(jobs: &[PlannedJob]) -> String {
    let mut s = String::from("# Written by `kiln plan --for gitlab`: one job per image.\n");
    let waves = jobs.iter().map(|j| j.wave).max().map_or(0, |w| w + 1);
    let stages: Vec<String> = (0..waves).map(|w| format!("wave-{w}")).collect();
    let _ = writeln!(s, "stages: [{}]", stages.join(", "));
    let vars: Vec<&str> = ENV.iter().map(|(v, _)| *v).collect();
    // Jobs see the project's CI/CD variables as they are: nothing to map.
    let _ = writeln!(s, "# Set {} as CI/CD variables.", vars.join(", "));
    for job in jobs {
        let _ = writeln!(s, "{}:", job_id(&job.name));
        let _ = writeln!(s, "  stage: wave-{}", job.wave);
        let needs: Vec<String> = job.needs.iter().map(|n| job_id(n)).collect();
        let _ = writeln!(s, "  needs: [{}]", needs.join(", "));
        let _ = writeln!(s, "  script:\n    - {}", q(&job.run));
    }
    s
}

/// One Job per image, a YAML stream in wave order, each annotated with its
/// wave and needs: apply a wave once the previous one has completed.
fn kubernetes(jobs: &[PlannedJob]) -> String {
    let mut s = String::from(
        "# Written by `kiln plan --for kubernetes`: one Job per image; apply the Jobs\n\
         # of wave N once every Job of wave N-1 has completed.\n",
    );
    for job in jobs {
        s.push_str("---\napiVersion: batch/v1\nkind: Job\nmetadata:\n");
        let _ = writeln!(s, "  name: {}", q(&format!("kiln-{}", job.name)));
        let _ = writeln!(s, "  labels:\n    kiln/image: {}", q(&job.name));
        let _ = writeln!(
            s,
            "  annotations:\n    kiln/wave: {}",
            q(&job.wave.to_string())
        );
        let _ = writeln!(s, "    kiln/needs: {}", q(&job.needs.join(",")));
        s.push_str("spec:\n  backoffLimit: 0\n  template:\n    spec:\n");
        s.push_str("      restartPolicy: Never\n      containers:\n        - name: kiln\n");
        s.push_str("          image: \"${KILN_RUNNER_IMAGE}\"\n");
        s.push_str("          workingDir: /src\n");
        let _ = writeln!(s, "          command: [\"sh\", \"-c\", {}]", q(&job.run));
        s.push_str("          envFrom:\n            - secretRef:\n                name: kiln\n");
        s.push_str("          securityContext:\n            privileged: true\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, from: Option<&str>, wave: usize) -> Node {
        Node {
            name: name.into(),
            dir: format!("images/{name}"),
            from: from.map(str::to_string),
            wave,
            bootable: true,
        }
    }

    #[test]
    fn jobs_come_by_wave_then_name() {
        let nodes = [
            node("web", Some("base"), 1),
            node("api", Some("web"), 2),
            node("base", None, 0),
            node("admin", Some("base"), 1),
        ];
        let jobs = order(&nodes);
        let got: Vec<(&str, usize)> = jobs.iter().map(|j| (j.name.as_str(), j.wave)).collect();
        assert_eq!(got, [("base", 0), ("admin", 1), ("web", 1), ("api", 2)]);
        assert_eq!(jobs[3].needs, ["web"]);
        assert_eq!(job_id("9x"), "image-9x");
    }
}
