//! Third-party repositories (`[[repository]]`) and local packages
//! (`[packages] local`) end to end: a real apt repository made here with
//! `apt-ftparchive`, signed by a key `gpg` generates here, served over HTTP
//! by a server started here on 127.0.0.1, holding a package `dpkg-deb`
//! builds here. `tool_` tests run gpg, dpkg-deb, apt-ftparchive and python3;
//! `net_root_` ones also use Debian's archive and build as root.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{Archive, kiln, kiln_at, run_tool};

/// A gpg home with one signing key, made for this test.
struct Gpg {
    home: tempfile::TempDir,
    uid: String,
}

impl Gpg {
    fn new(uid: &str) -> Gpg {
        let home = tempfile::tempdir().unwrap();
        let gpg = Gpg {
            home,
            uid: uid.to_owned(),
        };
        run_tool(gpg.cmd().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ]));
        gpg
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path()).args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
        ]);
        c
    }

    /// The primary key's fingerprint, as `gpg --with-colons` prints it.
    fn fingerprint(&self) -> String {
        let out = run_tool(
            self.cmd()
                .args(["--with-colons", "--fingerprint", &self.uid]),
        );
        out.lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| !f.is_empty()))
            .expect("a fingerprint")
            .to_owned()
    }

    fn export_armored(&self, to: &Path) {
        let key = run_tool(self.cmd().args(["--armor", "--export", &self.uid]));
        common::write(to, &key);
    }

    fn clearsign(&self, release: &Path, inrelease: &Path) {
        let _ = std::fs::remove_file(inrelease);
        run_tool(
            self.cmd()
                .args(["--local-user", &self.uid, "--clearsign", "--output"])
                .arg(inrelease)
                .arg(release),
        );
    }
}

/// Builds `NAME_VERSION_amd64.deb` in `dir`: `/usr/bin/NAME` prints
/// `NAME VERSION` and the greeting of `hello` (its dependency, from Debian).
fn build_deb(dir: &Path, name: &str, version: &str, depends: &str) -> PathBuf {
    let root = tempfile::tempdir().unwrap();
    common::write(
        &root.path().join("DEBIAN/control"),
        &format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: kiln tests <test@invalid>\n\
             Depends: {depends}\nSection: misc\nPriority: optional\nDescription: {name}, made by a kiln test\n"
        ),
    );
    let script = root.path().join(format!("usr/bin/{name}"));
    common::write(
        &script,
        &format!("#!/bin/sh\necho \"{name} {version} $(hello -g greets)\"\n"),
    );
    run_tool(Command::new("chmod").arg("0755").arg(&script));
    // As dh_md5sums writes it: without it `dpkg --audit` (which kiln runs
    // after installing) asks for the package to be reinstalled.
    let sums = run_tool(
        Command::new("md5sum")
            .current_dir(root.path())
            .arg(format!("usr/bin/{name}")),
    );
    common::write(&root.path().join("DEBIAN/md5sums"), &sums);
    std::fs::create_dir_all(dir).unwrap();
    let deb = dir.join(format!("{name}_{version}_amd64.deb"));
    run_tool(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(root.path())
            .arg(&deb),
    );
    deb
}

/// An apt repository in a directory: suite `stable`, component `main`.
struct AptRepo {
    dir: tempfile::TempDir,
    gpg: Gpg,
}

impl AptRepo {
    fn new(debs: &[&Path]) -> AptRepo {
        let repo = AptRepo {
            dir: tempfile::tempdir().unwrap(),
            gpg: Gpg::new("kiln test repository <repo@invalid>"),
        };
        repo.publish(debs);
        repo
    }

    /// Makes `debs` the repository's whole content, signed with its key.
    fn publish(&self, debs: &[&Path]) {
        let pool = self.dir.path().join("pool/main");
        let _ = std::fs::remove_dir_all(&pool);
        std::fs::create_dir_all(&pool).unwrap();
        for deb in debs {
            std::fs::copy(deb, pool.join(deb.file_name().unwrap())).unwrap();
        }
        let dists = self.dir.path().join("dists/stable");
        let binary = dists.join("main/binary-amd64");
        std::fs::create_dir_all(&binary).unwrap();
        let packages = run_tool(
            Command::new("apt-ftparchive")
                .current_dir(self.dir.path())
                .args(["packages", "pool"]),
        );
        common::write(&binary.join("Packages"), &packages);
        run_tool(Command::new("gzip").arg("-kf").arg(binary.join("Packages")));
        let release = run_tool(Command::new("apt-ftparchive").current_dir(&dists).args([
            "-o",
            "APT::FTPArchive::Release::Suite=stable",
            "-o",
            "APT::FTPArchive::Release::Codename=stable",
            "-o",
            "APT::FTPArchive::Release::Components=main",
            "-o",
            "APT::FTPArchive::Release::Architectures=amd64",
            "release",
            ".",
        ]));
        common::write(&dists.join("Release"), &release);
        self.gpg
            .clearsign(&dists.join("Release"), &dists.join("InRelease"));
    }

    fn inrelease(&self) -> PathBuf {
        self.dir.path().join("dists/stable/InRelease")
    }
}

/// `python3 -m http.server` on a free port of 127.0.0.1, stopped on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn serve(dir: &Path) -> Server {
        let mut child = kiln_deb::child::die_with_parent(&mut Command::new("python3"))
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (see scripts/install-deps)");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server { child, port }
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repository_section(uri: &str, key: &str) -> String {
    format!(
        "[[repository]]\nname = \"vendor\"\nuri = \"{uri}\"\nsuite = \"stable\"\nsigned-by = \"{key}\"\n\n"
    )
}

fn lock_of(dir: &Path) -> kiln_lock::Lock {
    kiln_lock::read(&dir.join("kiln.lock")).expect("a kiln.lock")
}

fn sha256_hex(path: &Path) -> String {
    kiln_disk::sha256_file(path)
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned()
}

/// A fake signed Debian archive offering `hello`, so refusals need no network.
fn fake_debian() -> Archive {
    Archive::new(&common::stanza("hello", "2.10-3", ""), "", "")
}

/// A vendor's repository serving `app` (which needs `hello`), and with
/// `newer_hello` a `hello 2.99-1` too, beside a fake Debian archive.
struct Vendor {
    debs: tempfile::TempDir,
    repo: AptRepo,
    server: Server,
    debian: Archive,
}

impl Vendor {
    /// The fake Debian's definition installing `install`, using the vendor's
    /// repository (its key exported to `dir/keys/vendor.asc`), with `extra`
    /// (a pin, say) after the repository section.
    fn definition(&self, dir: &Path, install: &[&str], extra: &str) -> String {
        self.repo.gpg.export_armored(&dir.join("keys/vendor.asc"));
        let section = repository_section(&self.server.uri(), "keys/vendor.asc");
        self.debian.definition("essential", install).replacen(
            "[packages]",
            &format!("{section}{extra}[packages]"),
            1,
        )
    }

    /// `base` (hello, from Debian, and the vendor's repository) and `app` on
    /// it (app, from the repository it inherits), both locked: the project
    /// directory and the store.
    fn parent_and_child(&self) -> (tempfile::TempDir, tempfile::TempDir) {
        let project = tempfile::tempdir().unwrap();
        let parent = project.path().join("base");
        let child = project.path().join("app");
        common::write(
            &parent.join("kiln.toml"),
            &self.definition(&parent, &["hello"], ""),
        );
        common::write(
            &child.join("kiln.toml"),
            "[image]\nname = \"child\"\nversion = \"1\"\n\n[base]\nfrom = \"../base\"\n\n\
             [packages]\ninstall = [\"app\"]\n",
        );
        let store = tempfile::tempdir().unwrap();
        for dir in [&parent, &child] {
            let r = kiln_at(&self.debian, &["lock", dir.to_str().unwrap()], store.path());
            assert_eq!(r.code, 0, "{}: {}", dir.display(), r.stderr);
        }
        (project, store)
    }
}

fn vendor(newer_hello: bool) -> Vendor {
    let debs = tempfile::tempdir().unwrap();
    let mut packages = vec![build_deb(debs.path(), "app", "1.4.2", "hello")];
    if newer_hello {
        packages.push(build_deb(debs.path(), "hello", "2.99-1", ""));
    }
    let repo = AptRepo::new(&packages.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    let server = Server::serve(repo.dir.path());
    Vendor {
        debs,
        repo,
        server,
        debian: fake_debian(),
    }
}

#[test]
fn tool_a_tampered_inrelease_or_a_foreign_key_is_refused_and_nothing_is_locked() {
    let ven = vendor(false);
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    let definition = ven.definition(dir, &["app"], "");
    common::write(&dir.join("kiln.toml"), &definition);
    let store = tempfile::tempdir().unwrap();
    let lock = |store: &Path| kiln_at(&ven.debian, &["lock", dir.to_str().unwrap()], store);

    // Sanity: the untouched repository locks, with the package's origin.
    let ok = lock(store.path());
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let locked = lock_of(dir);
    assert_eq!(locked.package("app").unwrap().origin(), "vendor");
    assert_eq!(locked.package("hello").unwrap().origin(), "debian");
    assert_eq!(locked.repositories[0].key, ven.repo.gpg.fingerprint());
    std::fs::remove_file(dir.join("kiln.lock")).unwrap();

    // One byte of the signed text changed: the signature no longer holds.
    let good = std::fs::read_to_string(ven.repo.inrelease()).unwrap();
    let tampered = good.replacen("Suite: stable", "Suite: stabld", 1);
    assert_ne!(tampered, good);
    std::fs::write(ven.repo.inrelease(), &tampered).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let r = lock(fresh.path());
    assert_ne!(r.code, 0, "a tampered InRelease was accepted");
    assert!(r.stderr.contains("repository vendor"), "{}", r.stderr);
    assert!(r.stderr.contains("InRelease: refused"), "{}", r.stderr);
    assert!(
        r.stderr.contains("hint: the InRelease is not signed by"),
        "{}",
        r.stderr
    );
    assert!(!dir.join("kiln.lock").exists(), "nothing is locked");
    assert_no_inrelease_stored(fresh.path(), &tampered);
    std::fs::write(ven.repo.inrelease(), &good).unwrap();

    // Signed by a key the definition does not name.
    let other = Gpg::new("someone else <other@invalid>");
    other.export_armored(&dir.join("keys/vendor.asc"));
    let r = lock(fresh.path());
    assert_ne!(r.code, 0, "a repository signed by another key was accepted");
    assert!(r.stderr.contains("repository vendor"), "{}", r.stderr);
    assert!(!dir.join("kiln.lock").exists(), "nothing is locked");
    assert_no_inrelease_stored(fresh.path(), &good);

    // A signed-by file that holds no key.
    common::write(&dir.join("keys/vendor.asc"), "not a key\n");
    let r = lock(fresh.path());
    r.assert_exit(1, &["signed-by key"]);
    assert!(!dir.join("kiln.lock").exists(), "nothing is locked");
}

#[test]
fn tool_the_highest_version_wins_across_origins_unless_the_repository_is_pinned() {
    // The vendor also ships a newer hello than Debian's 2.10-3.
    let ven = vendor(true);
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    let write = |pin: &str| {
        let definition = ven.definition(dir, &["app"], pin);
        common::write(&dir.join("kiln.toml"), &definition);
    };
    let store = tempfile::tempdir().unwrap();
    let lock = || kiln_at(&ven.debian, &["lock", dir.to_str().unwrap()], store.path());

    write("");
    let r = lock();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let hello = lock_of(dir).package("hello").cloned().unwrap();
    assert_eq!(
        (hello.version.as_str(), hello.origin()),
        ("2.99-1", "vendor"),
        "apt's rule at equal priority: the highest version wins"
    );

    // Pinned to `app`: hello may only come from Debian; the lock is stale
    // until relocked.
    write("pin = [\"app\"]\n");
    let check = kiln_at(
        &ven.debian,
        &["lock", dir.to_str().unwrap(), "--check"],
        store.path(),
    );
    assert_ne!(check.code, 0, "a new pin left the lock fresh");
    let r = lock();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let locked = lock_of(dir);
    let hello = locked.package("hello").unwrap();
    assert_eq!(
        (hello.version.as_str(), hello.origin()),
        ("2.10-3", "debian")
    );
    assert_eq!(locked.package("app").unwrap().origin(), "vendor");

    // With the repository gone, its verified indices in the store suffice.
    let before = std::fs::read(dir.join("kiln.lock")).unwrap();
    drop(ven.server);
    std::fs::remove_file(dir.join("kiln.lock")).unwrap();
    let offline = kiln_at(
        &ven.debian,
        &["lock", dir.to_str().unwrap(), "--offline"],
        store.path(),
    );
    assert_eq!(offline.code, 0, "{}", offline.stderr);
    assert_eq!(std::fs::read(dir.join("kiln.lock")).unwrap(), before);
}

#[test]
fn tool_a_child_installs_from_its_parents_repository() {
    let ven = vendor(false);
    let (project, _store) = ven.parent_and_child();
    let child = project.path().join("app");
    let locked = lock_of(&child);
    let app = locked.package("app").expect("the child locks app");
    assert_eq!(app.origin(), "vendor");
    assert!(locked.package("hello").is_none(), "hello is the parent's");
    assert_eq!(locked.repositories[0].key, ven.repo.gpg.fingerprint());
}

#[test]
fn tool_outdated_names_a_newer_version_in_a_repository_with_its_origin() {
    let ven = vendor(false);
    let (project, store) = ven.parent_and_child();
    let d = project.path().to_str().unwrap();
    let outdated = |json: bool| {
        let mut args = vec!["outdated", d];
        if json {
            args.push("--json");
        }
        kiln_at(&ven.debian, &args, store.path())
    };
    let fresh = outdated(true);
    assert_eq!(fresh.code, 0, "{}{}", fresh.stdout, fresh.stderr);

    // The vendor publishes app 1.5.0 beside 1.4.2; the lock still says 1.4.2.
    let newer = build_deb(ven.debs.path(), "app", "1.5.0", "hello");
    let older = ven.debs.path().join("app_1.4.2_amd64.deb");
    ven.repo.publish(&[&older, &newer]);
    let run = outdated(true);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let image = |name: &str| common::item(&v, "images", "name", name).clone();
    let pending = image("child")["pending"].clone();
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{v}");
    let app = &pending[0];
    assert_eq!(app["name"], "app");
    assert_eq!(app["locked"], "1.4.2");
    assert_eq!(app["available"], "1.5.0");
    assert_eq!(app["origin"], "vendor");
    assert_eq!(app["suite"], "stable");
    assert_eq!(app["security"], false);
    let base = image("t");
    assert_eq!(
        base["pending"],
        serde_json::json!([]),
        "hello is fresh: {v}"
    );
    let text = outdated(false);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains("app 1.4.2 -> 1.5.0  (source app, repository vendor stable)"),
        "{}",
        text.stdout
    );
    // The rebuild moves exactly that package of exactly that image.
    let plan = kiln_at(
        &ven.debian,
        &["rebuild", d, "--outdated", "--plan", "--json"],
        store.path(),
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["waves"].as_array().map(Vec::len), Some(1), "{plan}");
    assert_eq!(plan["waves"][0][0]["name"], "child");
    assert_eq!(plan["waves"][0][0]["update"], serde_json::json!(["app"]));
}

#[test]
fn tool_local_packages_lock_from_their_files_and_one_package_twice_is_refused() {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path().join("image");
    let tool = build_deb(&project.path().join("dist"), "tool", "2.0", "hello");
    let newer = build_deb(&project.path().join("next"), "tool", "2.1", "hello");
    let debian = fake_debian();
    let store = tempfile::tempdir().unwrap();
    let write = |local: &[&Path]| {
        let list: Vec<String> = local
            .iter()
            .map(|p| {
                let rel = Path::new("..").join(p.strip_prefix(project.path()).unwrap());
                format!("\"{}\"", rel.display())
            })
            .collect();
        let definition = debian.definition("essential", &[]).replacen(
            "[packages]\n",
            &format!("[packages]\nlocal = [{}]\n", list.join(", ")),
            1,
        );
        common::write(&dir.join("kiln.toml"), &definition);
    };

    write(&[&tool]);
    let r = kiln_at(&debian, &["lock", dir.to_str().unwrap()], store.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let locked = lock_of(&dir);
    let t = locked.package("tool").unwrap();
    assert_eq!((t.version.as_str(), t.origin()), ("2.0", "local"));
    assert_eq!(t.sha256, sha256_hex(&tool));
    assert_eq!(locked.package("hello").unwrap().origin(), "debian");

    write(&[&tool, &newer]);
    let r = kiln_at(&debian, &["lock", dir.to_str().unwrap()], store.path());
    r.assert_exit(1, &["it is package tool again", "tool_2.1_amd64.deb"]);
    assert_eq!(
        lock_of(&dir).package("tool").unwrap().version,
        "2.0",
        "the lock is kept"
    );
}

/// The store holds no blob with `inrelease`'s bytes: only verified
/// InRelease files enter it.
fn assert_no_inrelease_stored(store: &Path, inrelease: &str) {
    let blobs = store.join("blobs/sha256");
    let Ok(entries) = std::fs::read_dir(&blobs) else {
        return;
    };
    for e in entries {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        assert_ne!(
            bytes,
            inrelease.as_bytes(),
            "a refused InRelease was stored"
        );
    }
}

#[test]
fn net_root_tool_a_repository_package_and_a_local_package_are_locked_built_and_run() {
    let work = tempfile::tempdir().unwrap();
    let app = build_deb(&work.path().join("vendor"), "app", "1.4.2", "hello");
    let repo = AptRepo::new(&[&app]);
    let server = Server::serve(repo.dir.path());
    // The team's own package sits beside the image, as CI would leave it.
    let tool = build_deb(&work.path().join("dist"), "tool", "2.0", "hello, app");
    let dir = work.path().join("image");
    repo.gpg.export_armored(&dir.join("keys/vendor.asc"));
    common::write(
        &dir.join("kiln.toml"),
        &format!(
            "[image]\nname = \"vendored\"\nversion = \"1\"\n\n[base]\ndistro = \"debian\"\n\
             suite = \"bookworm\"\nvariant = \"minbase\"\n\n{}[packages]\ninstall = [\"app\"]\n\
             local = [\"../dist/tool_2.0_amd64.deb\"]\n\n[[run]]\n\
             command = \"app > /etc/app-says && tool > /etc/tool-says\"\n\n\
             [outputs]\nformats = [\"tar\"]\n",
            repository_section(&server.uri(), "keys/vendor.asc")
        ),
    );
    let d = dir.to_str().unwrap();

    let r = kiln(&["lock", d], &[]);
    assert_eq!(r.code, 0, "kiln lock: {}", r.stderr);
    let text = std::fs::read_to_string(dir.join("kiln.lock")).unwrap();
    assert!(
        !text.contains("127.0.0.1"),
        "the lock names no URL:\n{text}"
    );
    let lock = lock_of(&dir);
    let [pin] = lock.repositories.as_slice() else {
        panic!("one repository pinned: {text}");
    };
    assert_eq!(
        (pin.name.as_str(), pin.suite.as_str()),
        ("vendor", "stable")
    );
    assert_eq!(pin.key, repo.gpg.fingerprint(), "pinned by its key");
    let inrelease = std::fs::read(repo.inrelease()).unwrap();
    assert_eq!(
        pin.inrelease,
        format!("sha256:{}", sha256_hex(&repo.inrelease())),
        "{} bytes",
        inrelease.len()
    );

    let app_locked = lock.package("app").expect("app is locked");
    assert_eq!(app_locked.origin(), "vendor");
    assert_eq!(app_locked.version, "1.4.2");
    assert_eq!(app_locked.path, "pool/main/app_1.4.2_amd64.deb");
    assert_eq!(app_locked.sha256, sha256_hex(&app));
    let tool_locked = lock.package("tool").expect("tool is locked");
    assert_eq!(tool_locked.origin(), "local");
    assert_eq!(tool_locked.path, "../dist/tool_2.0_amd64.deb");
    assert_eq!(tool_locked.sha256, sha256_hex(&tool));
    assert_eq!(tool_locked.reason, "requested");
    // Their dependency comes from Debian's archive, resolved with them.
    let hello = lock.package("hello").expect("hello, their dependency");
    assert_eq!(hello.origin(), "debian");
    assert!(hello.suite.starts_with("bookworm"), "{}", hello.suite);
    assert!(hello.needed_by.contains(&"app".to_owned()), "{hello:?}");

    // A rebuilt local package makes the lock stale, naming the file.
    let check = kiln(&["lock", d, "--check"], &[]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    let original = std::fs::read(&tool).unwrap();
    build_deb(
        &work.path().join("dist"),
        "tool",
        "2.0",
        "hello, app, hello",
    );
    assert_ne!(std::fs::read(&tool).unwrap(), original);
    let check = kiln(&["lock", d, "--check"], &[]);
    assert_ne!(check.code, 0, "a changed local .deb left the lock fresh");
    let said = format!("{}{}", check.stdout, check.stderr);
    assert!(said.contains("../dist/tool_2.0_amd64.deb"), "{said}");
    std::fs::write(&tool, &original).unwrap();

    // Built: both installed with dpkg, their programs run in the image.
    let out = work.path().join("out");
    let r = kiln(&["build", d, "--out", out.to_str().unwrap(), "--json"], &[]);
    assert_eq!(r.code, 0, "kiln build: {}", r.stderr);
    let root = work.path().join("rootfs");
    common::untar(&out.join("vendored-1.tar"), &root);
    let says = |f: &str| std::fs::read_to_string(root.join("etc").join(f)).unwrap();
    assert!(
        says("app-says").starts_with("app 1.4.2 greets"),
        "{}",
        says("app-says")
    );
    assert!(
        says("tool-says").starts_with("tool 2.0 greets"),
        "{}",
        says("tool-says")
    );
    let version = run_tool(Command::new("chroot").arg(&root).arg("app"));
    assert!(version.starts_with("app 1.4.2 greets"), "{version}");
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    for name in ["app", "tool", "hello"] {
        assert!(
            status.contains(&format!("Package: {name}\nStatus: install ok installed")),
            "{name} is not installed by dpkg"
        );
    }

    // The SBOM says where each package came from.
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("vendored-1.spdx.json")).unwrap()).unwrap();
    let spdx = |name: &str| common::item(&sbom, "packages", "name", name).clone();
    assert_eq!(spdx("app")["comment"], "origin: vendor");
    assert_eq!(spdx("tool")["comment"], "origin: local");
    assert_eq!(spdx("hello")["supplier"], "Organization: Debian");

    // `kiln inspect` shows where each package came from.
    let r = kiln(
        &["inspect", d, "--out", out.to_str().unwrap(), "--json"],
        &[],
    );
    assert_eq!(r.code, 0, "kiln inspect: {}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let origin_of = |name: &str| common::item(&report, "packages", "name", name)["origin"].clone();
    assert_eq!(origin_of("app"), "vendor", "{}", r.stdout);
    assert_eq!(origin_of("tool"), "local");
    assert_eq!(origin_of("hello"), "debian");
}
