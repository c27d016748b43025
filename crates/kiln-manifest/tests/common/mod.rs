//! A small root filesystem with one of everything a manifest records.

#![allow(dead_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

pub const STATUS: &str = "\
Package: hello
Status: install ok installed
Priority: optional
Installed-Size: 280
Architecture: amd64
Version: 2.10-3
Homepage: https://example.invalid/hello
Description: example package
 with a long description
 .
 over lines.

Package: libfoo1
Status: install ok installed
Installed-Size: 100
Architecture: amd64
Multi-Arch: same
Source: foo (1:1.2~rc1-1)
Version: 1:1.2~rc1-1+b1

Package: libfoo1
Status: install ok installed
Installed-Size: 90
Architecture: i386
Multi-Arch: same
Source: foo (1:1.2~rc1-1)
Version: 1:1.2~rc1-1+b1

Package: libfoo-dev
Status: install ok installed
Installed-Size: 12
Architecture: amd64
Source: foo (1:1.2~rc1-1)
Version: 1:1.2~rc1-1+b1

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: nodoc
Status: install ok installed
Installed-Size: 1
Architecture: all
Version: 0.1
";

pub const HELLO_COPYRIGHT: &str = "\
Format: copyright-format/1.0
Upstream-Name: hello

Files: *
Copyright: 1992-2022 Free Software Foundation, Inc.
License: GPL-3+

Files: doc/*
Copyright: 2000 Someone
License: GFDL-NIV-1.3+

Files: contrib/*
Copyright: 2001 Someone Else
License: other or Expat
 
License: other
 You may do anything with this file,
 .
 as long as this notice stays.
";

pub const FOO_COPYRIGHT: &str = "\
This is libfoo, packaged for Debian by A. Maintainer.

Copyright (C) 2003 The Foo Authors

    This library is free software; you can redistribute it and/or
    modify it under the terms of the GNU Lesser General Public
    License as published by the Free Software Foundation; either
    version 2.1 of the License, or (at your option) any later version.

On Debian systems the full text of the licence is in
/usr/share/common-licenses/LGPL-2.1.
";

/// Builds the tree under `dir/root` and a directory `dir/outside` that
/// symlinks in the tree point at; returns the root.
pub fn tree(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let outside = dir.join("outside");
    mkdir(&outside);
    write(&outside.join("secret"), "not part of the image");

    write(&root.join("var/lib/dpkg/status"), STATUS);
    write(&root.join("usr/share/doc/hello/copyright"), HELLO_COPYRIGHT);
    write(&root.join("usr/share/doc/libfoo1/copyright"), FOO_COPYRIGHT);
    symlink(
        "/usr/share/doc/libfoo1",
        root.join("usr/share/doc/libfoo-dev"),
    )
    .unwrap();

    write(&root.join("etc/hostname"), "kiln\n");
    write(&root.join("usr/bin/su"), "#!/bin/sh\n");
    chmod(&root.join("usr/bin/su"), 0o4755);
    write(&root.join("usr/bin/hard-a"), "linked\n");
    std::fs::hard_link(root.join("usr/bin/hard-a"), root.join("usr/bin/hard-b")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    // Both point out of the tree: recorded as links, never followed.
    symlink("/etc/passwd", root.join("etc/absolute-escape")).unwrap();
    symlink(
        format!("../../{}", outside.file_name().unwrap().to_str().unwrap()),
        root.join("etc/relative-escape"),
    )
    .unwrap();
    mkdir(&root.join("tmp"));
    chmod(&root.join("tmp"), 0o1777);
    mkdir(&root.join("run"));
    mkfifo(&root.join("run/initctl"));
    let _socket = std::os::unix::net::UnixListener::bind(root.join("run/socket")).unwrap();
    mkdir(&root.join("dev"));
    if is_root() {
        mknod(&root.join("dev/null"), libc::S_IFCHR, libc::makedev(1, 3));
        mknod(&root.join("dev/loop0"), libc::S_IFBLK, libc::makedev(7, 0));
        mkdir(&root.join("var/www"));
        std::os::unix::fs::chown(root.join("var/www"), Some(33), Some(33)).unwrap();
    }
    // Permissions of the root itself are part of the image.
    chmod(&root, 0o755);
    root
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        mkdir(parent);
    }
    std::fs::write(path, text).unwrap();
    chmod(path, 0o644);
}

pub fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn mkfifo(path: &Path) {
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(cpath(path).as_ptr(), 0o600) }, 0);
    chmod(path, 0o600);
}

fn mknod(path: &Path, kind: libc::mode_t, dev: libc::dev_t) {
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mknod(cpath(path).as_ptr(), kind | 0o666, dev) },
        0
    );
    chmod(path, 0o666);
}
