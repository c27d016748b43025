//! "Did you mean …?" over a closed set of words.

/// The candidate closest to `word`, if one is close enough to be a likely typo.
pub fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .copied()
        .map(|c| (c, score(&word, c)))
        .filter(|(_, s)| *s > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

// Edit distance catches transpositions and dropped letters in short words;
// Jaro-Winkler catches longer words that share a prefix ("minimal" -> "minbase").
fn score(word: &str, candidate: &str) -> f64 {
    let distance = strsim::damerau_levenshtein(word, candidate);
    let allowed = (candidate.len() / 3).max(1);
    let jw = strsim::jaro_winkler(word, candidate);
    if distance <= allowed || jw >= 0.85 {
        jw + 1.0 / (1.0 + distance as f64)
    } else {
        0.0
    }
}

/// `a`, `b` and `c`: a list for a hint.
pub(crate) fn list(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// "did you mean `x`?" when something is close, else "expected one of …".
pub(crate) fn hint(word: &str, candidates: &[&str], noun: &str) -> String {
    match closest(word, candidates) {
        Some(best) => format!("did you mean `{best}`? {noun} {}", list(candidates)),
        None => format!("{noun} {}", list(candidates)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word() {
        let fields = ["install", "recommends"];
        assert_eq!(closest("instal", &fields), Some("install"));
        assert_eq!(closest("recomends", &fields), Some("recommends"));
        assert_eq!(closest("Install", &fields), Some("install"));
        assert_eq!(closest("zzz", &fields), None);
        assert_eq!(
            closest("bookwrom", &["bookworm", "trixie"]),
            Some("bookworm")
        );
        assert_eq!(
            closest("qcow", &["oci", "tar", "raw", "qcow2"]),
            Some("qcow2")
        );
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` and `c`");
    }
}
