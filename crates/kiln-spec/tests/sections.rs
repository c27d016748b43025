//! Each section: what it accepts, the defaults it fills, and what it rejects.

mod common;

use common::{MINIMAL, err, ok, parse, project, with};
use kiln_spec::*;

fn kind(extra: &str) -> ErrorKind {
    err(extra).kind().expect("a located diagnostic")
}

fn field(extra: &str) -> String {
    err(extra)
        .diagnostic()
        .and_then(|d| d.field.clone())
        .expect("a field")
}

#[test]
fn minimal_definition_fills_every_default() {
    let def = ok("");
    assert_eq!(def.image.name, "web");
    assert_eq!(def.image.version, "1.0.0");
    let Base::Debian(base) = &def.base else {
        panic!("debian base expected")
    };
    assert_eq!(base.suite, Suite::Bookworm);
    assert_eq!(base.variant, Variant::Minbase);
    assert_eq!(base.components, [Component::Main]);
    assert_eq!(base.keyring.written, DEFAULT_KEYRING);
    assert_eq!(base.architecture, Architecture::Amd64);
    assert!(def.packages.install.is_empty());
    assert!(!def.packages.recommends);
    assert!(def.files.is_empty() && def.users.is_empty() && def.run.is_empty());
    assert_eq!(def.services, Services::default());
    assert_eq!(def.runtime, Runtime::default());
    assert_eq!(def.disk.size, 2 << 30);
    assert_eq!(def.disk.kernel, None);
    assert_eq!(def.disk.filesystem, Filesystem::Ext4);
    assert_eq!(def.outputs.formats, [Format::Oci, Format::Tar]);
    assert!(def.checks.is_empty());
    assert_eq!(def.parent(), None);
}

#[test]
fn image_name_and_version() {
    let def = parse("[image]\nname = \"web-2\"\nversion = \"2024.01_rc1\"\n[base]\ndistro = \"debian\"\nsuite = \"trixie\"\n")
        .expect("valid");
    assert_eq!(def.image.name, "web-2");
    for bad in ["Web", "web_app", "-web", ""] {
        let text = MINIMAL.replace("name = \"web\"", &format!("name = {bad:?}"));
        let e = parse(&text).expect_err(bad);
        assert_eq!(e.kind(), Some(ErrorKind::InvalidValue), "{bad}");
    }
    let text = MINIMAL.replace("version = \"1.0.0\"", "version = \"1.0+git\"");
    assert_eq!(
        parse(&text).expect_err("tag").kind(),
        Some(ErrorKind::InvalidValue)
    );
    let text = MINIMAL.replace("version = \"1.0.0\"", "version = 1.0");
    assert_eq!(
        parse(&text).expect_err("float").kind(),
        Some(ErrorKind::WrongType)
    );
    let text = MINIMAL.replace("version = \"1.0.0\"\n", "");
    let e = parse(&text).expect_err("missing");
    assert_eq!(e.kind(), Some(ErrorKind::Missing));
    assert_eq!(
        e.diagnostic().and_then(|d| d.field.as_deref()),
        Some("image.version")
    );
}

#[test]
fn missing_sections() {
    let e = parse("[image]\nname = \"web\"\nversion = \"1\"\n").expect_err("no base");
    assert_eq!(e.kind(), Some(ErrorKind::Missing));
    let e = parse("").expect_err("empty");
    assert_eq!(e.kind(), Some(ErrorKind::Missing));
}

#[test]
fn unknown_sections_and_top_level_fields() {
    assert_eq!(kind("[pakages]\ninstall = []"), ErrorKind::UnknownField);
    assert_eq!(
        kind("[[checks]]\nunit = \"a.service\""),
        ErrorKind::UnknownField
    );
    // Top-level keys must come before the first section header.
    let e = parse(&format!("suite = \"bookworm\"\n{MINIMAL}")).expect_err("top level");
    assert_eq!(e.kind(), Some(ErrorKind::UnknownField));
    assert!(e.hint().expect("hint").contains("[base]"), "{e}");
}

#[test]
fn base_variants_and_synonyms() {
    for (word, variant) in [
        ("essential", Variant::Essential),
        ("apt", Variant::Apt),
        ("minbase", Variant::Minbase),
        ("required", Variant::Minbase),
        ("important", Variant::Important),
        ("standard", Variant::Standard),
    ] {
        let text = MINIMAL.replace(
            "suite = \"bookworm\"",
            &format!("suite = \"bookworm\"\nvariant = \"{word}\""),
        );
        let def = parse(&text).expect(word);
        let Base::Debian(base) = def.base else {
            panic!()
        };
        assert_eq!(base.variant, variant);
    }
    assert_eq!(Variant::Minbase.priorities(), ["required"]);
    assert!(!Variant::Essential.includes_apt());
    assert!(Variant::Apt.includes_apt());
}

fn base(fields: &str) -> Result<Definition, SpecError> {
    parse(&format!(
        "[image]\nname = \"web\"\nversion = \"1\"\n[base]\n{fields}\n"
    ))
}

#[test]
fn base_fields() {
    let def = base(
        "distro = \"debian\"\nsuite = \"trixie\"\ncomponents = [\"main\", \"non-free-firmware\"]\n\
         keyring = \"keys/debian.gpg\"\narchitecture = \"amd64\"",
    )
    .expect("valid");
    let Base::Debian(b) = def.base else { panic!() };
    assert_eq!(b.suite, Suite::Trixie);
    assert_eq!(b.components, [Component::Main, Component::NonFreeFirmware]);
    assert_eq!(b.keyring.written, "keys/debian.gpg");
    assert_eq!(b.keyring.path, std::path::Path::new("keys/debian.gpg"));
    assert_eq!(b.architecture, Architecture::Amd64);
    let arm = base("distro = \"debian\"\nsuite = \"trixie\"\narchitecture = \"arm64\"")
        .expect("arm64 is a value the definition may hold");
    let Base::Debian(b) = arm.base else { panic!() };
    assert_eq!(b.architecture, Architecture::Arm64);

    let cases = [
        (
            "distro = \"ubuntu\"\nsuite = \"noble\"",
            ErrorKind::InvalidValue,
        ),
        ("distro = \"debian\"", ErrorKind::Missing),
        (
            "distro = \"debian\"\nsuite = \"sid\"",
            ErrorKind::InvalidValue,
        ),
        (
            "distro = \"debian\"\nsuite = \"stable\"",
            ErrorKind::InvalidValue,
        ),
        (
            "distro = \"debian\"\nsuite = \"bookworm\"\nvariant = \"buildd\"",
            ErrorKind::InvalidValue,
        ),
        (
            "distro = \"debian\"\nsuite = \"bookworm\"\ncomponents = []",
            ErrorKind::InvalidValue,
        ),
        (
            "distro = \"debian\"\nsuite = \"bookworm\"\ncomponents = [\"main\", \"main\"]",
            ErrorKind::Duplicate,
        ),
        (
            "distro = \"debian\"\nsuite = \"bookworm\"\ncomponents = [\"universe\"]",
            ErrorKind::InvalidValue,
        ),
        (
            "distro = \"debian\"\nsuite = \"bookworm\"\ncomponents = \"main\"",
            ErrorKind::WrongType,
        ),
        (
            "distro = \"debian\"\nsuite = \"bookworm\"\narchitecture = \"i386\"",
            ErrorKind::InvalidValue,
        ),
        (
            "distro = \"debian\"\nsuite = \"bookworm\"\nkeyring = \"\"",
            ErrorKind::InvalidValue,
        ),
        ("", ErrorKind::Conflict),
        (
            "distro = \"debian\"\nsuite = \"bookworm\"\nfrom = \"../base\"",
            ErrorKind::Conflict,
        ),
        ("from = \"no/such/dir\"", ErrorKind::MissingPath),
        ("from = \"\"", ErrorKind::InvalidValue),
    ];
    for (fields, expected) in cases {
        let e = base(fields).expect_err(fields);
        assert_eq!(e.kind(), Some(expected), "{fields}\n{e}");
        assert!(e.hint().is_some(), "no hint for {fields}");
    }
    let e = base("distro = \"debian\"\nsuite = \"stable\"").expect_err("alias");
    assert!(e.hint().expect("hint").contains("trixie"));
}

#[test]
fn base_from_another_image() {
    let root = tempfile::tempdir().expect("tmp");
    common::write(root.path(), "base/kiln.toml", MINIMAL);
    let child = "[image]\nname = \"app\"\nversion = \"1\"\n[base]\nfrom = \"../base\"\n";
    let child_toml = common::write(root.path(), "app/kiln.toml", child);
    let def = kiln_spec::parse(child, &child_toml).expect("valid");
    let Base::From(parent) = &def.base else {
        panic!()
    };
    assert_eq!(parent.written, "../base");
    assert_eq!(
        def.parent(),
        Some(root.path().join("app/../base").as_path())
    );

    let bad = child.replace(
        "from = \"../base\"",
        "from = \"../base\"\nsuite = \"bookworm\"",
    );
    let e = kiln_spec::parse(&bad, &child_toml).expect_err("suite with from");
    assert_eq!(e.kind(), Some(ErrorKind::Conflict));
    assert_eq!(
        e.diagnostic().and_then(|d| d.field.as_deref()),
        Some("base.suite")
    );

    let own = child.replace("../base", ".");
    let e = kiln_spec::parse(&own, &child_toml).expect_err("self");
    assert_eq!(e.kind(), Some(ErrorKind::Conflict));
}

#[test]
fn packages() {
    let def = ok(
        "[packages]\ninstall = [\"nginx-light=1.22.1-9+deb12u1\", \"curl\", \"g++\"]\nrecommends = true",
    );
    assert_eq!(
        def.packages.install,
        [
            PackageRef {
                name: "nginx-light".into(),
                version: Some("1.22.1-9+deb12u1".into())
            },
            PackageRef {
                name: "curl".into(),
                version: None
            },
            PackageRef {
                name: "g++".into(),
                version: None
            },
        ]
    );
    assert_eq!(
        def.packages.install[0].to_string(),
        "nginx-light=1.22.1-9+deb12u1"
    );
    assert!(def.packages.recommends);

    assert_eq!(
        field("[packages]\ninstall = [\"a1\", \"b2\", \"nginx==1\"]"),
        "packages.install[2]"
    );
    for (text, expected) in [
        (
            "[packages]\ninstall = [\"nginx>=1.2\"]",
            ErrorKind::InvalidValue,
        ),
        (
            "[packages]\ninstall = [\"nginx=\"]",
            ErrorKind::InvalidValue,
        ),
        (
            "[packages]\ninstall = [\"nginx=latest\"]",
            ErrorKind::InvalidValue,
        ),
        ("[packages]\ninstall = [\"Nginx\"]", ErrorKind::InvalidValue),
        (
            "[packages]\ninstall = [\"libc6:amd64\"]",
            ErrorKind::InvalidValue,
        ),
        (
            "[packages]\ninstall = [\"curl\", \"curl=7.88.1-10\"]",
            ErrorKind::Duplicate,
        ),
        ("[packages]\ninstall = \"curl\"", ErrorKind::WrongType),
        ("[packages]\ninstall = [1]", ErrorKind::WrongType),
        ("[packages]\nrecommends = \"yes\"", ErrorKind::WrongType),
        ("[packages]\ninstal = []", ErrorKind::UnknownField),
    ] {
        assert_eq!(kind(text), expected, "{text}");
    }
}

#[test]
fn files() {
    let dir = project("", &["files/site.conf"]);
    let text = format!(
        "{MINIMAL}\n[[files]]\nsrc = \"files/site.conf\"\ndst = \"/etc/nginx/sites-enabled/default\"\n\n\
         [[files]]\nsrc = \"files/site.conf\"\ndst = \"/usr/local/bin/x\"\nmode = \"4755\"\nowner = \"app:1000\"\n"
    );
    let def = kiln_spec::parse(&text, &dir.path().join("kiln.toml")).expect("valid");
    assert_eq!(def.files.len(), 2);
    assert_eq!(def.files[0].src.written, "files/site.conf");
    assert_eq!(def.files[0].src.path, dir.path().join("files/site.conf"));
    assert_eq!(def.files[0].mode, 0o644);
    assert_eq!(def.files[0].owner.to_string(), "root:root");
    assert_eq!(def.files[1].mode, 0o4755);
    assert_eq!(
        def.files[1].owner,
        Owner {
            user: "app".into(),
            group: "1000".into()
        }
    );

    let entry = |body: &str| {
        let text = format!("{MINIMAL}\n[[files]]\n{body}\n");
        kiln_spec::parse(&text, &dir.path().join("kiln.toml")).expect_err(body)
    };
    for (body, expected) in [
        (
            "src = \"files/nope\"\ndst = \"/etc/x\"",
            ErrorKind::MissingPath,
        ),
        ("src = \"files\"\ndst = \"/etc/x\"", ErrorKind::InvalidValue),
        (
            "src = \"/etc/passwd\"\ndst = \"/etc/x\"",
            ErrorKind::InvalidValue,
        ),
        (
            "src = \"files/site.conf\"\ndst = \"etc/x\"",
            ErrorKind::InvalidValue,
        ),
        (
            "src = \"files/site.conf\"\ndst = \"/etc/../x\"",
            ErrorKind::InvalidValue,
        ),
        (
            "src = \"files/site.conf\"\ndst = \"/\"",
            ErrorKind::InvalidValue,
        ),
        (
            "src = \"files/site.conf\"\ndst = \"/etc/x\"\nmode = \"0999\"",
            ErrorKind::InvalidValue,
        ),
        (
            "src = \"files/site.conf\"\ndst = \"/etc/x\"\nmode = \"644x\"",
            ErrorKind::InvalidValue,
        ),
        (
            "src = \"files/site.conf\"\ndst = \"/etc/x\"\nmode = 644",
            ErrorKind::WrongType,
        ),
        (
            "src = \"files/site.conf\"\ndst = \"/etc/x\"\nowner = \"app\"",
            ErrorKind::InvalidValue,
        ),
        (
            "src = \"files/site.conf\"\ndst = \"/etc/x\"\nowner = \"App:root\"",
            ErrorKind::InvalidValue,
        ),
        ("src = \"files/site.conf\"", ErrorKind::Missing),
        (
            "src = \"files/site.conf\"\ndst = \"/etc/x\"\nsource = \"y\"",
            ErrorKind::UnknownField,
        ),
        (
            "src = \"files/site.conf\"\ndst = \"/etc/x\"\n[[files]]\nsrc = \"files/site.conf\"\ndst = \"/etc/x\"",
            ErrorKind::Duplicate,
        ),
    ] {
        assert_eq!(entry(body).kind(), Some(expected), "{body}");
    }
    let e = kiln_spec::parse(
        &format!("{MINIMAL}\n[files]\nsrc = \"a\"\n"),
        &dir.path().join("kiln.toml"),
    )
    .expect_err("single table");
    assert_eq!(e.kind(), Some(ErrorKind::WrongType));
    assert!(e.hint().expect("hint").contains("[[files]]"));
}

#[test]
fn users() {
    let def = ok(
        "[[users]]\nname = \"app\"\nsystem = true\n\n[[users]]\nname = \"dev\"\nuid = 1000\ngroups = [\"sudo\", \"adm\"]\nshell = \"/bin/sh\"",
    );
    assert_eq!(
        def.users[0],
        User {
            name: "app".into(),
            system: true,
            uid: None,
            groups: vec![],
            shell: SYSTEM_SHELL.into(),
            home: NO_HOME.into(),
        }
    );
    assert_eq!(def.users[1].uid, Some(1000));
    assert_eq!(def.users[1].home, "/home/dev");
    assert_eq!(def.users[1].shell, "/bin/sh");
    assert_eq!(def.users[1].groups, ["sudo", "adm"]);

    for (text, expected) in [
        ("[[users]]\nsystem = true", ErrorKind::Missing),
        ("[[users]]\nname = \"App\"", ErrorKind::InvalidValue),
        ("[[users]]\nname = \"root\"", ErrorKind::InvalidValue),
        ("[[users]]\nname = \"a\"\nuid = 0", ErrorKind::InvalidValue),
        ("[[users]]\nname = \"a\"\nuid = -5", ErrorKind::InvalidValue),
        (
            "[[users]]\nname = \"a\"\nuid = \"1000\"",
            ErrorKind::WrongType,
        ),
        (
            "[[users]]\nname = \"a\"\nsystem = \"true\"",
            ErrorKind::WrongType,
        ),
        (
            "[[users]]\nname = \"a\"\nshell = \"bash\"",
            ErrorKind::InvalidValue,
        ),
        (
            "[[users]]\nname = \"a\"\ngroups = [\"x\", \"x\"]",
            ErrorKind::Duplicate,
        ),
        (
            "[[users]]\nname = \"a\"\n[[users]]\nname = \"a\"",
            ErrorKind::Duplicate,
        ),
        (
            "[[users]]\nname = \"a\"\nuid = 1001\n[[users]]\nname = \"b\"\nuid = 1001",
            ErrorKind::Duplicate,
        ),
        (
            "[[users]]\nname = \"a\"\npassword = \"x\"",
            ErrorKind::UnknownField,
        ),
    ] {
        assert_eq!(kind(text), expected, "{text}");
    }
}

#[test]
fn run_steps() {
    let dir = project("", &["scripts/setup.sh"]);
    let path = dir.path().join("kiln.toml");
    let text = format!(
        "{MINIMAL}\n[[run]]\nscript = \"scripts/setup.sh\"\n[[run]]\ncommand = \"echo hi\"\n"
    );
    let def = kiln_spec::parse(&text, &path).expect("valid");
    assert!(matches!(&def.run[0].step, RunStep::Script(p) if p.written == "scripts/setup.sh"));
    assert_eq!(def.run[1].step, RunStep::Command("echo hi".into()));
    assert!(!def.run[0].network && !def.run[1].network);
    assert!(def.lock_inputs().non_hermetic.is_empty());

    let networked = format!(
        "{MINIMAL}\n[[run]]\ncommand = \"echo a\"\n[[run]]\ncommand = \"curl x\"\nnetwork = true\n"
    );
    let def = kiln_spec::parse(&networked, &path).expect("valid");
    assert!(def.run[1].network);
    assert_eq!(def.lock_inputs().non_hermetic, vec![2]);
    let bad = format!("{MINIMAL}\n[[run]]\ncommand = \"echo a\"\nnetwork = \"yes\"\n");
    assert!(kiln_spec::parse(&bad, &path).is_err());

    for (body, expected) in [
        ("script = \"scripts/nope.sh\"", ErrorKind::MissingPath),
        (
            "script = \"scripts/setup.sh\"\ncommand = \"x\"",
            ErrorKind::Conflict,
        ),
        ("", ErrorKind::Missing),
        ("command = \"  \"", ErrorKind::InvalidValue),
        ("cmd = \"x\"", ErrorKind::UnknownField),
    ] {
        let text = format!("{MINIMAL}\n[[run]]\n{body}\n");
        let e = kiln_spec::parse(&text, &path).expect_err(body);
        assert_eq!(e.kind(), Some(expected), "{body}");
    }
}

#[test]
fn services() {
    let def = ok(
        "[services]\nenable = [\"nginx.service\", \"fstrim.timer\"]\ndisable = [\"getty@tty1.service\"]",
    );
    assert_eq!(def.services.enable, ["nginx.service", "fstrim.timer"]);
    assert_eq!(def.services.disable, ["getty@tty1.service"]);
    let e = err("[services]\nenable = [\"nginx\"]");
    assert_eq!(e.kind(), Some(ErrorKind::InvalidValue));
    assert!(e.hint().expect("hint").contains("nginx.service"));
    assert_eq!(
        kind("[services]\nenable = [\"a.service\", \"a.service\"]"),
        ErrorKind::Duplicate
    );
    assert_eq!(
        kind("[services]\nenable = [\"a.service\"]\ndisable = [\"a.service\"]"),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind("[services]\nstart = [\"a.service\"]"),
        ErrorKind::UnknownField
    );
}

#[test]
fn runtime() {
    let def =
        ok("[runtime]\nenv_file = \"/etc/default/web\"\nrequired = [\"DATABASE_URL\", \"_X\"]");
    assert_eq!(def.runtime.env_file.as_deref(), Some("/etc/default/web"));
    assert_eq!(def.runtime.required, ["DATABASE_URL", "_X"]);
    assert_eq!(
        kind("[runtime]\nenv_file = \"etc/default/web\""),
        ErrorKind::InvalidValue
    );
    assert_eq!(
        kind("[runtime]\nenv_file = \"/e\"\nrequired = [\"DATABASE-URL\"]"),
        ErrorKind::InvalidValue
    );
    assert_eq!(
        kind("[runtime]\nenv_file = \"/e\"\nrequired = [\"A\", \"A\"]"),
        ErrorKind::Duplicate
    );
    assert_eq!(kind("[runtime]\nrequired = [\"A\"]"), ErrorKind::Missing);
}

#[test]
fn disk() {
    let def =
        ok("[disk]\nsize = \"512M\"\nkernel = \"linux-image-cloud-amd64\"\nfilesystem = \"ext4\"");
    assert_eq!(def.disk.size, 512 << 20);
    assert_eq!(def.disk.kernel.as_deref(), Some("linux-image-cloud-amd64"));
    assert_eq!(def.disk.initramfs, Initramfs::Minimal, "minimal by default");
    let full = ok("[disk]\nkernel = \"linux-image-amd64\"\ninitramfs = \"full\"");
    assert_eq!(full.disk.initramfs, Initramfs::Full);
    for (text, expected) in [
        (
            "[disk]\nkernel = \"linux-image-amd64\"\ninitramfs = \"none\"",
            ErrorKind::InvalidValue,
        ),
        ("[disk]\ninitramfs = \"full\"", ErrorKind::InvalidValue),
        (
            "[disk]\nkernel = \"linux-image-amd64\"\ninitramfs = 1",
            ErrorKind::WrongType,
        ),
        ("[disk]\nsize = \"2GB\"", ErrorKind::InvalidValue),
        ("[disk]\nsize = \"1.5G\"", ErrorKind::InvalidValue),
        ("[disk]\nsize = \"100M\"", ErrorKind::InvalidValue),
        ("[disk]\nsize = 2", ErrorKind::WrongType),
        ("[disk]\nkernel = \"Linux\"", ErrorKind::InvalidValue),
        ("[disk]\nfilesystem = \"btrfs\"", ErrorKind::InvalidValue),
        ("[disk]\nsiz = \"2G\"", ErrorKind::UnknownField),
    ] {
        assert_eq!(kind(text), expected, "{text}");
    }
}

#[test]
fn outputs() {
    let def = ok(
        "[disk]\nkernel = \"linux-image-amd64\"\n[outputs]\nformats = [\"raw\", \"qcow2\", \"vmdk\", \"vhd\", \"oci\", \"tar\"]",
    );
    assert_eq!(
        def.outputs.formats,
        [
            Format::Raw,
            Format::Qcow2,
            Format::Vmdk,
            Format::Vhd,
            Format::Oci,
            Format::Tar
        ]
    );
    assert_eq!(
        kind("[outputs]\nformats = [\"iso\"]"),
        ErrorKind::InvalidValue
    );
    assert_eq!(kind("[outputs]\nformats = []"), ErrorKind::InvalidValue);
    assert_eq!(
        kind("[outputs]\nformats = [\"oci\", \"oci\"]"),
        ErrorKind::Duplicate
    );
    // A disk needs a kernel; the check points at the format that asks for one.
    assert_eq!(
        field("[outputs]\nformats = [\"oci\", \"raw\"]"),
        "outputs.formats[1]"
    );
}

#[test]
fn checks() {
    let def = ok(r#"
[[check]]
name = "nginx answers"
run = "curl -fsS http://127.0.0.1/"
timeout = 60

[[check]]
unit = "nginx.service"
ready_within = "1m 30s"

[[check]]
port = 80
ready_within = "500ms"

[[check]]
path = "/etc/motd"
contains = "welcome"
"#);
    let names: Vec<&str> = def.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "nginx answers",
            "nginx.service is active",
            "port 80 accepts connections",
            "/etc/motd contains \"welcome\"",
        ]
    );
    assert_eq!(def.checks[0].timeout_secs, 60);
    assert_eq!(def.checks[1].timeout_secs, DEFAULT_CHECK_TIMEOUT_SECS);
    assert_eq!(def.checks[0].ready_within(), None);
    assert_eq!(def.checks[1].ready_within_ms, Some(90_000));
    assert_eq!(def.checks[2].ready_within_ms, Some(500));
    assert_eq!(def.checks[2].kind, CheckKind::Port { port: 80 });
    assert_eq!(
        def.checks[3].kind,
        CheckKind::Path {
            path: "/etc/motd".into(),
            contains: Some("welcome".into())
        }
    );

    for (text, expected) in [
        ("[[check]]\nname = \"x\"", ErrorKind::Missing),
        (
            "[[check]]\nunit = \"a.service\"\nport = 80",
            ErrorKind::Conflict,
        ),
        (
            "[[check]]\nrun = \"true\"\ncontains = \"x\"",
            ErrorKind::Conflict,
        ),
        ("[[check]]\nport = 0", ErrorKind::InvalidValue),
        ("[[check]]\nport = 70000", ErrorKind::InvalidValue),
        ("[[check]]\nport = \"80\"", ErrorKind::WrongType),
        ("[[check]]\nunit = \"nginx\"", ErrorKind::InvalidValue),
        ("[[check]]\npath = \"etc/motd\"", ErrorKind::InvalidValue),
        (
            "[[check]]\nrun = \"true\"\ntimeout = 0",
            ErrorKind::InvalidValue,
        ),
        (
            "[[check]]\nrun = \"true\"\nready_within = \"0s\"",
            ErrorKind::InvalidValue,
        ),
        (
            "[[check]]\nrun = \"true\"\nready_within = \"2h\"",
            ErrorKind::InvalidValue,
        ),
        (
            "[[check]]\nrun = \"true\"\nready_within = 10",
            ErrorKind::WrongType,
        ),
        (
            "[[check]]\nunit = \"a.service\"\n[[check]]\nunit = \"a.service\"",
            ErrorKind::Duplicate,
        ),
        ("[[check]]\ncommand = \"true\"", ErrorKind::UnknownField),
    ] {
        assert_eq!(kind(text), expected, "{text}");
    }
}

#[test]
fn syntax_errors_are_located() {
    let e = with("[packages]\ninstall = [\"a\"\n").expect_err("syntax");
    let d = e.diagnostic().expect("diagnostic");
    assert_eq!(d.kind, ErrorKind::Syntax);
    assert!(d.location.is_some());
}

#[test]
fn inline_tables_and_dotted_keys_are_the_same_definition() {
    let a = ok("[packages]\ninstall = [\"curl\"]");
    let b = parse(&format!("packages = {{ install = [\"curl\"] }}\n{MINIMAL}")).expect("inline");
    let c = parse(&format!("packages.install = [\"curl\"]\n{MINIMAL}")).expect("dotted");
    assert_eq!(a, b);
    assert_eq!(a, c);
}
