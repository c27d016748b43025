//! `kiln gc`: keeps a long-lived runner's store bounded. What stays:
//! - every stage result (rootfs tree, layer record, manifest) of a build the
//!   catalog saw within `keep`, and of each of its ancestors;
//! - the layer blobs those records name;
//! - every `.deb` a `kiln.lock` under the given directories pins;
//! - anything written within `keep` (an index, a fetch not built yet, a
//!   `kiln push` upload session to resume).
//!
//! Everything else in the store's known buckets goes. gc holds the store
//! lock exclusively while builds hold it shared, so it waits for running
//! builds to finish and a build started meanwhile waits for gc: neither
//! ever sees the other's half-done work.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kiln_store::Store;
use serde::Serialize;

use crate::fsutil::io;
use crate::{Error, Progress};

/// Buckets whose entries are named by a rootfs key (a build id's hex).
const KEYED_BUCKETS: &[&str] = &[
    crate::keys::ROOTFS_STAGE,
    crate::stages::LAYERS,
    crate::catalog::MANIFESTS,
];

/// A temporary file this old was left by a killed process; younger ones
/// may belong to a command that writes without the store lock.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

pub struct GcOptions<'a> {
    /// Directories searched for `kiln.lock` files whose packages stay.
    pub dirs: Vec<PathBuf>,
    pub keep: Duration,
    pub dry_run: bool,
    pub catalog: Option<String>,
    pub progress: &'a dyn Progress,
}

#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// What went (or, with `--dry-run`, would go).
    pub removed: Vec<Removed>,
    pub bytes: u64,
    /// Entries kept.
    pub kept: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub path: PathBuf,
    pub bytes: u64,
}

pub fn gc(opts: &GcOptions<'_>) -> Result<GcReport, Error> {
    let GcOptions {
        dirs,
        keep,
        dry_run,
        catalog,
        progress,
    } = opts;
    let store = Store::open_default()?;
    progress.step("waiting for running builds to finish");
    let _lock = store.lock()?;
    let cutoff = SystemTime::now()
        .checked_sub(*keep)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let cutoff_secs = cutoff
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);

    let catalog = crate::open_catalog(catalog.as_deref())?;
    let mut keys = BTreeSet::new();
    for build in catalog.builds(&kiln_catalog::BuildFilter::default())? {
        if build.last_built_at >= cutoff_secs {
            for b in catalog.lineage(&build.id)? {
                keys.insert(b.id.trim_start_matches("sha256:").to_string());
            }
        }
    }
    // A bucket's directory, from the store that lays them out.
    let dir = |name: &str| store.bucket(name).map(|b| b.dir().to_path_buf());
    let layers = store.bucket(crate::stages::LAYERS)?;
    let mut blobs = BTreeSet::new();
    for key in &keys {
        // Read loosely: a record an older kiln wrote may lack newer fields.
        if let Ok(Some(bytes)) = layers.get(&format!("{key}.json"))
            && let Ok(layer) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(d) = layer["digest"].as_str()
        {
            blobs.insert(d.trim_start_matches("sha256:").to_string());
        }
    }
    for dir in dirs {
        for def_dir in crate::graph::definition_dirs(dir)? {
            let Ok(lock) = kiln_lock::read(&def_dir.join(crate::chain::LOCKFILE)) else {
                continue;
            };
            for p in &lock.packages {
                blobs.insert(p.sha256.trim_start_matches("sha256:").to_string());
            }
        }
    }

    let mut report = GcReport {
        dry_run: *dry_run,
        removed: Vec::new(),
        bytes: 0,
        kept: 0,
    };
    let mut sweep = |dir: &Path, wanted: &BTreeSet<String>, strip: &str| -> Result<(), Error> {
        let entries = match fs_err::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let meta = fs_err::symlink_metadata(&path).map_err(io(&path))?;
            let recent = meta.modified().is_ok_and(|m| m >= cutoff);
            // Temporary names belong to whoever is writing them.
            if name.starts_with('.') || recent || wanted.contains(name.trim_end_matches(strip)) {
                report.kept += 1;
                continue;
            }
            let bytes = size(&path)?;
            if !*dry_run {
                let removed = if meta.is_dir() {
                    fs_err::remove_dir_all(&path)
                } else {
                    fs_err::remove_file(&path)
                };
                removed.map_err(io(&path))?;
            }
            report.bytes += bytes;
            report.removed.push(Removed { path, bytes });
        }
        Ok(())
    };
    // Under the exclusive lock no build is writing: what a killed one left
    // goes (a temporary tree only once its owner's lock is free).
    if !*dry_run {
        crate::fsutil::sweep_dead(&dir(crate::keys::ROOTFS_STAGE)?)?;
        store.sweep_temporaries(LEFTOVER_AGE)?;
    }
    for bucket in KEYED_BUCKETS {
        sweep(&dir(bucket)?, &keys, ".json")?;
    }
    sweep(&store.blob_dir(), &blobs, "")?;
    // An upload session only saves a resend; registries expire theirs too.
    sweep(&dir(crate::uploads::BUCKET)?, &BTreeSet::new(), "")?;
    report.removed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

/// Bytes under `path`, not following symlinks.
fn size(path: &Path) -> Result<u64, Error> {
    let meta = fs_err::symlink_metadata(path).map_err(io(path))?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in fs_err::read_dir(path).map_err(io(path))? {
        total += size(&entry.map_err(io(path))?.path())?;
    }
    Ok(total)
}

/// `30d`, `12h`, `90m`, `45s`: how long gc keeps what was used.
pub fn parse_keep(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration; write e.g. 30d, 12h, 90m or 45s");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_durations_parse() {
        assert_eq!(parse_keep("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_keep("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "d", "30", "1w", "-1d", "1.5h"] {
            assert!(parse_keep(bad).is_err(), "{bad}");
        }
    }
}
