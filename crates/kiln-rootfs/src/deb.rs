//! Reading a `.deb`: an `ar` archive of `debian-binary`, `control.tar[.*]` and
//! `data.tar[.*]`. Only what the bootstrap needs: the control fields that
//! decide the install order, and a stream over the data tarball.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use kiln_deb::relation::{Relation, parse_relations};
use kiln_store::{Digest, Expected, VerifyingReader};

use crate::error::RootfsError;

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";

/// A member's decompressed contents as a stream.
pub(crate) type MemberReader = Box<dyn Read + Send>;

/// One member of an `ar` archive: its name and where its bytes are.
pub(crate) struct Member {
    pub name: String,
    pub size: u64,
}

/// Walks the members of a `.deb`'s `ar` container.
pub(crate) struct Ar<R: Read + Seek = fs_err::File> {
    path: PathBuf,
    file: BufReader<R>,
    /// Where the next member header starts.
    next: u64,
}

impl Ar {
    pub(crate) fn open(path: &Path) -> Result<Ar, RootfsError> {
        Ar::over(path, fs_err::File::open(path)?)
    }
}

/// A `.deb` read through a [`VerifyingReader`]: hashed as it is read.
pub(crate) type VerifiedAr = Ar<VerifyingReader<fs_err::File>>;

impl VerifiedAr {
    /// Opens the `.deb` at `path`, which must hash to `sha256`:
    /// [`VerifiedAr::finish`] says whether it did.
    pub(crate) fn open_verified(path: &Path, sha256: Digest) -> Result<VerifiedAr, RootfsError> {
        let file = fs_err::File::open(path)?;
        let what = path.display().to_string();
        Ar::over(
            path,
            VerifyingReader::new(file, Expected::sha256(sha256), what),
        )
    }

    /// Hashes what was not read and checks the whole file.
    pub(crate) fn finish(self) -> Result<(), kiln_store::StoreError> {
        self.file.into_inner().finish().map(drop)
    }
}

/// `failed`, unless the package file at `path` does not hash to `sha256`:
/// then the file is damaged, and that is the error to report. Called only
/// once reading the file failed, so a good file is never read twice.
pub(crate) fn damaged_or(
    failed: RootfsError,
    package: &str,
    version: &str,
    path: &Path,
    sha256: Digest,
) -> RootfsError {
    let what = path.display().to_string();
    let whole = fs_err::File::open(path)
        .map_err(kiln_store::StoreError::from)
        .and_then(|f| VerifyingReader::new(f, Expected::sha256(sha256), what).finish());
    match whole {
        Ok(_) => failed,
        Err(source) => RootfsError::DebMismatch {
            package: package.to_string(),
            version: version.to_string(),
            path: path.to_path_buf(),
            source: Box::new(source),
        },
    }
}

impl<R: Read + Seek + Send + 'static> Ar<R> {
    fn over(path: &Path, file: R) -> Result<Ar<R>, RootfsError> {
        let mut file = BufReader::with_capacity(256 * 1024, file);
        let mut magic = [0u8; 8];
        if file.read_exact(&mut magic).is_err() || &magic != AR_MAGIC {
            return Err(RootfsError::BadDeb {
                path: path.to_path_buf(),
                why: "not an ar archive".into(),
            });
        }
        Ok(Ar {
            path: path.to_path_buf(),
            file,
            next: 8,
        })
    }

    fn bad(&self, why: String) -> RootfsError {
        RootfsError::BadDeb {
            path: self.path.clone(),
            why,
        }
    }

    /// The next member's header; its bytes are then read with [`Ar::body`].
    pub(crate) fn next_member(&mut self) -> Result<Option<Member>, RootfsError> {
        self.file.seek(SeekFrom::Start(self.next))?;
        let mut header = [0u8; 60];
        match self.file.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if &header[58..60] != b"`\n" {
            return Err(self.bad(format!("bad ar member header at byte {}", self.next)));
        }
        // GNU ar ends names with `/`; dpkg-deb pads them with spaces.
        let name = String::from_utf8_lossy(&header[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: u64 = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| self.bad(format!("bad size in the header of member {name}")))?;
        // Members are padded to an even size.
        self.next += 60 + size + (size & 1);
        Ok(Some(Member { name, size }))
    }

    /// The raw (still compressed) bytes of the member just returned.
    pub(crate) fn body(&mut self, member: &Member) -> impl Read + Send + '_ {
        (&mut self.file).take(member.size)
    }

    /// A reader of the decompressed contents of the member just returned,
    /// leaving the archive usable afterwards.
    pub(crate) fn decompressed(
        &mut self,
        member: &Member,
        prefix: &str,
    ) -> Result<Box<dyn Read + Send + '_>, RootfsError> {
        let ext = member.name.strip_prefix(prefix).unwrap_or("").to_string();
        let path = self.path.clone();
        decompress(self.body(member), &ext).map_err(|why| RootfsError::BadDeb {
            path,
            why: format!("member {}: {why}", member.name),
        })
    }

    /// Turns the archive into a reader of `member`'s decompressed contents.
    pub(crate) fn into_decompressed(
        self,
        member: &Member,
        prefix: &str,
    ) -> Result<MemberReader, RootfsError> {
        let ext = member.name.strip_prefix(prefix).unwrap_or("").to_string();
        let body = self.file.take(member.size);
        decompress(body, &ext).map_err(|why| RootfsError::BadDeb {
            path: self.path.clone(),
            why: format!("member {}: {why}", member.name),
        })
    }
}

/// A reader of `body` decompressed as its extension (`.xz`, …) says.
pub(crate) fn decompress<'a, R: Read + Send + 'a>(
    body: R,
    ext: &str,
) -> Result<Box<dyn Read + Send + 'a>, String> {
    Ok(match ext {
        "" => Box::new(body),
        ".gz" => Box::new(flate2::read::GzDecoder::new(body)),
        ".xz" => Box::new(xz2::read::XzDecoder::new_multi_decoder(body)),
        ".zst" => Box::new(
            zstd::stream::read::Decoder::with_buffer(BufReader::new(body))
                .map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("unsupported compression `{other}`")),
    })
}

/// Opens member `prefix` (`control.tar` or `data.tar`, with any of the
/// compressions dpkg writes) of the `.deb` at `path`.
pub(crate) fn open_member(path: &Path, prefix: &str) -> Result<MemberReader, RootfsError> {
    let mut ar = Ar::open(path)?;
    while let Some(member) = ar.next_member()? {
        if member.name.starts_with(prefix) {
            return ar.into_decompressed(&member, prefix);
        }
    }
    Err(ar.bad(format!("no {prefix} member")))
}

/// The control fields of one package that the install order depends on.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    /// The `.deb` it was read from.
    pub path: PathBuf,
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// `same` makes dpkg qualify the name with the architecture in its
    /// database (`libc6:amd64.list`).
    pub multi_arch: String,
    pub essential: bool,
    pub pre_depends: Vec<Relation>,
    pub depends: Vec<Relation>,
    /// Names only: the set is already resolved, so versions do not matter here.
    pub provides: Vec<String>,
}

/// The text of `./control` in the `.deb` at `path`.
pub fn control_text(path: &Path) -> Result<String, RootfsError> {
    let bad = |why: String| RootfsError::BadDeb {
        path: path.to_path_buf(),
        why,
    };
    let mut archive = tar::Archive::new(open_member(path, "control.tar")?);
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(format!("control.tar: {e}")))?;
        let name = entry.path_bytes().into_owned();
        if name == b"./control" || name == b"control" {
            let mut s = String::new();
            // A control file is a few KiB; a larger one is not a control file.
            (&mut entry)
                .take(1 << 20)
                .read_to_string(&mut s)
                .map_err(|e| bad(format!("control file: {e}")))?;
            return Ok(s);
        }
    }
    Err(bad("control.tar has no control file".into()))
}

/// The bytes of the regular files `files` (`usr/share/…`, as installed), in
/// that order, from the `data.tar` of the `.deb` at `path`, read in one pass;
/// a file larger than `limit` is refused. For files kiln uses from a package
/// it does not install (the firmware `kiln test` boots with); a link or a
/// directory there is refused, not followed.
pub fn data_files(path: &Path, files: &[&str], limit: u64) -> Result<Vec<Vec<u8>>, RootfsError> {
    let bad = |why: String| RootfsError::BadDeb {
        path: path.to_path_buf(),
        why,
    };
    let wanted: Vec<&str> = files.iter().map(|f| f.trim_start_matches('/')).collect();
    let mut found: Vec<Option<Vec<u8>>> = vec![None; wanted.len()];
    let mut archive = tar::Archive::new(open_member(path, "data.tar")?);
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        if found.iter().all(Option::is_some) {
            break;
        }
        let mut entry = entry.map_err(|e| bad(format!("data.tar: {e}")))?;
        let name = entry.path_bytes().into_owned();
        let name = name.strip_prefix(b"./").unwrap_or(&name);
        let Some(i) = wanted.iter().position(|w| w.as_bytes() == name) else {
            continue;
        };
        let file = wanted[i];
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("{file} is not a regular file")));
        }
        let size = entry.size();
        if size > limit {
            return Err(bad(format!("{file} is {size} bytes, over {limit}")));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{file}: {e}")))?;
        found[i] = Some(bytes);
    }
    found
        .into_iter()
        .zip(&wanted)
        .map(|(bytes, file)| bytes.ok_or_else(|| bad(format!("data.tar has no {file}"))))
        .collect()
}

/// Reads and parses `./control` from the `.deb` at `path`.
pub(crate) fn read_control(path: &Path, arch: &str) -> Result<Control, RootfsError> {
    let bad = |why: String| RootfsError::BadDeb {
        path: path.to_path_buf(),
        why,
    };
    let text = control_text(path)?;
    let paragraphs = kiln_deb::control::paragraphs(&text);
    let p = paragraphs
        .first()
        .ok_or_else(|| bad("empty control file".into()))?;
    let field = |name: &str| p.get(name).unwrap_or("").to_string();
    let relations = |name: &str| {
        parse_relations(p.get(name).unwrap_or(""), arch)
            .map_err(|e| bad(format!("control field {name}: {e}")))
    };
    let package = field("Package");
    if package.is_empty() {
        return Err(bad("control file has no Package field".into()));
    }
    // Both become file names in dpkg's database.
    if !kiln_deb::names::is_package_name(&package) {
        return Err(bad(format!(
            "package name `{}` is not a Debian package name",
            package.escape_debug()
        )));
    }
    let architecture = field("Architecture");
    if !kiln_deb::names::is_architecture(&architecture) {
        return Err(bad(format!(
            "architecture `{}` is not an architecture name",
            architecture.escape_debug()
        )));
    }
    Ok(Control {
        path: path.to_path_buf(),
        version: field("Version"),
        architecture,
        multi_arch: field("Multi-Arch"),
        essential: p
            .get("Essential")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        pre_depends: relations("Pre-Depends")?,
        depends: relations("Depends")?,
        provides: relations("Provides")?
            .into_iter()
            .flat_map(|r| r.alternatives.into_iter().map(|a| a.name))
            .collect(),
        package,
    })
}

/// One file of a package's `control.tar`: what dpkg copies into
/// `/var/lib/dpkg/info` when it unpacks the package.
#[derive(Debug, Clone)]
pub(crate) struct ControlMember {
    /// `control`, `md5sums`, `postinst`, …
    pub name: String,
    pub data: Vec<u8>,
    pub mode: u32,
    pub mtime: i64,
}

/// Every regular file of the `control.tar` of the `.deb` at `path`.
pub(crate) fn read_control_members(path: &Path) -> Result<Vec<ControlMember>, RootfsError> {
    let bad = |e: std::io::Error| RootfsError::BadDeb {
        path: path.to_path_buf(),
        why: format!("control.tar: {e}"),
    };
    let mut archive = tar::Archive::new(open_member(path, "control.tar")?);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw);
        let name = name.trim_start_matches("./");
        // dpkg only knows flat names; anything else is not a control file.
        if name.is_empty() || name.contains('/') {
            continue;
        }
        let name = name.to_string();
        let mode = entry.header().mode().map_err(bad)? & 0o7777;
        let mtime = entry.header().mtime().map_err(bad)? as i64;
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(bad)?;
        out.push(ControlMember {
            name,
            data,
            mode,
            mtime,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdeb::{Entry, craft_deb};

    const CONTROL: &str = "Package: fw\nVersion: 1\nArchitecture: all\n";

    #[test]
    fn data_files_read_regular_files_and_refuse_links_size_and_absence() {
        let dir = tempfile::tempdir().unwrap();
        let deb = craft_deb(
            dir.path(),
            "fw",
            CONTROL,
            vec![
                Entry::Dir("./usr/share/fw/".into()),
                Entry::File("./usr/share/fw/code.fd".into(), "CODE".into()),
                Entry::Symlink("./usr/share/fw/link.fd".into(), "code.fd".into()),
                Entry::File("./usr/share/fw/big.fd".into(), "x".repeat(100)),
            ],
        );
        assert_eq!(
            data_files(&deb, &["usr/share/fw/code.fd"], 10).unwrap(),
            [b"CODE"]
        );
        assert_eq!(
            data_files(&deb, &["/usr/share/fw/code.fd"], 10).unwrap(),
            [b"CODE"]
        );
        // Several in one pass, in the order asked.
        assert_eq!(
            data_files(&deb, &["usr/share/fw/big.fd", "usr/share/fw/code.fd"], 100).unwrap(),
            [b"x".repeat(100), b"CODE".to_vec()]
        );
        let refused = |file: &str, why: &str| {
            let e = data_files(&deb, &[file], 10).unwrap_err().to_string();
            assert!(e.contains(why), "{file}: {e}");
            assert!(
                e.contains(&deb.display().to_string()),
                "names the file: {e}"
            );
        };
        refused("usr/share/fw/link.fd", "not a regular file");
        refused("usr/share/fw/big.fd", "100 bytes, over 10");
        refused(
            "usr/share/fw/none.fd",
            "data.tar has no usr/share/fw/none.fd",
        );
        refused("usr/share/fw", "data.tar has no usr/share/fw");
    }
}
