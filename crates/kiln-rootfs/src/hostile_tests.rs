//! Packages made here to attack the host through what kiln writes from
//! their metadata: a package name with `/`, trigger interests that climb
//! out with `..` or name absolute paths, data entries with `..` and
//! absolute names, and symlinks planted where dpkg's database is written.
//! Each is refused with an error naming it, and the host paths it aimed at
//! stay untouched.

use std::path::Path;

use crate::deb::{read_control, read_control_members};
use crate::dpkgdb::{NewPackage, record_unpacked};
use crate::testdeb::{Entry, craft_deb, craft_deb_with};

const CONTROL: &str = "Package: evil\nVersion: 1\nArchitecture: amd64\n";

/// A root with dpkg's empty database, as the bootstrap leaves it.
fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(dir.path().join("var/lib/dpkg/info")).unwrap();
    fs_err::write(dir.path().join("var/lib/dpkg/status"), "").unwrap();
    dir
}

/// A host directory nothing may touch, a directory for crafted packages,
/// and a root with dpkg's empty database.
fn scene() -> (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir) {
    (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        root(),
    )
}

/// `../` enough times to climb from `root/var/lib/dpkg/<dir>` to `/`.
fn up(root: &Path) -> String {
    "../".repeat(root.components().count() + 8)
}

fn new_package(deb: &Path) -> NewPackage {
    let c = read_control(deb, "amd64").unwrap();
    NewPackage {
        name: c.package,
        architecture: c.architecture,
        multi_arch: c.multi_arch,
        members: read_control_members(deb).unwrap(),
        paths: vec!["/.".into()],
    }
}

fn assert_untouched(host: &Path) {
    let left: Vec<_> = fs_err::read_dir(host).unwrap().collect();
    assert!(left.is_empty(), "files appeared on the host: {left:?}");
}

#[test]
fn a_package_name_or_architecture_with_a_slash_is_refused() {
    let host = tempfile::tempdir().unwrap();
    let debs = tempfile::tempdir().unwrap();
    let aim = format!("{}{}", up(debs.path()), host.path().display());
    for (field, value) in [("Package", aim.as_str()), ("Architecture", "../../x")] {
        let control = CONTROL
            .lines()
            .map(|l| {
                if l.starts_with(field) {
                    format!("{field}: {value}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect::<String>();
        let deb = craft_deb(debs.path(), "evil", &control, vec![]);
        let err = read_control(&deb, "amd64").unwrap_err().to_string();
        assert!(err.contains("evil.deb") && err.contains(value), "{err}");
    }
    assert_untouched(host.path());
}

#[test]
fn trigger_interests_that_climb_out_or_are_not_paths_are_refused() {
    let (host, debs, root) = scene();
    let aims = [
        format!("{}{}/pwned", up(root.path()), host.path().display()),
        format!("{}/../pwned", host.path().display()),
        "..".to_string(),
    ];
    for aim in &aims {
        let triggers = format!("interest {aim}\n");
        let deb = craft_deb_with(
            debs.path(),
            "evil",
            &[("./control", CONTROL), ("./triggers", &triggers)],
            vec![],
        );
        let err = record_unpacked(root.path(), &[new_package(&deb)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("trigger") && err.contains(aim), "{err}");
    }
    assert_untouched(host.path());
    // Nothing of the package was recorded either.
    assert_eq!(
        fs_err::read_to_string(root.path().join("var/lib/dpkg/status")).unwrap(),
        ""
    );
    assert!(!root.path().join("var/lib/dpkg/info/evil.list").exists());
}

#[test]
fn data_entries_with_dotdot_or_absolute_names_are_refused() {
    let (host, debs, root) = scene();
    let target = host.path().join("pwned");
    for name in [
        format!("./{}{}", up(root.path()), target.display()),
        target.display().to_string(),
    ] {
        let deb = craft_deb(
            debs.path(),
            "evil",
            CONTROL,
            vec![Entry::File(name.clone(), "x".into())],
        );
        let err = crate::extract::extract_data(root.path(), &deb, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("refusing archive entry"), "{err}");
    }
    assert_untouched(host.path());
}

#[test]
fn symlinks_planted_in_dpkgs_database_are_not_written_through() {
    let (host, debs, root) = scene();
    let info = root.path().join("var/lib/dpkg/info");
    // A previous package left info/evil.list pointing at a host file, and
    // triggers/ pointing at a host directory.
    let victim = host.path().join("victim");
    fs_err::write(&victim, "host data\n").unwrap();
    std::os::unix::fs::symlink(&victim, info.join("evil.list")).unwrap();
    std::os::unix::fs::symlink(&victim, info.join("evil.postinst")).unwrap();
    std::os::unix::fs::symlink(host.path(), root.path().join("var/lib/dpkg/triggers")).unwrap();
    let deb = craft_deb_with(
        debs.path(),
        "evil",
        &[
            ("./control", CONTROL),
            ("./postinst", "#!/bin/sh\n"),
            (
                "./triggers",
                "interest evil-named\ninterest /usr/lib/evil\n",
            ),
        ],
        vec![],
    );
    record_unpacked(root.path(), &[new_package(&deb)]).unwrap();
    assert_eq!(fs_err::read_to_string(&victim).unwrap(), "host data\n");
    let names: Vec<_> = fs_err::read_dir(host.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["victim"], "the host directory gained files");
    // The database files are real files inside the root now; the absolute
    // triggers/ link resolved inside it, as the image would resolve it.
    assert!(
        !fs_err::symlink_metadata(info.join("evil.list"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        fs_err::read_to_string(info.join("evil.list")).unwrap(),
        "/.\n"
    );
    let triggers = root.path().join(host.path().strip_prefix("/").unwrap());
    assert_eq!(
        fs_err::read_to_string(triggers.join("evil-named")).unwrap(),
        "evil\n"
    );

    // An append target that is a symlink is refused, not followed.
    let trig = root.path().join("var/lib/dpkg/triggers2");
    fs_err::create_dir_all(&trig).unwrap();
    std::os::unix::fs::symlink(&victim, trig.join("File")).unwrap();
    let err = crate::confine::append_file(&trig, "File", b"x\n").unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(fs_err::read_to_string(&victim).unwrap(), "host data\n");
}

/// The ar container, control.tar and data.tar of a `.deb`, damaged at
/// random: reading and extracting return an error or a result, never panic,
/// and never write outside the root.
mod damaged {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn a_damaged_deb_is_an_error_not_a_panic(
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..16),
            cut in any::<usize>(),
        ) {
            let (host, debs, root) = scene();
            let deb = craft_deb_with(
                debs.path(),
                "victim",
                &[
                    ("./control", "Package: victim\nVersion: 1\nArchitecture: amd64\nDepends: libc6 (>= 2.36)\n"),
                    ("./triggers", "interest ldconfig\ninterest /usr/lib/x\n"),
                    ("./postinst", "#!/bin/sh\n"),
                ],
                vec![
                    Entry::Dir("./usr/".into()),
                    Entry::File("./usr/a".into(), "a".repeat(300)),
                    Entry::Symlink("./usr/l".into(), host.path().display().to_string()),
                    Entry::File("./usr/l/b".into(), "b".into()),
                ],
            );
            let mut bytes = fs_err::read(&deb).unwrap();
            for (at, b) in flips {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            bytes.truncate(bytes.len() - cut % (bytes.len() / 3 + 1));
            fs_err::write(&deb, &bytes).unwrap();

            if let Err(e) = read_control(&deb, "amd64") {
                prop_assert!(!e.to_string().is_empty());
            }
            match read_control_members(&deb) {
                Ok(members) => {
                    for m in &members {
                        prop_assert!(!m.name.contains('/'));
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("victim.deb")),
            }
            let _ = crate::extract::extract_data(root.path(), &deb, &Default::default());
            assert_untouched(host.path());
        }
    }
}
