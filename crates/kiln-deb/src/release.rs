//! `Release` files: suite metadata and the digests of the indices they cover.

use std::collections::BTreeMap;

use crate::control::paragraphs;

/// One index the Release vouches for, from its `SHA256:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub size: u64,
    /// Lowercase hex, 64 characters.
    pub sha256: String,
}

/// The fields of a `Release` file that kiln relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// The `Date` field as written, kept verbatim for the lock.
    pub date: String,
    /// `Date` in Unix seconds.
    pub date_unix: i64,
    /// `Valid-Until` in Unix seconds, when the archive sets one.
    pub valid_until: Option<i64>,
    /// `Valid-Until` as written.
    pub valid_until_text: Option<String>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`: indices are also served under
    /// `<dir>/by-hash/SHA256/<hex>`, which survives a mirror update racing
    /// with our download.
    pub acquire_by_hash: bool,
    /// Path relative to `dists/<suite>/` → size and digest.
    pub sha256: BTreeMap<String, IndexEntry>,
}

impl Release {
    /// Whether this Release is the one asked for by `suite`, which may be a
    /// codename (`bookworm`) or a suite name (`stable`).
    pub fn serves(&self, suite: &str) -> bool {
        self.suite.as_deref() == Some(suite) || self.codename.as_deref() == Some(suite)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error("the Release file has no paragraph")]
    Empty,
    #[error("the Release file lacks the `{0}` field")]
    Missing(&'static str),
    #[error("the Release file's `{field}` is not a date: `{value}`")]
    BadDate { field: &'static str, value: String },
    #[error("the Release file's SHA256 list has a malformed line: `{0}`")]
    BadEntry(String),
}

/// Parses the text of a `Release` (for an `InRelease`, the signed text).
pub fn parse_release(text: &str) -> Result<Release, ReleaseError> {
    let paras = paragraphs(text);
    let p = paras.first().ok_or(ReleaseError::Empty)?;
    let date = p.get("Date").ok_or(ReleaseError::Missing("Date"))?;
    let date_unix = parse_date(date).ok_or_else(|| ReleaseError::BadDate {
        field: "Date",
        value: date.to_string(),
    })?;
    let valid_until = p
        .get("Valid-Until")
        .map(|v| {
            parse_date(v).ok_or_else(|| ReleaseError::BadDate {
                field: "Valid-Until",
                value: v.to_string(),
            })
        })
        .transpose()?;
    let mut sha256 = BTreeMap::new();
    for line in p.get("SHA256").unwrap_or("").lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || ReleaseError::BadEntry(line.to_string());
        let mut parts = line.split_whitespace();
        let (Some(hex), Some(size), Some(path), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let size = size.parse().map_err(|_| bad())?;
        sha256.insert(
            path.to_string(),
            IndexEntry {
                size,
                sha256: hex.to_ascii_lowercase(),
            },
        );
    }
    Ok(Release {
        suite: p.get("Suite").map(str::to_string),
        codename: p.get("Codename").map(str::to_string),
        date: date.to_string(),
        date_unix,
        valid_until,
        valid_until_text: p.get("Valid-Until").map(str::to_string),
        architectures: p.words("Architectures"),
        components: p.words("Components"),
        acquire_by_hash: p
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        sha256,
    })
}

/// Parses the RFC 2822 dates the archive writes (`Sat, 10 May 2025
/// 08:52:37 UTC`) into Unix seconds. The weekday is optional and not checked;
/// the zone may be `UTC`, `GMT`, `Z` or a numeric offset such as `+0100`.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut rest = text.trim();
    if let Some((head, tail)) = rest.split_once(',') {
        if !head.trim().chars().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        rest = tail;
    }
    let mut parts = rest.split_whitespace();
    let day: i8 = parts.next()?.parse().ok()?;
    let month = month_number(parts.next()?)?;
    let year: i16 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    let zone = parts.next().unwrap_or("UTC");
    if parts.next().is_some() {
        return None;
    }
    let mut hms = time.split(':');
    let hour = two_digits(hms.next()?)?;
    let minute = two_digits(hms.next()?)?;
    // Leap second 60 is tolerated as RFC 2822 allows it.
    let second = hms.next().map(two_digits).unwrap_or(Some(0))?;
    if hms.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset = jiff::tz::Offset::from_seconds(zone_offset(zone)?).ok()?;
    let date = jiff::civil::Date::new(year, month, day).ok()?;
    // jiff has no leap seconds: :60 is read as the second after :59.
    let leap = i64::from(second == 60);
    let time = date.at(hour, minute, second.min(59), 0);
    Some(offset.to_timestamp(time).ok()?.as_second() + leap)
}

fn two_digits(s: &str) -> Option<i8> {
    if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month_number(name: &str) -> Option<i8> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let pos = MONTHS.iter().position(|m| name.eq_ignore_ascii_case(m))?;
    i8::try_from(pos + 1).ok()
}

/// Seconds east of UTC.
fn zone_offset(zone: &str) -> Option<i32> {
    if ["UTC", "GMT", "UT", "Z"]
        .iter()
        .any(|z| zone.eq_ignore_ascii_case(z))
    {
        return Some(0);
    }
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3_600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = "\
Origin: Debian
Label: Debian
Suite: oldstable
Version: 12.11
Codename: bookworm
Date: Sat, 17 May 2025 09:39:15 UTC
Valid-Until: Sat, 24 May 2025 09:39:15 UTC
Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib non-free-firmware non-free
Description: Debian 12.11 Released 17 May 2025
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 f230d61720e789abf5df55d6026230c6f230d61720e789abf5df55d6026230c6 50060337 main/binary-amd64/Packages
 A838D31986207780A596CE3E8010F90FA838D31986207780A596CE3E8010F90F  8790396 main/binary-amd64/Packages.xz
";

    #[test]
    fn parses_the_fields_kiln_uses() {
        let r = parse_release(RELEASE).unwrap();
        assert_eq!(r.suite.as_deref(), Some("oldstable"));
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert!(r.serves("bookworm") && r.serves("oldstable") && !r.serves("trixie"));
        assert_eq!(r.date, "Sat, 17 May 2025 09:39:15 UTC");
        assert_eq!(r.date_unix, 1_747_474_755);
        assert_eq!(r.valid_until, Some(1_747_474_755 + 7 * 86_400));
        assert!(r.acquire_by_hash);
        assert_eq!(r.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(r.components.len(), 4);
        assert_eq!(r.sha256.len(), 2);
        let xz = &r.sha256["main/binary-amd64/Packages.xz"];
        assert_eq!(xz.size, 8_790_396);
        // Digests are normalised to lowercase so they compare with ours.
        assert!(xz.sha256.starts_with("a838d319"));
        // MD5 entries are never mistaken for SHA256 ones.
        assert!(!r.sha256.contains_key("contrib/Contents-all"));
    }

    #[test]
    fn valid_until_is_optional_and_date_is_not() {
        let r = parse_release("Suite: x\nDate: Thu, 01 Jan 1970 00:00:00 UTC\n").unwrap();
        assert_eq!((r.date_unix, r.valid_until), (0, None));
        assert!(r.sha256.is_empty());
        assert_eq!(
            parse_release("Suite: x\n"),
            Err(ReleaseError::Missing("Date"))
        );
        assert_eq!(parse_release("# nothing\n"), Err(ReleaseError::Empty));
    }

    #[test]
    fn malformed_digest_lines_are_errors() {
        let base = "Date: Thu, 01 Jan 1970 00:00:00 UTC\nSHA256:\n";
        for line in [
            " abc 12 main/Packages",
            " f230d61720e789abf5df55d6026230c6f230d61720e789abf5df55d6026230c6 x main/Packages",
            " f230d61720e789abf5df55d6026230c6f230d61720e789abf5df55d6026230c6 12",
            " f230d61720e789abf5df55d6026230c6f230d61720e789abf5df55d6026230c6 12 a b",
            " g230d61720e789abf5df55d6026230c6f230d61720e789abf5df55d6026230c6 12 a",
        ] {
            let err = parse_release(&format!("{base}{line}\n")).unwrap_err();
            assert!(matches!(err, ReleaseError::BadEntry(_)), "{line}: {err}");
        }
    }

    #[test]
    fn bad_dates_name_the_field() {
        let err = parse_release("Date: yesterday\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Release file's `Date` is not a date: `yesterday`"
        );
        let err =
            parse_release("Date: Thu, 01 Jan 1970 00:00:00 UTC\nValid-Until: soon\n").unwrap_err();
        assert!(matches!(
            err,
            ReleaseError::BadDate {
                field: "Valid-Until",
                ..
            }
        ));
    }

    #[test]
    fn dates_in_the_forms_debian_writes() {
        assert_eq!(
            parse_date("Sat, 10 May 2025 08:52:37 UTC"),
            Some(1_746_867_157)
        );
        assert_eq!(parse_date("10 May 2025 08:52:37 UTC"), Some(1_746_867_157));
        assert_eq!(
            parse_date("Sat,  10 May 2025 08:52:37 GMT"),
            Some(1_746_867_157)
        );
        assert_eq!(
            parse_date("Sat, 10 May 2025 09:52:37 +0100"),
            Some(1_746_867_157)
        );
        assert_eq!(
            parse_date("Sat, 10 May 2025 07:52:37 -0100"),
            Some(1_746_867_157)
        );
        assert_eq!(
            parse_date("Sat, 10 may 2025 08:52 UTC"),
            Some(1_746_867_120)
        );
        // Single-digit days, leap days and dates before the epoch.
        assert_eq!(parse_date("Thu, 1 Jan 1970 00:00:01 UTC"), Some(1));
        assert_eq!(
            parse_date("Thu, 29 Feb 2024 00:00:00 UTC"),
            Some(1_709_164_800)
        );
        assert_eq!(parse_date("Wed, 31 Dec 1969 23:59:59 UTC"), Some(-1));
        assert_eq!(
            parse_date("Fri, 1 Jan 2100 00:00:00 UTC"),
            Some(4_102_444_800)
        );
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for bad in [
            "",
            "Sat, 10 Foo 2025 08:52:37 UTC",
            "Sat, 29 Feb 2025 08:52:37 UTC",
            "Sat, 31 Apr 2025 08:52:37 UTC",
            "Sat, 0 May 2025 08:52:37 UTC",
            "Sat, 10 May 2025 24:00:00 UTC",
            "Sat, 10 May 2025 8:52:37 UTC",
            "Sat, 10 May 2025 08:52:37 CEST",
            "Sat, 10 May 2025 08:52:37 +01",
            "Sat, 10 May 2025 08:52:37 UTC extra",
            "1, 10 May 2025 08:52:37 UTC",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }
}
