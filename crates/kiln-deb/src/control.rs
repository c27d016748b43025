//! deb822 paragraphs: `Field: value` lines, continuation lines starting with
//! white space, paragraphs separated by blank lines.

/// One paragraph, borrowing from the text it was read from.
#[derive(Debug, Default, Clone)]
pub struct Paragraph<'a> {
    /// Fields in file order; the value keeps continuation lines joined by `\n`.
    pub fields: Vec<(&'a str, &'a str)>,
    /// 1-based line of the paragraph's first field, for error messages.
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The field's value, matched case-insensitively as deb822 requires.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// A field holding white-space separated words (Components, Suites,
    /// Architectures, …); empty when absent.
    pub fn words(&self, name: &str) -> Vec<String> {
        self.get(name)
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// Splits `text` into paragraphs. Lines that are neither fields nor
/// continuations (comments, stray text) are skipped: the archive never writes
/// them, and sources files use `#` comments.
pub fn paragraphs(text: &str) -> Vec<Paragraph<'_>> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    // Start/end byte offsets of the current field's value, so multi-line
    // values stay a borrowed slice of `text`.
    let mut open: Option<(&str, usize, usize)> = None;
    let mut offset = 0;
    for (idx, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        let start = offset;
        offset += raw.len();
        if line.trim().is_empty() {
            if let Some((k, s, e)) = open.take() {
                cur.fields.push((k, text[s..e].trim()));
            }
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, _, e)) = open.as_mut() {
                *e = start + line.len();
            }
            continue;
        }
        if let Some((k, s, e)) = open.take() {
            cur.fields.push((k, text[s..e].trim()));
        }
        if let Some(colon) = line.find(':') {
            if cur.fields.is_empty() {
                cur.line = idx + 1;
            }
            open = Some((&line[..colon], start + colon + 1, start + line.len()));
        }
    }
    if let Some((k, s, e)) = open.take() {
        cur.fields.push((k, text[s..e].trim()));
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paragraphs_and_joins_continuations() {
        let text = "Package: a\nDescription: one\n two\n\n\nPackage: b\nVersion: 1\n";
        let ps = paragraphs(text);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        assert_eq!(ps[0].get("Description"), Some("one\n two"));
        assert_eq!(ps[1].line, 6);
        assert_eq!(ps[1].get("Version"), Some("1"));
    }
}
