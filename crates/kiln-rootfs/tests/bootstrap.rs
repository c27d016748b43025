//! Real bootstraps from the packages of `examples/base/kiln.lock`. They need
//! the network (once: the packages are kept in a store under the target
//! dir) and root, hence the `net_root_` prefix.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kiln_rootfs::{BuildEnv, Event};

/// The base image without its kernel: minbase plus the tools it asks for.
fn base_without_kernel(p: &kiln_lock::LockedPackage) -> bool {
    !p.name.starts_with("linux-image")
}

fn verbose_env(epoch: i64) -> BuildEnv {
    let mut env = BuildEnv::new(epoch);
    if std::env::var_os("KILN_TEST_VERBOSE").is_some() {
        let t = Instant::now();
        env.on_event = Some(Box::new(move |e| match e {
            Event::Step(s) => eprintln!("{:7.2} == {s}", t.elapsed().as_secs_f64()),
            Event::Output(l) => eprintln!("{:7.2}    {l}", t.elapsed().as_secs_f64()),
            Event::LastDpkgRun { .. } => {
                eprintln!("{:7.2} == last dpkg run", t.elapsed().as_secs_f64())
            }
        }));
    }
    env
}

/// A scratch directory under the target dir (not /tmp: a tmpfs there would
/// measure another file system than the one builds use).
fn scratch(name: &str) -> tempfile::TempDir {
    // KILN_TEST_SCRATCH: e.g. /dev/shm, to measure a build in memory.
    let base = std::env::var_os("KILN_TEST_SCRATCH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-rootfs-tests"));
    fs_err::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .unwrap()
}

#[test]
fn net_root_install_examples_base_all_ii_and_audit_clean() {
    let (debs, epoch) = common::lock_debs("base", base_without_kernel);
    let dir = scratch("install");
    let root = dir.path().join("root");
    let t = Instant::now();
    let report =
        kiln_rootfs::install(&root, &debs, &verbose_env(epoch)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "installed {} packages in {:?}: {:?}",
        report.packages.len(),
        t.elapsed(),
        report.timings
    );
    assert!(report.bootstrapped);
    assert_eq!(report.packages.len(), debs.len());
    assert!(report.packages.iter().all(|p| p.is_ok()));

    // Ask the image's own tools, in a plain chroot.
    let audit = Command::new("chroot")
        .arg(&root)
        .args(["dpkg", "--audit"])
        .output()
        .unwrap();
    assert!(audit.status.success());
    assert_eq!(String::from_utf8_lossy(&audit.stdout), "");
    let status = Command::new("chroot")
        .arg(&root)
        .args(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Package}\\n"])
        .output()
        .unwrap();
    let lines = String::from_utf8(status.stdout).unwrap();
    assert_eq!(lines.lines().count(), debs.len());
    for line in lines.lines() {
        assert!(line.starts_with("ii "), "{line}");
    }
    // Nothing stays mounted, nothing is left of the build's scaffolding.
    let mounts = fs_err::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(root.to_str().unwrap()), "{mounts}");
    assert!(!root.join("usr/sbin/policy-rc.d").exists());
    assert!(!root.join("var/cache/kiln-debs").exists());
    // Merged /usr, as Debian 12 has it.
    assert_eq!(
        fs_err::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );

    // A failing [[run]] step says which step, how it ended, and what it printed.
    let def_dir = dir.path().join("def");
    fs_err::create_dir_all(&def_dir).unwrap();
    fs_err::write(
        def_dir.join("kiln.toml"),
        "[image]\nname = \"failing\"\nversion = \"1\"\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\n\n[[run]]\ncommand = \"echo first; echo boom >&2; exit 3\"\n",
    )
    .unwrap();
    let def = kiln_spec::load(&def_dir).unwrap();
    let err = kiln_rootfs::customize(&root, &def, &verbose_env(epoch))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[[run]] #1") && err.contains("exit status 3") && err.contains("first\nboom"),
        "{err}"
    );
    assert!(!root.join("usr/sbin/policy-rc.d").exists());

    hermetic_steps(&root, &def_dir, epoch);

    if std::env::var_os("KILN_TEST_KEEP").is_some() {
        eprintln!("kept {}", dir.keep().display());
    }
}

/// `[[run]]` steps have only a loopback network unless they say `network =
/// true`: a fetch from this test's HTTP server on the host's 127.0.0.1
/// fails without it and succeeds with it. `hostname` inside renames only
/// the step's own UTS namespace; `/proc/sys` and `/sys` are read-only.
fn hermetic_steps(root: &Path, def_dir: &Path, epoch: i64) {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for conn in server.incoming() {
            let Ok(mut conn) = conn else { continue };
            // The whole request first: a socket closed with unread bytes
            // resets, and the client would lose the answer.
            let (mut request, mut buf) = (Vec::new(), [0u8; 1024]);
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello from the host\n");
            let _ = conn.shutdown(std::net::Shutdown::Write);
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    let fetch = format!(
        r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3' > /fetched && grep -q 'hello from the host' /fetched"#
    );
    let customize = |network: Option<bool>, command: &str| {
        let net = network.map_or(String::new(), |n| format!("network = {n}\n"));
        fs_err::write(
            def_dir.join("kiln.toml"),
            format!(
                "[image]\nname = \"net\"\nversion = \"1\"\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\n\n[[run]]\ncommand = '''{command}'''\n{net}"
            ),
        )
        .unwrap();
        let def = kiln_spec::load(def_dir).unwrap_or_else(|e| panic!("{e}"));
        kiln_rootfs::customize(root, &def, &verbose_env(epoch)).map_err(|e| e.to_string())
    };

    for network in [None, Some(false)] {
        let err = customize(network, &fetch).unwrap_err();
        assert!(err.contains("[[run]] #1"), "{err}");
        assert_eq!(
            served.load(Ordering::SeqCst),
            0,
            "a hermetic step reached the host"
        );
    }
    customize(Some(true), &fetch).unwrap_or_else(|e| panic!("with network = true: {e}"));
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert_eq!(
        fs_err::read_to_string(root.join("fetched")).unwrap(),
        "HTTP/1.0 200 OK\r\n\r\nhello from the host\n"
    );
    fs_err::remove_file(root.join("fetched")).unwrap();

    let host_name = || fs_err::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let before = host_name();
    for network in [None, Some(true)] {
        customize(
            network,
            r#"hostname kiln-step-renamed && test "$(hostname)" = kiln-step-renamed && if (echo x > /proc/sys/kernel/domainname) 2>/dev/null; then exit 10; fi && if (echo x > /sys/kernel/uevent_helper) 2>/dev/null; then exit 11; fi"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(host_name(), before, "a step renamed the host");
    }
}

/// A definition that uses every customisation, written next to its files.
fn custom_definition(dir: &Path) -> kiln_spec::Definition {
    fs_err::create_dir_all(dir.join("files")).unwrap();
    fs_err::write(dir.join("files/motd"), "baked by kiln\n").unwrap();
    fs_err::write(dir.join("setup.sh"), "#!/bin/sh\nset -e\nmkdir -p /srv/app\necho ready > /srv/app/state\nchown app:app /srv/app\n").unwrap();
    fs_err::write(
        dir.join("kiln.toml"),
        r#"
[image]
name = "custom"
version = "1"

[base]
distro = "debian"
suite = "bookworm"
variant = "minbase"

[[users]]
name = "app"
system = true

[[users]]
name = "alice"
groups = ["sudo-less", "users"]

[[files]]
src = "files/motd"
dst = "/etc/motd"
mode = "0640"
owner = "root:app"

[[run]]
script = "setup.sh"

[[run]]
command = "test ! -e /run/systemd/system && ischroot && echo $SOURCE_DATE_EPOCH > /etc/kiln-built"

[services]
enable = ["systemd-networkd.service"]
disable = ["e2scrub_reap.service"]
"#
        .replace(
            r#"groups = ["sudo-less", "users"]"#,
            r#"groups = ["users"]"#,
        ),
    )
    .unwrap();
    kiln_spec::load(dir).unwrap_or_else(|e| panic!("{e}"))
}

fn build(root: &Path, debs: &[kiln_rootfs::Deb], def: &kiln_spec::Definition, env: &BuildEnv) {
    kiln_rootfs::install(root, debs, env).unwrap_or_else(|e| panic!("install: {e}"));
    kiln_rootfs::customize(root, def, env).unwrap_or_else(|e| panic!("customize: {e}"));
    kiln_rootfs::normalize(root, env).unwrap_or_else(|e| panic!("normalize: {e}"));
}

/// kiln unpacks the packages and dpkg configures them; the oracle is dpkg
/// doing both (`dpkg --install`, as mmdebstrap does), in the same run: the
/// two trees must be the same to the byte, database and all.
#[test]
fn net_root_bootstrap_kiln_unpack_gives_the_tree_dpkg_gives() {
    let (debs, epoch) = common::lock_debs("base", base_without_kernel);
    let dir = scratch("twice");
    let def = custom_definition(&dir.path().join("def"));
    let env = verbose_env(epoch);
    let mut by_dpkg = verbose_env(epoch);
    by_dpkg.unpacker = kiln_rootfs::Unpacker::Dpkg;
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let t = Instant::now();
    build(&a, &debs, &def, &env);
    eprintln!(
        "kiln unpacks (install, customize, normalize): {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    build(&b, &debs, &def, &by_dpkg);
    eprintln!(
        "dpkg unpacks (install, customize, normalize): {:?}",
        t.elapsed()
    );
    let (ma, mb) = (common::manifest(&a), common::manifest(&b));
    let only_a: Vec<_> = ma.iter().filter(|l| !mb.contains(l)).collect();
    let only_b: Vec<_> = mb.iter().filter(|l| !ma.contains(l)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "trees differ:\n< {only_a:#?}\n> {only_b:#?}"
    );
    assert!(
        ma.len() > 10_000,
        "suspiciously small tree: {} entries",
        ma.len()
    );

    // The customisations are there...
    let passwd = fs_err::read_to_string(a.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("app:") && l.ends_with(":/nonexistent:/usr/sbin/nologin")),
        "{passwd}"
    );
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("alice:") && l.ends_with(":/home/alice:/bin/bash")),
        "{passwd}"
    );
    assert!(a.join("home/alice/.bashrc").exists());
    assert_eq!(
        fs_err::read_to_string(a.join("srv/app/state")).unwrap(),
        "ready\n"
    );
    assert_eq!(
        fs_err::read_to_string(a.join("etc/kiln-built")).unwrap(),
        format!("{epoch}\n")
    );
    let motd = std::fs::symlink_metadata(a.join("etc/motd")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(motd.mode() & 0o7777, 0o640);
    assert!(
        a.join("etc/systemd/system/multi-user.target.wants/systemd-networkd.service")
            .is_symlink()
    );
    assert!(
        !a.join("etc/systemd/system/multi-user.target.wants/e2scrub_reap.service")
            .exists()
    );
    assert!(!a.join("tmp/kiln-run").exists());
    // ...and so is the normalisation.
    assert_eq!(fs_err::read(a.join("etc/machine-id")).unwrap(), b"");
    assert_eq!(
        fs_err::read_to_string(a.join("etc/hostname")).unwrap(),
        "localhost\n"
    );
    assert!(!a.join("etc/resolv.conf").exists());
    assert!(!a.join("var/log/dpkg.log").exists());
    assert!(!a.join("var/cache/ldconfig/aux-cache").exists());
    let day = (epoch / 86_400).to_string();
    for line in fs_err::read_to_string(a.join("etc/shadow"))
        .unwrap()
        .lines()
    {
        let change = line.split(':').nth(2).unwrap();
        assert!(change.is_empty() || change == day, "{line}");
    }
    assert!(
        ma.iter()
            .all(|l| l.split(' ').nth(3).unwrap().parse::<i64>().unwrap() <= epoch)
    );
}

#[test]
fn net_root_child_web_installs_on_top_of_base() {
    let (base, epoch) = common::lock_debs("base", base_without_kernel);
    let in_base: Vec<String> = base.iter().map(|d| d.name.clone()).collect();
    let (web, _) = common::lock_debs("web", |p| !p.name.starts_with("linux-image"));
    let added: Vec<_> = web
        .into_iter()
        .filter(|d| !in_base.contains(&d.name))
        .collect();
    assert!(added.iter().any(|d| d.name == "nginx-light"));
    let dir = scratch("child");
    let root = dir.path().join("root");
    let env = verbose_env(epoch);
    let base_def = kiln_spec::load(&common::workspace().join("examples/base")).unwrap();
    build(&root, &base, &base_def, &env);

    let report = kiln_rootfs::install(&root, &added, &env).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.bootstrapped);
    assert_eq!(report.packages.len(), base.len() + added.len());
    assert!(report.packages.iter().all(|p| p.is_ok()));
    let web_def = kiln_spec::load(&common::workspace().join("examples/web")).unwrap();
    kiln_rootfs::customize(&root, &web_def, &env).unwrap_or_else(|e| panic!("{e}"));
    kiln_rootfs::normalize(&root, &env).unwrap();
    let site =
        fs_err::read_to_string(common::workspace().join("examples/web/files/site.conf")).unwrap();
    assert_eq!(
        fs_err::read_to_string(root.join("etc/nginx/sites-enabled/default")).unwrap(),
        site
    );
    assert!(
        root.join("etc/systemd/system/multi-user.target.wants/nginx.service")
            .is_symlink()
    );
    // No daemon was started: no process is left whose root or working
    // directory is the image (whatever else runs on this machine).
    let left = processes_inside(&root);
    assert!(left.is_empty(), "still running in the image: {left:?}");
}

/// `pid: command` of every process whose root or cwd is under `root`.
fn processes_inside(root: &std::path::Path) -> Vec<String> {
    let root = fs_err::canonicalize(root).unwrap();
    let mut inside = Vec::new();
    for entry in fs_err::read_dir("/proc").unwrap().flatten() {
        let pid = entry.path();
        let within = ["root", "cwd"]
            .iter()
            .any(|l| std::fs::read_link(pid.join(l)).is_ok_and(|p| p.starts_with(&root)));
        if within {
            let comm = std::fs::read_to_string(pid.join("comm")).unwrap_or_default();
            inside.push(format!(
                "{}: {}",
                entry.file_name().to_string_lossy(),
                comm.trim()
            ));
        }
    }
    inside
}

#[test]
fn net_root_install_examples_base_with_its_kernel() {
    let (debs, epoch) = common::lock_debs("base", |_| true);
    let dir = scratch("kernel");
    let root = dir.path().join("root");
    let t = Instant::now();
    let mut env = verbose_env(epoch);
    env.initramfs = kiln_spec::Initramfs::Minimal;
    let report = kiln_rootfs::install(&root, &debs, &env).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("with the kernel: {:?}: {:?}", t.elapsed(), report.timings);
    assert!(report.packages.iter().all(|p| p.is_ok()));
    let boot: Vec<String> = fs_err::read_dir(root.join("boot"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(boot.iter().any(|f| f.starts_with("vmlinuz-")), "{boot:?}");
    let initrd = boot
        .iter()
        .find(|f| f.starts_with("initrd.img-"))
        .unwrap_or_else(|| panic!("no initrd: {boot:?}"));
    // The minimal initramfs: the drivers of every disk kiln ships, and not
    // what Debian's MODULES=most adds (other file systems, network roots).
    let modules = initramfs_modules(&root.join("boot").join(initrd));
    for m in [
        "virtio_blk.ko",
        "virtio_pci.ko",
        "virtio_scsi.ko",
        "sd_mod.ko",
        "hv_storvsc.ko",
        "vmw_pvscsi.ko",
        "xen-blkfront.ko",
    ] {
        assert!(modules.iter().any(|n| n == m), "{m} missing: {modules:?}");
    }
    for m in ["btrfs.ko", "xfs.ko", "nfs.ko", "virtio_net.ko"] {
        assert!(!modules.iter().any(|n| n == m), "{m} is there: {modules:?}");
    }
}

/// The kernel modules (file names) in an initramfs-tools initrd: an
/// optional uncompressed cpio (CPU microcode), then a zstd-compressed one.
fn initramfs_modules(initrd: &Path) -> Vec<String> {
    let bytes = fs_err::read(initrd).unwrap();
    let magic = [0x28, 0xb5, 0x2f, 0xfd];
    let start = bytes
        .windows(4)
        .position(|w| w == magic)
        .expect("a zstd-compressed cpio (COMPRESS=zstd)");
    let cpio = zstd::decode_all(&bytes[start..]).unwrap();
    // newc: "070701", 13 eight-digit hex fields, the name, the data; the
    // name and the data each padded to 4 bytes.
    let field = |at: usize, i: usize| {
        let hex = std::str::from_utf8(&cpio[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
        usize::from_str_radix(hex, 16).unwrap()
    };
    let mut names = Vec::new();
    let mut at = 0;
    while at + 110 <= cpio.len() && &cpio[at..at + 6] == b"070701" {
        let (size, name_len) = (field(at, 6), field(at, 11));
        let name = String::from_utf8_lossy(&cpio[at + 110..at + 110 + name_len - 1]).into_owned();
        if name == "TRAILER!!!" {
            break;
        }
        if let Some(file) = name.rsplit('/').next().filter(|f| f.ends_with(".ko")) {
            names.push(file.to_string());
        }
        let data = (at + 110 + name_len).next_multiple_of(4);
        at = (data + size).next_multiple_of(4);
    }
    names
}
