//! The guest half of `kiln test`, and the protocol between the halves.
//!
//! Two units go into every disk image (see `agent/`):
//! - `kiln-runtime.service` copies the runtime configuration from a CIDATA
//!   seed disk to `[runtime].env_file` before `sysinit.target`; with no seed
//!   disk its condition fails.
//! - `kiln-check.service` runs after `multi-user.target` only when the
//!   virtio-serial port [`AGENT_PORT`] exists, which only `kiln test` attaches:
//!   inert in production.
//!
//! The host turns each check into a `/bin/sh` command ([`check_command`]) and
//! puts them on the seed as [`plan`] lines; the agent runs each until it
//! succeeds or its timeout passes and answers one JSON object per line
//! ([`Message`]). Output travels base64-encoded, so the agent needs no JSON
//! escaping and no jq: only sh, coreutils (`timeout`, `base64`, `date`) and
//! mount, all in a minbase image.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kiln_spec::{Check, CheckKind};
use serde::Deserialize;

/// The name of the virtio-serial port; the guest sees `/dev/virtio-ports/<name>`.
pub const AGENT_PORT: &str = "org.kiln.checks";

/// A file the disk stage adds to the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentFile {
    /// Absolute, inside the image.
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
}

/// A symbolic link the disk stage adds to the image (what `systemctl enable` makes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLink {
    /// Absolute, inside the image.
    pub path: String,
    /// Absolute, inside the image.
    pub target: String,
}

const UNIT_DIR: &str = "/usr/lib/systemd/system";

/// The agent's scripts and units, owned by root.
pub fn agent_files() -> Vec<AgentFile> {
    let file = |path: &str, mode: u32, contents: &str| AgentFile {
        path: path.to_string(),
        mode,
        contents: contents.as_bytes().to_vec(),
    };
    vec![
        file(
            "/usr/lib/kiln/kiln-runtime",
            0o755,
            include_str!("agent/kiln-runtime"),
        ),
        file(
            "/usr/lib/kiln/kiln-check",
            0o755,
            include_str!("agent/kiln-check"),
        ),
        file(
            &format!("{UNIT_DIR}/kiln-runtime.service"),
            0o644,
            include_str!("agent/kiln-runtime.service"),
        ),
        file(
            &format!("{UNIT_DIR}/kiln-check.service"),
            0o644,
            include_str!("agent/kiln-check.service"),
        ),
    ]
}

/// The links that enable both units, as their `[Install]` sections say.
pub fn agent_links() -> Vec<AgentLink> {
    let link = |target: &str, unit: &str| AgentLink {
        path: format!("/etc/systemd/system/{target}.wants/{unit}"),
        target: format!("{UNIT_DIR}/{unit}"),
    };
    vec![
        link("sysinit.target", "kiln-runtime.service"),
        link("multi-user.target", "kiln-check.service"),
    ]
}

/// A string as one `/bin/sh` word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What the agent runs, under `/bin/sh`, for one check; exit 0 passes.
pub fn check_command(kind: &CheckKind) -> String {
    match kind {
        CheckKind::Run { command } => command.clone(),
        CheckKind::Unit { unit } => format!("systemctl is-active -- {}", quote(unit)),
        CheckKind::Port { port } => format!(
            "if command -v ss >/dev/null 2>&1; then \
               ss -Hltn 'sport = :{port}' | grep . && exit 0; \
             else \
               bash -c ': </dev/tcp/127.0.0.1/{port}' 2>/dev/null && exit 0; \
               bash -c ': </dev/tcp/::1/{port}' 2>/dev/null && exit 0; \
             fi; \
             echo 'nothing listens on TCP port {port}'; exit 1"
        ),
        CheckKind::Path { path, contains } => {
            let p = quote(path);
            let mut cmd = format!("test -e {p} || {{ echo {p} does not exist; exit 1; }}");
            if let Some(needle) = contains {
                cmd.push_str(&format!(
                    "; case \"$(cat -- {p})\" in *{}*) ;; *) echo {p} does not contain {}; exit 1;; esac",
                    quote(needle),
                    quote(needle),
                ));
            }
            cmd
        }
    }
}

/// The seed's `kiln/checks`: `INDEX TIMEOUT_SECS BASE64(COMMAND)` per check.
pub fn plan(checks: &[Check]) -> String {
    checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "{i} {} {}\n",
                c.timeout_secs.max(1),
                STANDARD.encode(check_command(&c.kind))
            )
        })
        .collect()
}

/// One line from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The machine reached multi-user; `boot` counts from 1.
    Ready {
        boot: u32,
    },
    Check {
        index: usize,
        ok: bool,
        millis: u64,
        output: String,
    },
    /// What `systemd-analyze time` and `systemd-analyze blame` printed
    /// (blame cut to its first lines), once the boot had finished.
    Analysis {
        boot: u32,
        time: String,
        blame: String,
    },
    Done {
        boot: u32,
    },
    Error {
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    ready: Option<bool>,
    done: Option<bool>,
    boot: Option<u32>,
    check: Option<usize>,
    ok: Option<bool>,
    ms: Option<u64>,
    output: Option<String>,
    analyze: Option<String>,
    blame: Option<String>,
    error: Option<String>,
}

/// Parses one line; the error says what is wrong with it.
pub fn parse_message(line: &str) -> Result<Message, String> {
    let w: Wire = serde_json::from_str(line.trim()).map_err(|e| e.to_string())?;
    match w {
        Wire {
            ready: Some(true),
            boot: Some(boot),
            done: None,
            check: None,
            error: None,
            ..
        } => Ok(Message::Ready { boot }),
        Wire {
            done: Some(true),
            boot: Some(boot),
            ready: None,
            check: None,
            error: None,
            ..
        } => Ok(Message::Done { boot }),
        Wire {
            check: Some(index),
            ok: Some(ok),
            ms: Some(millis),
            output: Some(output),
            ready: None,
            done: None,
            error: None,
            ..
        } => Ok(Message::Check {
            index,
            ok,
            millis,
            output: decode(&output)?,
        }),
        Wire {
            analyze: Some(time),
            blame: Some(blame),
            boot: Some(boot),
            ready: None,
            done: None,
            check: None,
            error: None,
            ..
        } => Ok(Message::Analysis {
            boot,
            time: decode(&time)?,
            blame: decode(&blame)?,
        }),
        Wire {
            error: Some(message),
            ..
        } => Ok(Message::Error { message }),
        _ => Err("not a ready, check, analysis, done or error message".into()),
    }
}

/// A base64 field as text.
fn decode(field: &str) -> Result<String, String> {
    let bytes = STANDARD
        .decode(field.trim())
        .map_err(|e| format!("output is not base64: {e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse() {
        assert_eq!(
            parse_message(r#"{"ready":true,"boot":1}"#),
            Ok(Message::Ready { boot: 1 })
        );
        assert_eq!(
            parse_message("{\"done\":true,\"boot\":2}\r\n"),
            Ok(Message::Done { boot: 2 })
        );
        assert_eq!(
            parse_message(r#"{"check":3,"ok":false,"ms":1500,"output":"aW5hY3RpdmUK"}"#),
            Ok(Message::Check {
                index: 3,
                ok: false,
                millis: 1500,
                output: "inactive\n".into()
            })
        );
        assert_eq!(
            parse_message(r#"{"check":0,"ok":true,"ms":0,"output":""}"#),
            Ok(Message::Check {
                index: 0,
                ok: true,
                millis: 0,
                output: String::new()
            })
        );
        assert_eq!(
            parse_message(r#"{"analyze":"U3RhcnR1cA==","blame":"","boot":1}"#),
            Ok(Message::Analysis {
                boot: 1,
                time: "Startup".into(),
                blame: String::new()
            })
        );
        assert_eq!(
            parse_message(r#"{"error":"cannot read kiln/checks"}"#),
            Ok(Message::Error {
                message: "cannot read kiln/checks".into()
            })
        );
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        for bad in [
            "login: ",
            r#"{"ready":true}"#,
            r#"{"check":1,"ok":true}"#,
            r#"{"check":1,"ok":true,"ms":1,"output":"%%%"}"#,
            r#"{"ready":true,"boot":1,"colour":"red"}"#,
            r#"{"ready":true,"done":true,"boot":1}"#,
            r#"{"analyze":"","blame":""}"#,
        ] {
            assert!(parse_message(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_lines_carry_index_timeout_and_the_encoded_command() {
        let checks = vec![
            Check {
                name: "a".into(),
                kind: CheckKind::Run {
                    command: "echo 'hi there'".into(),
                },
                timeout_secs: 5,
                ready_within_ms: None,
            },
            Check {
                name: "b".into(),
                kind: CheckKind::Unit {
                    unit: "nginx.service".into(),
                },
                timeout_secs: 30,
                ready_within_ms: None,
            },
        ];
        let plan = plan(&checks);
        let lines: Vec<&str> = plan.lines().collect();
        assert_eq!(lines.len(), 2);
        let fields: Vec<&str> = lines[0].split(' ').collect();
        assert_eq!(&fields[..2], ["0", "5"]);
        assert_eq!(STANDARD.decode(fields[2]).unwrap(), b"echo 'hi there'");
        assert!(lines[1].starts_with("1 30 "));
    }

    fn sh(cmd: &str) -> (bool, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    #[test]
    fn path_checks_run_under_sh() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("it's here.conf");
        fs_err::write(&file, "listen 80;\nserver_name a*b;\n").unwrap();
        let path = file.to_string_lossy().into_owned();
        let check = |contains: Option<&str>| {
            sh(&check_command(&CheckKind::Path {
                path: path.clone(),
                contains: contains.map(String::from),
            }))
        };
        assert!(check(None).0);
        assert!(check(Some("listen 80;")).0);
        assert!(check(Some("a*b")).0, "the needle is literal");
        assert!(check(Some("80;\nserver")).0, "the needle may span lines");
        let (ok, out) = check(Some("listen 81"));
        assert!(!ok);
        assert!(out.contains("does not contain listen 81"), "{out}");
        let (ok, out) = sh(&check_command(&CheckKind::Path {
            path: "/nonexistent/x".into(),
            contains: None,
        }));
        assert!(!ok);
        assert_eq!(out, "/nonexistent/x does not exist\n");
    }

    #[test]
    fn port_checks_see_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (ok, out) = sh(&check_command(&CheckKind::Port { port }));
        assert!(ok, "{out}");
        drop(listener);
        let (ok, out) = sh(&check_command(&CheckKind::Port { port }));
        assert!(!ok);
        assert!(
            out.contains(&format!("nothing listens on TCP port {port}")),
            "{out}"
        );
    }

    #[test]
    fn the_agent_is_two_scripts_two_units_and_two_links() {
        let files = agent_files();
        assert_eq!(files.len(), 4);
        for f in &files {
            assert!(f.path.starts_with('/'), "{}", f.path);
            let text = String::from_utf8(f.contents.clone()).unwrap();
            if f.mode == 0o755 {
                assert!(text.starts_with("#!/bin/sh\n"), "{}", f.path);
            }
        }
        let check_unit = files
            .iter()
            .find(|f| f.path.ends_with("kiln-check.service"))
            .unwrap();
        let text = String::from_utf8_lossy(&check_unit.contents);
        assert!(text.contains(&format!(
            "ConditionPathExists=/dev/virtio-ports/{AGENT_PORT}"
        )));
        for link in agent_links() {
            assert!(
                files.iter().any(|f| f.path == link.target),
                "{}",
                link.target
            );
            let unit = link.path.rsplit('/').next().unwrap();
            let file = files.iter().find(|f| f.path == link.target).unwrap();
            let wanted_by = link
                .path
                .split('/')
                .nth(4)
                .unwrap()
                .trim_end_matches(".wants");
            assert!(
                String::from_utf8_lossy(&file.contents).contains(&format!("WantedBy={wanted_by}")),
                "{unit}"
            );
        }
    }
}
