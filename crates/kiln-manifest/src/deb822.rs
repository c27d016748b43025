//! The paragraph format of dpkg's status file and of DEP-5 copyright files:
//! kiln-deb's parser, and the value helpers those two files need.

pub(crate) use kiln_deb::control::Paragraph;

/// Parses leniently: copyright files are hand-written, so a line that is not
/// a field is skipped rather than failing the whole image.
pub(crate) fn parse(text: &str) -> Vec<Paragraph<'_>> {
    kiln_deb::control::paragraphs(text)
}

/// The first line of a field value.
pub(crate) fn first_line(value: &str) -> &str {
    value.split('\n').next().unwrap_or("").trim()
}

/// The continuation lines of a field value as plain text: one leading space
/// removed, and ` .` lines back to the blank lines they stand for.
pub(crate) fn body(value: &str) -> String {
    let mut lines: Vec<&str> = value
        .split('\n')
        .skip(1)
        .map(|l| {
            let l = l.strip_prefix([' ', '\t']).unwrap_or(l);
            if l.trim() == "." { "" } else { l.trim_end() }
        })
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Package: a\nDescription: short\n long\n .\n more\n\n\n# comment\nPackage: b\n";
        let ps = parse(text);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 1);
        assert_eq!(ps[1].line, 9);
        assert_eq!(ps[0].get("package"), Some("a"));
        let d = ps[0].get("Description").unwrap();
        assert_eq!(first_line(d), "short");
        assert_eq!(body(d), "long\n\nmore");
    }
}
