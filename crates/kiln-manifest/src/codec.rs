//! The manifest on disk: compact JSON, zstd-compressed, with a format name
//! so that a kiln never misreads a manifest of another layout.

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::{ExtractedLicense, FileEntry, Manifest, Package};

/// Bump on any change to what the fields mean; old manifests are then
/// refused with a hint instead of being misread.
pub(crate) const FORMAT: &str = "kiln-manifest-v1";

/// A fixed level, since the level changes the bytes. 9 compresses a
/// 20,000-file manifest to well under a megabyte in tens of milliseconds.
const LEVEL: i32 = 9;

/// No real manifest comes near this; it stops a corrupt or hostile frame
/// from filling memory.
const MAX_DECODED: u64 = 1 << 30;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Serialize)]
struct Out<'a> {
    format: &'static str,
    packages: &'a [Package],
    files: &'a [FileEntry],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extracted_licenses: &'a BTreeMap<String, ExtractedLicense>,
}

#[derive(Deserialize)]
struct In {
    packages: Vec<Package>,
    files: Vec<FileEntry>,
    #[serde(default)]
    extracted_licenses: BTreeMap<String, ExtractedLicense>,
}

pub(crate) fn encode(m: &Manifest) -> Vec<u8> {
    let json = serde_json::to_vec(&Out {
        format: FORMAT,
        packages: &m.packages,
        files: &m.files,
        extracted_licenses: &m.extracted_licenses,
    })
    .expect("a manifest has only string keys and plain values, so it always serialises");
    // One single-threaded call: the frame depends only on the JSON, the
    // level and the zstd library's version.
    zstd::bulk::compress(&json, LEVEL).expect("zstd compresses any input held in memory")
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Manifest, Error> {
    let bad = |why: String| Error::Decode { why };
    if !bytes.starts_with(&ZSTD_MAGIC) {
        return Err(bad("it is not zstd-compressed".to_string()));
    }
    let mut json = Vec::new();
    zstd::stream::read::Decoder::new(bytes)
        .map_err(|e| bad(format!("zstd: {e}")))?
        .take(MAX_DECODED + 1)
        .read_to_end(&mut json)
        .map_err(|e| bad(format!("zstd: {e}")))?;
    if json.len() as u64 > MAX_DECODED {
        return Err(bad(format!(
            "it decompresses to more than {MAX_DECODED} bytes"
        )));
    }
    // Read the format alone first, so a future layout is reported as such
    // and not as whichever field it changed.
    #[derive(Deserialize)]
    struct Format {
        format: Option<String>,
    }
    let format = serde_json::from_slice::<Format>(&json)
        .map_err(|e| bad(format!("JSON: {e}")))?
        .format
        .ok_or_else(|| bad("it has no format field".to_string()))?;
    if format != FORMAT {
        return Err(Error::Format {
            found: format,
            expected: FORMAT,
        });
    }
    let m: In = serde_json::from_slice(&json).map_err(|e| bad(format!("JSON: {e}")))?;
    Ok(Manifest {
        packages: m.packages,
        files: m.files,
        extracted_licenses: m.extracted_licenses,
    })
}
