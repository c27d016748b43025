//! `kiln init` must write a definition that `kiln lock` accepts as it is.

mod common;

use kiln_spec::{Base, Format, Suite};

#[test]
fn the_template_is_a_valid_definition() {
    let dir = tempfile::tempdir().expect("tmp");
    common::write(dir.path(), "kiln.toml", &kiln_spec::template("web"));
    let def = match kiln_spec::load(dir.path()) {
        Ok(def) => def,
        Err(e) => panic!("{}", common::render(&e)),
    };
    assert_eq!(def.image.name, "web");
    assert!(matches!(&def.base, Base::Debian(b) if b.suite == Suite::Trixie));
    assert!(def.disk.kernel.is_some());
    assert!(def.outputs.formats.contains(&Format::Qcow2));
    assert_eq!(def.checks.len(), 1);
}

#[test]
fn the_template_makes_any_directory_name_valid() {
    for name in ["My App", "web_2", "", "...", "ÜBER"] {
        let text = kiln_spec::template(name);
        if let Err(e) = common::parse(&text) {
            panic!("template({name:?}):\n{}", common::render(&e));
        }
    }
}

#[test]
fn every_commented_section_is_valid_when_uncommented() {
    // Uncommenting an example is the first edit most people make.
    let dir = common::project(
        "",
        &[
            "files/motd",
            "scripts/setup.sh",
            "keys/vendor.asc",
            "dist/app_1.4.2_amd64.deb",
        ],
    );
    let text: String = kiln_spec::template("web")
        .lines()
        .filter(|l| !l.starts_with("# from") && !l.starts_with("# install"))
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.contains(" = ") => format!("{rest}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let path = common::write(dir.path(), "kiln.toml", &text);
    let def = match kiln_spec::parse(&text, &path) {
        Ok(def) => def,
        Err(e) => panic!("{}\n{text}", common::render(&e)),
    };
    assert_eq!(def.files.len(), 1);
    assert_eq!(def.users.len(), 1);
    assert_eq!(def.run.len(), 1);
    assert_eq!(def.checks.len(), 2);
    assert_eq!(def.runtime.required, ["DATABASE_URL"]);
    assert_eq!(def.repositories.len(), 1);
    assert_eq!(def.packages.local.len(), 1);
}
