//! Stage cache keys: the hash of every input a stage reads, so a changed
//! input can never be served a stale result (mkosi's most reported bug),
//! and an unchanged one never redoes work.

use std::path::Path;

use kiln_lock::Lock;
use kiln_spec::{Definition, RunStep};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::fsutil;

/// Bumped whenever the rootfs stage would produce different bytes from the
/// same inputs (a new normalisation, a different dpkg invocation): old
/// entries are then simply never read again.
pub(crate) const ROOTFS_STAGE: &str = "rootfs-v2";

/// Feeds length-prefixed fields, so ("ab","c") and ("a","bc") differ.
struct KeyHasher(Sha256);

impl KeyHasher {
    /// Every key starts with kiln's own version: a new kiln may write other
    /// bytes from the same inputs, and nobody has to remember to bump a
    /// stage name for it.
    fn new(stage: &str) -> KeyHasher {
        KeyHasher::versioned(stage, env!("CARGO_PKG_VERSION"))
    }

    fn versioned(stage: &str, kiln: &str) -> KeyHasher {
        let mut h = KeyHasher(Sha256::new());
        h.field(stage.as_bytes());
        h.field(kiln.as_bytes());
        h
    }

    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn text(&mut self, s: &str) {
        self.field(s.as_bytes());
    }

    fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// The rootfs of one image in a chain: its parent's rootfs key, the locked
/// packages, the files' contents, modes and owners, users, run steps (the
/// scripts' contents, not their paths), services, the initramfs kind, and
/// the build time.
pub(crate) fn rootfs_key(
    parent: Option<&str>,
    def: &Definition,
    lock: &Lock,
    source_date_epoch: i64,
) -> Result<String, Error> {
    let mut h = KeyHasher::new(ROOTFS_STAGE);
    h.text(parent.unwrap_or("no parent"));
    h.text(&source_date_epoch.to_string());
    for p in &lock.packages {
        h.text(&p.name);
        h.text(&p.version);
        h.text(&p.sha256);
        h.text(&p.reason);
    }
    h.text("files");
    for f in &def.files {
        h.text(&f.dst);
        h.text(&format!("{:o}", f.mode));
        h.text(&f.owner.to_string());
        h.field(&file_digest(&f.src.path)?);
    }
    h.text("users");
    h.text(&json(&def.users)?);
    h.text("run");
    for run in &def.run {
        // A networked step's result depends on more than its text.
        if run.network {
            h.text("network");
        }
        match &run.step {
            RunStep::Script(p) => {
                h.text("script");
                h.field(&file_digest(&p.path)?);
            }
            RunStep::Command(c) => {
                h.text("command");
                h.text(c);
            }
        }
    }
    h.text("services");
    h.text(&json(&def.services)?);
    // Written into the image before the kernel's package builds the
    // initramfs, so only where this image names the kernel.
    h.text("initramfs");
    h.text(initramfs(def).map_or("", |i| i.as_str()));
    Ok(h.finish())
}

/// The initramfs this image's rootfs builds: only an image that names a
/// kernel installs one.
pub(crate) fn initramfs(def: &Definition) -> Option<kiln_spec::Initramfs> {
    def.disk.kernel.as_ref().map(|_| def.disk.initramfs)
}

/// An output derived from a rootfs: its key and the format's name.
pub(crate) fn output_key(rootfs: &str, what: &str, extra: &str) -> String {
    let mut h = KeyHasher::new("output-v1");
    h.text(rootfs);
    h.text(what);
    h.text(extra);
    h.finish()
}

/// A disk of the rootfs `rootfs`: its size, the files and links kiln adds
/// to it, and the versions of the tools that write it (`tools`, from
/// `kiln_disk::tool_versions`). The title, build time and architecture are
/// not hashed here: the rootfs key covers the build time and the packages
/// (so the architecture), and the title is the output's file name.
pub(crate) fn disk_key(rootfs: &str, spec: &kiln_disk::DiskSpec, tools: &str) -> String {
    let mut inputs = format!("size {}\n", spec.size);
    for (path, mode, contents) in &spec.extra_files {
        inputs.push_str(&format!(
            "{path} {mode:o} {}\n",
            kiln_store::Digest::of(contents).hex()
        ));
    }
    for (path, target) in &spec.extra_links {
        inputs.push_str(&format!("{path} -> {target}\n"));
    }
    inputs.push_str(tools);
    output_key(rootfs, "disk", &inputs)
}

fn file_digest(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = fs_err::read(path).map_err(fsutil::io(path))?;
    Ok(Sha256::digest(&bytes).to_vec())
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("serialising a key input: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEF: &str = r#"
[image]
name = "web"
version = "1"
[base]
distro = "debian"
suite = "bookworm"
[[files]]
src = "site.conf"
dst = "/etc/site.conf"
[[run]]
script = "setup.sh"
[[users]]
name = "app"
system = true
[services]
enable = ["nginx.service"]
[disk]
kernel = "linux-image-cloud-amd64"
"#;

    fn lock() -> Lock {
        let text = format!(
            "version = 1\nchecksum = \"x\"\n[inputs]\n[[package]]\nname = \"curl\"\nversion = \"1\"\narchitecture = \"amd64\"\nsuite = \"bookworm\"\npath = \"p\"\nsize = 1\nsha256 = \"{}\"\nreason = \"requested\"\n",
            "ab".repeat(32)
        );
        toml::from_str(&text).unwrap()
    }

    fn key_with(edit: impl Fn(&Path, &mut String, &mut Lock)) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site.conf"), "server {}\n").unwrap();
        std::fs::write(dir.path().join("setup.sh"), "#!/bin/sh\ntrue\n").unwrap();
        let mut text = DEF.to_string();
        let mut l = lock();
        edit(dir.path(), &mut text, &mut l);
        let def = kiln_spec::parse(&text, &dir.path().join("kiln.toml")).unwrap();
        rootfs_key(None, &def, &l, 1_700_000_000).unwrap()
    }

    type Edit = Box<dyn Fn(&Path, &mut String, &mut Lock)>;

    #[test]
    fn every_input_changes_the_rootfs_key_and_nothing_else_does() {
        let base = key_with(|_, _, _| {});
        assert_eq!(base, key_with(|_, _, _| {}), "the key is stable");
        let edits: Vec<(&str, Edit)> = vec![
            (
                "file content",
                Box::new(|d, _, _| std::fs::write(d.join("site.conf"), "server { }\n").unwrap()),
            ),
            (
                "file mode",
                Box::new(|_, t, _| {
                    *t = t.replace(
                        "dst = \"/etc/site.conf\"",
                        "dst = \"/etc/site.conf\"\nmode = \"0600\"",
                    )
                }),
            ),
            (
                "file destination",
                Box::new(|_, t, _| *t = t.replace("/etc/site.conf", "/etc/other.conf")),
            ),
            (
                "script content",
                Box::new(|d, _, _| {
                    std::fs::write(d.join("setup.sh"), "#!/bin/sh\nfalse\n").unwrap()
                }),
            ),
            (
                "user",
                Box::new(|_, t, _| *t = t.replace("name = \"app\"", "name = \"www\"")),
            ),
            (
                "service",
                Box::new(|_, t, _| *t = t.replace("nginx.service", "ssh.service")),
            ),
            (
                "initramfs kind",
                Box::new(|_, t, _| *t = t.replace("kernel = ", "initramfs = \"full\"\nkernel = ")),
            ),
            (
                "package version",
                Box::new(|_, _, l| l.packages[0].version = "2".into()),
            ),
            (
                "package digest",
                Box::new(|_, _, l| l.packages[0].sha256 = "cd".repeat(32)),
            ),
        ];
        for (what, edit) in edits {
            assert_ne!(
                key_with(edit),
                base,
                "changing the {what} must change the key"
            );
        }
        // What the rootfs does not read leaves the key alone.
        let same: Vec<(&str, Edit)> = vec![
            (
                "image version",
                Box::new(|_, t, _| *t = t.replace("version = \"1\"", "version = \"2\"")),
            ),
            (
                "a check",
                Box::new(|_, t, _| t.push_str("[[check]]\nunit = \"nginx.service\"\n")),
            ),
            (
                "outputs",
                Box::new(|_, t, _| t.push_str("[outputs]\nformats = [\"tar\"]\n")),
            ),
            // Runtime configuration is delivered at boot, never baked.
            (
                "runtime",
                Box::new(|_, t, _| {
                    t.push_str("[runtime]\nenv_file = \"/etc/default/web\"\nrequired = [\"KEY\"]\n")
                }),
            ),
        ];
        for (what, edit) in same {
            assert_eq!(
                key_with(edit),
                base,
                "changing {what} must not rebuild the rootfs"
            );
        }
    }

    #[test]
    fn a_new_kiln_version_makes_new_keys() {
        let key = |kiln: &str| {
            let mut h = KeyHasher::versioned(ROOTFS_STAGE, kiln);
            h.text("same inputs");
            h.finish()
        };
        assert_eq!(key("0.1.0"), key("0.1.0"));
        assert_ne!(key("0.1.0"), key("0.1.1"));
        let mut h = KeyHasher::new(ROOTFS_STAGE);
        h.text("same inputs");
        assert_eq!(h.finish(), key(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn the_parent_key_and_build_time_are_inputs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site.conf"), "x").unwrap();
        std::fs::write(dir.path().join("setup.sh"), "x").unwrap();
        let def = kiln_spec::parse(DEF, &dir.path().join("kiln.toml")).unwrap();
        let a = rootfs_key(Some("p1"), &def, &lock(), 1).unwrap();
        assert_ne!(a, rootfs_key(Some("p2"), &def, &lock(), 1).unwrap());
        assert_ne!(a, rootfs_key(Some("p1"), &def, &lock(), 2).unwrap());
    }

    /// A child image's layer is the difference between its tree and its
    /// parent's, written at the build time; its record is stored under the
    /// child's rootfs key (`stages::layer`), which must so change with the
    /// parent's packages, the child's own inputs and the build time, and
    /// with nothing else.
    #[test]
    fn every_input_changes_the_layer_key_and_nothing_else_does() {
        let layer_key = |parent_lock: &Lock, edit: &dyn Fn(&Path, &mut String, &mut Lock), sde| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("site.conf"), "server {}\n").unwrap();
            std::fs::write(dir.path().join("setup.sh"), "#!/bin/sh\ntrue\n").unwrap();
            let mut text = DEF.to_string();
            let mut child_lock = lock();
            child_lock.packages[0].name = "nginx".into();
            edit(dir.path(), &mut text, &mut child_lock);
            let def = kiln_spec::parse(&text, &dir.path().join("kiln.toml")).unwrap();
            let base = kiln_spec::parse(
                "[image]\nname = \"base\"\nversion = \"1\"\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\n",
                &dir.path().join("base.toml"),
            )
            .unwrap();
            let parent = rootfs_key(None, &base, parent_lock, sde).unwrap();
            rootfs_key(Some(&parent), &def, &child_lock, sde).unwrap()
        };
        let none = |_: &Path, _: &mut String, _: &mut Lock| {};
        let before = layer_key(&lock(), &none, 1);
        assert_eq!(before, layer_key(&lock(), &none, 1), "the key is stable");

        let mut newer_parent = lock();
        newer_parent.packages[0].version = "2".into();
        assert_ne!(
            layer_key(&newer_parent, &none, 1),
            before,
            "the parent's packages"
        );
        assert_ne!(layer_key(&lock(), &none, 2), before, "the build time");
        let changes: Vec<(&str, Edit)> = vec![
            (
                "a package of its own",
                Box::new(|_, _, l| l.packages[0].sha256 = "cd".repeat(32)),
            ),
            (
                "a file's content",
                Box::new(|d, _, _| std::fs::write(d.join("site.conf"), "x\n").unwrap()),
            ),
            (
                "a script's content",
                Box::new(|d, _, _| std::fs::write(d.join("setup.sh"), "#!/bin/sh\n").unwrap()),
            ),
        ];
        for (what, edit) in changes {
            assert_ne!(layer_key(&lock(), &*edit, 1), before, "{what}");
        }
        let unrelated: Vec<(&str, Edit)> = vec![
            (
                "a comment in kiln.toml",
                Box::new(|_, t, _| t.insert_str(0, "# the web server\n")),
            ),
            (
                "a file beside kiln.toml that is not in [[files]]",
                Box::new(|d, _, _| std::fs::write(d.join("notes.txt"), "todo\n").unwrap()),
            ),
            (
                "a check",
                Box::new(|_, t, _| t.push_str("[[check]]\nunit = \"nginx.service\"\n")),
            ),
        ];
        for (what, edit) in unrelated {
            assert_eq!(layer_key(&lock(), &*edit, 1), before, "{what}");
        }
    }

    fn disk_spec() -> kiln_disk::DiskSpec {
        kiln_disk::DiskSpec {
            size: 2 << 30,
            image_digest: String::new(),
            source_date_epoch: 1,
            title: "web 1".into(),
            architecture: kiln_spec::Architecture::Amd64,
            extra_files: vec![("/usr/bin/agent".into(), 0o755, b"agent".to_vec())],
            extra_links: vec![("/etc/a.wants/agent".into(), "/etc/agent".into())],
        }
    }

    #[test]
    fn every_input_changes_the_disk_key_and_nothing_else_does() {
        const TOOLS: &str = "mke2fs 1.47.0\n";
        let before = disk_key("rootfs", &disk_spec(), TOOLS);
        assert_eq!(before, disk_key("rootfs", &disk_spec(), TOOLS));
        type SpecEdit = Box<dyn Fn(&mut kiln_disk::DiskSpec)>;
        let changes: Vec<(&str, SpecEdit)> = vec![
            ("size", Box::new(|s| s.size = 3 << 30)),
            (
                "an added file's path",
                Box::new(|s| s.extra_files[0].0 = "/usr/bin/b".into()),
            ),
            (
                "an added file's mode",
                Box::new(|s| s.extra_files[0].1 = 0o700),
            ),
            (
                "an added file's content",
                Box::new(|s| s.extra_files[0].2 = b"v2".to_vec()),
            ),
            (
                "a link's target",
                Box::new(|s| s.extra_links[0].1 = "/etc/other".into()),
            ),
            (
                "one more link",
                Box::new(|s| s.extra_links.push(("/x".into(), "/y".into()))),
            ),
        ];
        for (what, edit) in changes {
            let mut spec = disk_spec();
            edit(&mut spec);
            assert_ne!(disk_key("rootfs", &spec, TOOLS), before, "{what}");
        }
        assert_ne!(
            disk_key("other rootfs", &disk_spec(), TOOLS),
            before,
            "the tree"
        );
        assert_ne!(
            disk_key("rootfs", &disk_spec(), "mke2fs 1.47.1\n"),
            before,
            "a tool's version"
        );
        // Not the disk's own inputs: the title is the output's file name,
        // the build time is in the rootfs key, as is the architecture
        // (through the locked packages' digests).
        let mut spec = disk_spec();
        spec.title = "web 2".into();
        spec.source_date_epoch = 2;
        spec.image_digest = "ignored".into();
        assert_eq!(disk_key("rootfs", &spec, TOOLS), before);
    }
}
