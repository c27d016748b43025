use super::*;

#[test]
fn license_lines_split_into_names() {
    assert_eq!(names_in("GPL-1+ or Artistic"), ["GPL-1+", "Artistic"]);
    assert_eq!(names_in("Apache-2.0 and/or Expat"), ["Apache-2.0", "Expat"]);
    assert_eq!(
        names_in("(LGPL-2.1+ | MPL-1.1), and BSD (3 clause)"),
        ["LGPL-2.1+", "MPL-1.1", "BSD 3 clause"]
    );
    assert_eq!(
        names_in("GPL-2+ with OpenSSL exception or BSD-2-clause"),
        ["GPL-2+ with OpenSSL exception", "BSD-2-clause"]
    );
    assert!(is_prose(
        "Permission to use, copy, modify, and distribute this software and"
    ));
    assert!(!is_prose(
        "GPL-2+ with OpenSSL exception or LGPL-2.1+ with OpenSSL exception"
    ));
    assert!(!is_prose("public domain"));
}

const DEP5: &str = "\
Format: copyright-format/1.0
Upstream-Name: thing
Source: urn:example:thing

Files: *
Copyright: 2001 Someone
License: GPL-2+ or Artistic

Files: lib/*
Copyright: 2002 Someone Else
License: other
 This library may be used for any purpose,
 .
 provided this notice stays.

Files: extra/*
Copyright: 2003 Third
License: BSD-3-clause

Files: prose/*
Copyright: 2004 Fourth
License: Permission to use, copy, modify, and distribute this software
 for any purpose is hereby granted.

License: BSD-3-clause
 Redistribution and use in source and binary forms ...

License: unused-but-defined
 Never referenced by a Files paragraph.
";

#[test]
fn dep5_copyright_names_and_texts() {
    let found = from_text(DEP5);
    let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "GPL-2+",
            "Artistic",
            "other",
            "BSD-3-clause",
            "Permission to use, copy, modify, and distribute this software"
        ]
    );
    assert_eq!(
        found[2].text.as_deref(),
        Some("This library may be used for any purpose,\n\nprovided this notice stays.")
    );
    assert_eq!(
        found[4].text.as_deref(),
        Some(
            "Permission to use, copy, modify, and distribute this software\n\
             for any purpose is hereby granted."
        )
    );
}

const FREE_FORM: &str = "\
This package was debianized by Someone.

Copyright: 1999 Upstream

    This program is free software; you can redistribute it and/or modify
    it under the terms of the GNU General Public License as published by
    the Free Software Foundation; either version 2 of the License, or
    (at your option) any later version.

On Debian systems, the complete text of the GNU General Public
License can be found in `/usr/share/common-licenses/GPL'.

The manual is under /usr/share/common-licenses/GFDL-1.3.
Some tables are in the public domain.
";

#[test]
fn free_form_copyright_is_read_by_its_citations() {
    let names: Vec<String> = from_text(FREE_FORM).into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["GPL-2+", "GFDL-1.3+", "public-domain"]);
    let names: Vec<String> = from_text(
        "Copyright 2000\nSee /usr/share/common-licenses/BSD and /usr/share/common-licenses/Apache-2.0.\n",
    )
    .into_iter()
    .map(|f| f.name)
    .collect();
    assert_eq!(names, ["BSD-3-clause", "Apache-2.0"]);
    assert!(from_text("All rights reserved.\n").is_empty());
}
