//! A throwaway PostgreSQL server for one test: its own data directory and
//! socket directory under the system temp dir, no TCP listener, stopped and
//! deleted on drop (also when the test panics).
//!
//! The server binaries come from `KILN_TEST_PG_BIN` or the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package). Without them
//! the test fails: a skipped database test would pass silently in CI.
//! PostgreSQL refuses to run as root, so as root the server runs as the
//! `postgres` user.

use std::fs;
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Only names the socket file: the socket directory is this server's own,
/// so no other server can be on the same number.
const PORT: u16 = 5432;

pub struct PgServer {
    child: Child,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl PgServer {
    pub fn start() -> PgServer {
        let bin = bin_dir();
        let user = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_user())
        } else {
            None
        };
        let dir = owned_tempdir("kiln-pg-", user);
        let data = dir.path().join("data");

        let template = template(&bin, user);
        copy_dir(&template, &data);

        let log_path = dir.path().join("postgres.log");
        let log = fs::File::create(&log_path).expect("create the PostgreSQL log");
        if let Some((uid, gid)) = user {
            chown(&log_path, Some(uid), Some(gid)).expect("chown the PostgreSQL log");
        }
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", &PORT.to_string()])
            .args(["-c", "listen_addresses="])
            // Durability is not what these tests check; speed is welcome.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=50"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        as_user(&mut postgres, dir.path(), user);
        // std switches user before this hook runs, so the switch keeps it.
        kiln_deb::child::die_with_parent(&mut postgres);
        let child = postgres.spawn().expect("start postgres");
        let mut server = PgServer { child, dir, bin };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for postgres") {
                panic!("postgres exited ({status}) while starting:\n{}", self.log());
            }
            match postgres::Client::connect(&self.conninfo("postgres"), postgres::NoTls) {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!(
                    "postgres did not accept connections within {START_TIMEOUT:?}: {e}\n{}",
                    self.log()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        PORT
    }

    /// A libpq `key=value` string for database `db`.
    pub fn conninfo(&self, db: &str) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname={db}",
            self.dir.path().display()
        )
    }

    /// Creates database `db` and gives its location for `Catalog::open`.
    pub fn database(&self, db: &str) -> String {
        let mut admin = postgres::Client::connect(&self.conninfo("postgres"), postgres::NoTls)
            .expect("connect to the test server");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{db}\""))
            .expect("create the test database");
        self.conninfo(db)
    }

    pub fn version(&self) -> String {
        version(&self.bin)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown: sessions are ended, the
        // server exits cleanly and frees its shared memory.
        let pid = self.child.id() as libc::pid_t;
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory the server's user owns, so it may write there.
fn owned_tempdir(prefix: &str, user: Option<(u32, u32)>) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .unwrap_or_else(|e| panic!("temp dir {prefix}*: {e}"));
    if let Some((uid, gid)) = user {
        chown(dir.path(), Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", dir.path().display()));
    }
    dir
}

fn as_user(cmd: &mut Command, dir: &Path, user: Option<(u32, u32)>) {
    cmd.current_dir(dir);
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

fn version(bin: &Path) -> String {
    let out = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .expect("postgres --version");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An initialised data directory to copy: initdb takes a second, a copy a
/// few milliseconds. Kept under the build's target dir per server version;
/// made aside and renamed into place, so a concurrent test never sees half.
fn template(bin: &Path, user: Option<(u32, u32)>) -> PathBuf {
    let key: String = version(bin)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let cache = target.join(format!("kiln-catalog-pg-{key}"));
    if cache.is_dir() {
        return cache;
    }
    // initdb must write as the server's user, somewhere it may enter.
    let work = owned_tempdir("kiln-pg-initdb-", user);
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(work.path().join("data"))
        .args(["-U", "postgres", "--auth=trust", "--no-sync"])
        .args(["--encoding=UTF8", "--locale=C"]);
    as_user(&mut initdb, work.path(), user);
    let out = initdb.output().expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    fs::create_dir_all(target).expect("create the target temp dir");
    let staging = tempfile::Builder::new()
        .prefix("kiln-catalog-pg-staging-")
        .tempdir_in(target)
        .expect("staging dir for the template");
    copy_dir(&work.path().join("data"), &staging.path().join("data"));
    if let Err(e) = fs::rename(staging.path().join("data"), &cache) {
        // Another test made it first.
        assert!(cache.is_dir(), "keep the PostgreSQL template: {e}");
    }
    cache
}

/// Owners and modes kept: PostgreSQL insists on both.
fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "cp -a {} {}: {status}",
        from.display(),
        to.display()
    );
}

fn bin_dir() -> PathBuf {
    let has_server = |bin: &Path| bin.join("initdb").is_file() && bin.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("KILN_TEST_PG_BIN") {
        let bin = PathBuf::from(dir);
        assert!(
            has_server(&bin),
            "KILN_TEST_PG_BIN={} holds no initdb and postgres",
            bin.display()
        );
        return bin;
    }
    let root = Path::new("/usr/lib/postgresql");
    let newest = fs::read_dir(root).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                has_server(&bin).then_some((version, bin))
            })
            .max()
    });
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found in {}/*/bin: install the `postgresql` \
             package (apt-get install postgresql), or set KILN_TEST_PG_BIN to the directory \
             holding initdb and postgres",
            root.display()
        ),
    }
}

fn postgres_user() -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == "postgres").then(|| (f[2].parse().ok(), f[3].parse().ok()))
        })
        .and_then(|(uid, gid)| Some((uid?, gid?)))
        .unwrap_or_else(|| {
            panic!(
                "running as root, but there is no `postgres` user to run the PostgreSQL server \
                 as (PostgreSQL refuses root): install the `postgresql` package, which creates it"
            )
        })
}
