use kiln_lock::{LOCK_VERSION, Lock, LockedPackage, RepositoryPin, changes, read, render, write};

fn pkg(name: &str, needed_by: &[&str]) -> LockedPackage {
    LockedPackage {
        name: name.into(),
        version: "1.0-1".into(),
        architecture: "amd64".into(),
        suite: "bookworm".into(),
        path: format!("pool/main/{name}_1.0-1_amd64.deb"),
        size: 42,
        sha256: "ab".repeat(32),
        reason: "dependency".into(),
        needed_by: needed_by.iter().map(|s| s.to_string()).collect(),
        origin: None,
    }
}

fn inputs(install: &[&str]) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("suite".into(), "bookworm".into());
    t.insert(
        "install".into(),
        toml::Value::Array(install.iter().map(|s| toml::Value::from(*s)).collect()),
    );
    t
}

fn lock() -> Lock {
    Lock {
        version: LOCK_VERSION,
        checksum: "sha256:00".into(),
        inputs: inputs(&["curl"]),
        parent: None,
        suites: vec![],
        repositories: vec![],
        packages: vec![pkg("zlib1g", &["curl", "apt"]), pkg("curl", &[])],
    }
}

#[test]
fn equal_content_renders_equal_bytes_and_round_trips() {
    let a = lock();
    let mut b = lock();
    b.packages.reverse();
    assert_eq!(render(&a).unwrap(), render(&b).unwrap());
    let text = render(&a).unwrap();
    assert!(text.find("name = \"curl\"").unwrap() < text.find("name = \"zlib1g\"").unwrap());
    assert!(text.contains("needed-by = [\"apt\", \"curl\"]"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.lock");
    assert!(write(&path, &a).unwrap());
    assert!(
        !write(&path, &b).unwrap(),
        "unchanged content is not rewritten"
    );
    let mut back = read(&path).unwrap();
    let mut want = a.clone();
    want.normalize();
    back.normalize();
    assert_eq!(back, want);
    assert!(back.package("curl").is_some() && back.package("nope").is_none());
}

#[test]
fn changes_name_the_field_that_moved() {
    let l = lock();
    assert!(changes(&l, &inputs(&["curl"]), "sha256:00", None).is_empty());
    let c = changes(&l, &inputs(&["curl", "nginx-light"]), "sha256:11", None);
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].to_string(),
        "install: locked [\"curl\"], definition has [\"curl\", \"nginx-light\"]"
    );
    let c = changes(&l, &inputs(&["curl"]), "sha256:00", Some("sha256:22"));
    assert_eq!(c[0].field, "parent lock");
}

#[test]
fn unknown_fields_and_newer_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.lock");
    let text = render(&lock()).unwrap();
    std::fs::write(&path, text.replace("version = 1", "version = 9")).unwrap();
    assert!(
        read(&path)
            .unwrap_err()
            .to_string()
            .contains("lock version 9")
    );
    std::fs::write(&path, format!("{text}\nextra = 1\n")).unwrap();
    assert!(
        read(&path)
            .unwrap_err()
            .to_string()
            .contains("not a valid kiln.lock")
    );
    assert!(
        read(&dir.path().join("none"))
            .unwrap_err()
            .hint()
            .unwrap()
            .contains("kiln lock")
    );
}

#[test]
fn repositories_and_origins_round_trip_and_are_absent_for_debian_alone() {
    let plain = render(&lock()).unwrap();
    assert!(
        !plain.contains("origin") && !plain.contains("[[repository]]"),
        "{plain}"
    );

    let mut l = lock();
    l.repositories.push(RepositoryPin {
        name: "vendor".into(),
        suite: "stable".into(),
        key: "0123456789ABCDEF0123456789ABCDEF01234567".into(),
        date: "Sat, 05 Dec 2026 00:00:00 UTC".into(),
        inrelease: format!("sha256:{}", "cd".repeat(32)),
        indices: vec![format!("sha256:{}", "ef".repeat(32))],
    });
    l.packages[1].origin = Some("vendor".into());
    let text = render(&l).unwrap();
    assert!(text.contains("[[repository]]\nname = \"vendor\""), "{text}");
    assert!(text.contains("origin = \"vendor\""), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.lock");
    write(&path, &l).unwrap();
    let back = read(&path).unwrap();
    assert_eq!(back.repositories, l.repositories);
    assert_eq!(back.package("curl").unwrap().origin(), "vendor");
    assert_eq!(back.package("zlib1g").unwrap().origin(), "debian");
}
