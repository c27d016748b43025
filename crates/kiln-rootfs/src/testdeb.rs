//! Crafted `.deb` files for tests: real ar/tar/xz containers with whatever
//! entries a test needs, hostile ones included.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A `.deb` built here: `control` is the control file, `data` the entries
/// of data.tar (xz-compressed).
pub(crate) fn craft_deb(dir: &Path, name: &str, control: &str, data: Vec<Entry>) -> PathBuf {
    craft_deb_with(dir, name, &[("./control", control)], data)
}

/// [`craft_deb`] with every member of control.tar given: `(name, body)`.
pub(crate) fn craft_deb_with(
    dir: &Path,
    name: &str,
    control: &[(&str, &str)],
    data: Vec<Entry>,
) -> PathBuf {
    let mut ctl = tar::Builder::new(Vec::new());
    for (member, body) in control {
        append_file(&mut ctl, member, body.as_bytes(), 0o644);
    }
    let ctl = flate2_gz(&ctl.into_inner().unwrap());
    let mut tb = tar::Builder::new(Vec::new());
    for e in data {
        match e {
            Entry::File(path, body) => append_file(&mut tb, &path, body.as_bytes(), 0o644),
            Entry::Dir(path) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                set_raw_path(&mut h, &path);
                h.set_cksum();
                tb.append(&h, std::io::empty()).unwrap();
            }
            Entry::Symlink(path, target) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                set_raw_path(&mut h, &path);
                h.set_link_name(&target).unwrap();
                h.set_cksum();
                tb.append(&h, std::io::empty()).unwrap();
            }
        }
    }
    let data = tb.into_inner().unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&data).unwrap();
    let data = xz.finish().unwrap();
    let mut ar = b"!<arch>\n".to_vec();
    for (member, body) in [
        ("debian-binary", &b"2.0\n"[..]),
        ("control.tar.gz", &ctl),
        ("data.tar.xz", &data),
    ] {
        ar.extend(
            format!(
                "{member:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                "100644",
                body.len()
            )
            .as_bytes(),
        );
        ar.extend(body);
        if body.len() % 2 == 1 {
            ar.push(b'\n');
        }
    }
    let path = dir.join(format!("{name}.deb"));
    std::fs::write(&path, ar).unwrap();
    path
}

pub(crate) enum Entry {
    File(String, String),
    Dir(String),
    Symlink(String, String),
}

fn append_file(tb: &mut tar::Builder<Vec<u8>>, path: &str, body: &[u8], mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_size(body.len() as u64);
    set_raw_path(&mut h, path);
    h.set_cksum();
    tb.append(&h, body).unwrap();
}

/// Writes the name bytes as given: `set_path` refuses `..` and absolute
/// names, which is what the hostile tests need.
fn set_raw_path(h: &mut tar::Header, path: &str) {
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    let name = &mut h.as_old_mut().name;
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
}

fn flate2_gz(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}
