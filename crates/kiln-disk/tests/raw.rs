//! write_raw and convert on a small synthetic tree: the disk's structure as
//! other tools read it, identical bytes from two copies of the tree, and
//! errors that say what to do. Needs e2fsprogs, mtools and qemu-utils.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{extract, read_gpt, run};
use kiln_disk::{BootFiles, DiskError, DiskFormat, DiskSpec, convert, write_raw};

const KVER: &str = "6.1.0-99-amd64";
const EPOCH: i64 = 1_700_000_000;

fn spec() -> DiskSpec {
    DiskSpec {
        size: 400 << 20,
        image_digest: "sha256:5eed".into(),
        source_date_epoch: EPOCH,
        title: "test 1.0".into(),
        architecture: kiln_deb::Architecture::Amd64,
        extra_files: Vec::new(),
        extra_links: Vec::new(),
    }
}

/// The boot files of [`tree`], as kiln-build finds them.
fn boot() -> BootFiles {
    BootFiles {
        kernel_version: KVER.into(),
        kernel: format!("boot/vmlinuz-{KVER}").into(),
        initrd: format!("boot/initrd.img-{KVER}").into(),
        loader: "usr/lib/systemd/boot/efi/systemd-bootx64.efi".into(),
    }
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A small root tree with what a bootable one has, plus a symlink, a hard
/// link and a large file. `reversed` creates the entries in the opposite
/// order, so directory order on disk differs between two trees.
fn tree(dir: &Path, reversed: bool) -> PathBuf {
    let root = dir.join("root");
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (format!("boot/vmlinuz-{KVER}"), vec![0x4d; 300_000]),
        (format!("boot/initrd.img-{KVER}"), vec![0x1f; 200_000]),
        ("boot/vmlinuz-5.10.0-1-amd64".into(), b"older".to_vec()),
        ("boot/initrd.img-5.10.0-1-amd64".into(), b"older".to_vec()),
        (
            "usr/lib/systemd/boot/efi/systemd-bootx64.efi".into(),
            b"MZ systemd-boot".to_vec(),
        ),
        (
            "etc/fstab".into(),
            b"# UNCONFIGURED FSTAB FOR BASE SYSTEM\n".to_vec(),
        ),
        ("etc/hostname".into(), b"localhost\n".to_vec()),
        ("usr/bin/tool".into(), vec![7; 5 << 20]),
    ];
    for i in 0..50 {
        files.push((
            format!("usr/share/doc/p{i}/copyright"),
            format!("package {i}\n").into_bytes(),
        ));
    }
    if reversed {
        files.reverse();
    }
    for (rel, bytes) in &files {
        put(&root, rel, bytes);
    }
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    std::fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool2")).unwrap();
    // The store normalises mtimes, of symbolic links too; do the same so
    // both copies agree.
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: EPOCH - 100,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: EPOCH - 100,
            tv_nsec: 0,
        },
    };
    for e in walk(&root) {
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &e,
            &t,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
    root
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if p.is_dir() && !p.is_symlink() {
            for e in std::fs::read_dir(&p).unwrap() {
                out.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    out.sort();
    out
}

/// Every path's type, mode, times and bytes: to prove the tree was not
/// touched.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, i64, i64, i64, Vec<u8>)> {
    walk(root)
        .into_iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let bytes = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                vec![]
            };
            (p, (m.mode(), m.mtime(), m.ctime(), m.ctime_nsec(), bytes))
        })
        .collect()
}

#[test]
fn raw_disk_has_a_gpt_an_esp_and_an_ext4_root_that_tools_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path(), false);
    let before = snapshot(&root);
    let out = dir.path().join("disk.raw");
    // What a build killed mid-disk leaves: its scratch directory, and the
    // owner file beside it that no process holds locked any more.
    let left = dir.path().join(".kiln-disk-killed");
    std::fs::create_dir(&left).unwrap();
    std::fs::write(left.join("disk.raw"), vec![0u8; 1 << 20]).unwrap();
    std::fs::write(dir.path().join(".kiln-disk-killed.owner"), b"").unwrap();
    let raw = write_raw(&root, &boot(), &spec(), &out).unwrap();
    assert_eq!(snapshot(&root), before, "the root tree must not change");
    assert!(!left.exists(), "the killed build's scratch directory stays");
    let l = &raw.layout;
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 400 << 20);
    assert_eq!(raw.kernel_version, KVER, "the newest kernel");
    assert_eq!(raw.digest, kiln_disk::sha256_file(&out).unwrap());
    // Nothing left beside the output.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // Both GPTs, pointing at each other, with the DPS types.
    let (disk_guid, alternate, entries) = read_gpt(&out, 1);
    let sectors = (400u64 << 20) / 512;
    assert_eq!(alternate, sectors - 1);
    let (backup_guid, back, backup_entries) = read_gpt(&out, sectors - 1);
    assert_eq!((backup_guid.as_str(), back), (disk_guid.as_str(), 1));
    assert_eq!(backup_entries, entries);
    assert_eq!(disk_guid, l.disk_guid.to_string());
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].type_guid, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
    assert_eq!(entries[1].type_guid, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709");
    assert_eq!(entries[0].part_uuid, l.esp.part_uuid.to_string());
    assert_eq!(entries[1].part_uuid, l.root.part_uuid.to_string());
    assert_eq!(
        (entries[0].first_lba, entries[1].name.as_str()),
        (2048, "root-x86-64")
    );
    // The protective MBR.
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes[446 + 4], 0xEE);
    assert_eq!(&bytes[510..512], &[0x55, 0xAA]);

    // The ESP: systemd-boot where firmware looks, the loader entry, the kernel.
    let esp = dir.path().join("esp.img");
    extract(&out, l.esp.offset(), l.esp.size(), &esp);
    let esp_s = esp.to_str().unwrap();
    let info = run("minfo", &["-i", esp_s, "::"]);
    assert!(
        info.contains(&format!("serial number: {:08X}", l.esp_serial.0)),
        "{info}"
    );
    assert!(run("mdir", &["-i", esp_s, "-b", "::/EFI/BOOT"]).contains("BOOTX64.EFI"));
    assert_eq!(
        run("mtype", &["-i", esp_s, "::/EFI/BOOT/BOOTX64.EFI"]),
        "MZ systemd-boot"
    );
    assert_eq!(
        run("mtype", &["-i", esp_s, "::/loader/loader.conf"]),
        "timeout 0\ndefault kiln.conf\neditor no\n"
    );
    let entry = run("mtype", &["-i", esp_s, "::/loader/entries/kiln.conf"]);
    assert_eq!(
        entry,
        format!(
            "title test 1.0\nversion {KVER}\nlinux /vmlinuz-{KVER}\ninitrd /initrd.img-{KVER}\n\
             options root=UUID={} ro rootwait console=tty0 console=ttyS0,115200\n",
            l.root_fs_uuid
        )
    );
    let listing = run("mdir", &["-i", esp_s, "::/"]);
    assert!(
        listing.contains("2023-11-14"),
        "FAT times are SOURCE_DATE_EPOCH: {listing}"
    );
    let kernel = dir.path().join("k");
    run(
        "mcopy",
        &[
            "-i",
            esp_s,
            &format!("::/vmlinuz-{KVER}"),
            kernel.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&kernel).unwrap(), vec![0x4d; 300_000]);

    // The root: clean, our UUID, kiln's files in, the tree's files intact.
    let ext4 = dir.path().join("root.ext4");
    extract(&out, l.root.offset(), l.root.size(), &ext4);
    let e = ext4.to_str().unwrap();
    run("e2fsck", &["-fn", e]);
    let super_ = run("dumpe2fs", &["-h", e]);
    assert!(
        super_.contains(&format!("Filesystem UUID:          {}", l.root_fs_uuid)),
        "{super_}"
    );
    assert!(
        super_.contains(&format!("Directory Hash Seed:      {}", l.root_hash_seed)),
        "{super_}"
    );
    let fstab = run("debugfs", &["-R", "cat /etc/fstab", e]);
    assert!(
        fstab.contains(&format!(
            "UUID={} / ext4 defaults,x-systemd.growfs 0 1",
            l.root_fs_uuid
        )),
        "{fstab}"
    );
    assert!(
        fstab.contains(&format!("UUID={} /boot/efi vfat", l.esp_serial)),
        "{fstab}"
    );
    let repart = run(
        "debugfs",
        &["-R", "cat /usr/lib/repart.d/50-kiln-root.conf", e],
    );
    assert!(repart.contains("[Partition]\nType=root\n"), "{repart}");
    let efi = run("debugfs", &["-R", "stat /boot/efi", e]);
    assert!(
        efi.contains("Type: directory") && efi.contains("Mode:  0755"),
        "{efi}"
    );
    assert_eq!(
        run("debugfs", &["-R", "cat /usr/bin/tool", e]).len(),
        5 << 20
    );
    let tool = run("debugfs", &["-R", "stat /usr/bin/tool2", e]);
    assert!(tool.contains("Links: 2"), "hard link kept: {tool}");
    // ctime, atime and crtime are the image's time everywhere; mtime is the
    // tree's, or the image's time for what kiln wrote.
    for (path, mtime) in [
        ("/etc/fstab", EPOCH),
        ("/boot/efi", EPOCH),
        ("/usr/bin/tool", EPOCH - 100),
        ("/etc", EPOCH - 100),
        ("/bin", EPOCH - 100),
    ] {
        let st = run("debugfs", &["-R", &format!("stat {path}"), e]);
        for line in st.lines().filter(|l| l.contains("time: 0x")) {
            let want = if line.trim_start().starts_with("mtime") {
                mtime
            } else {
                EPOCH
            };
            assert!(line.contains(&format!("0x{want:x}:")), "{path}: {line}");
        }
    }
}

#[test]
fn two_copies_of_a_tree_give_identical_disks_in_every_format() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let root_a = tree(a.path(), false);
    // Later ctimes and another creation order: what a second store holds.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let root_b = tree(b.path(), true);
    let ra = write_raw(&root_a, &boot(), &spec(), &a.path().join("disk.raw")).unwrap();
    let rb = write_raw(&root_b, &boot(), &spec(), &b.path().join("disk.raw")).unwrap();
    assert_eq!(ra.digest, rb.digest);
    assert_eq!(ra.layout, rb.layout);
    assert!(std::fs::read(&ra.path).unwrap() == std::fs::read(&rb.path).unwrap());
    for format in DiskFormat::ALL {
        let name = format!("disk.{}", format.extension());
        let ca = convert(&ra.path, format, &spec(), &a.path().join(&name)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let cb = convert(&rb.path, format, &spec(), &b.path().join(&name)).unwrap();
        assert_eq!(ca.digest, cb.digest, "{format:?} is byte-reproducible");
        assert_eq!(ca.virtual_size, 400 << 20);
        // Same disk content as the raw image, as qemu reads it.
        run(
            "qemu-img",
            &[
                "compare",
                "-q",
                "-f",
                "raw",
                "-F",
                ["qcow2", "vmdk", "vpc"][format as usize],
                ra.path.to_str().unwrap(),
                ca.path.to_str().unwrap(),
            ],
        );
    }
    // A different image digest: different identifiers, so different bytes.
    let mut other = spec();
    other.image_digest = "sha256:0ther".into();
    let rc = write_raw(&root_a, &boot(), &other, &a.path().join("other.raw")).unwrap();
    assert_ne!(rc.digest, ra.digest);
}

#[test]
fn a_boot_file_missing_from_the_tree_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path(), false);
    let out = dir.path().join("d.raw");
    let loader = root.join("usr/lib/systemd/boot/efi/systemd-bootx64.efi");
    std::fs::remove_file(&loader).unwrap();
    let e = write_raw(&root, &boot(), &spec(), &out).unwrap_err();
    assert!(e.to_string().contains(loader.to_str().unwrap()), "{e}");
    assert!(!out.exists());
}

#[test]
fn a_tree_larger_than_the_disk_asks_for_a_bigger_disk() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path(), false);
    // 100 MiB of incompressible data for a root partition of ~64 MiB.
    let mut x = 1u64;
    let big: Vec<u8> = (0..100 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    put(&root, "big", &big);
    let mut s = spec();
    s.size = 322 << 20;
    let out = dir.path().join("d.raw");
    let e = write_raw(&root, &boot(), &s, &out).unwrap_err();
    assert!(matches!(e, DiskError::RootDoesNotFit { .. }), "{e}");
    assert!(e.to_string().contains("[disk].size"), "{e}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "scratch files removed: {leftovers:?}");
}
