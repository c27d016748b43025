//! The catalog: the record of every image build, its test verdicts, and
//! which build runs in which environment.
//!
//! One interface over two stores: an SQLite file by default, or a
//! PostgreSQL database shared by a team, chosen by the location string.
//! Both are safe for many kiln processes writing at once.

mod builds;
mod db;
mod error;
mod location;
mod migrations;
mod model;
mod names;
mod postgres;
mod promotion;
mod pushes;
mod reference;
mod rollouts;
mod sqlite;

use std::sync::{Mutex, PoisonError};

pub use error::Error;
pub use migrations::SCHEMA_VERSION;
pub use model::{
    Build, BuildFilter, Deployment, NewBuild, NewPromotion, NewRollout, NewTest, Output, Promotion,
    PromotionKind, Push, Rollout, RolloutImage, TestRecord,
};
pub use reference::MIN_PREFIX;

use db::{Driver, Mode, Tx};
use location::Location;

pub struct Catalog {
    /// A connection serves one transaction at a time; the mutex lets one
    /// `Catalog` be shared between threads all the same.
    driver: Mutex<Box<dyn Driver>>,
    description: String,
}

impl Catalog {
    /// Opens, creating and migrating as needed:
    /// - `postgres://…`, `postgresql://…`, or a libpq `key=value` string
    ///   starting with `host=`, `hostaddr=`, `port=`, `dbname=` or `user=`:
    ///   a PostgreSQL database, which must exist;
    /// - `sqlite:PATH` or a plain path: an SQLite file, its directories
    ///   created.
    pub fn open(location: &str) -> Result<Catalog, Error> {
        Catalog::open_at(location, SCHEMA_VERSION)
    }

    /// Opens migrated only up to `version`, to test upgrades of catalogs
    /// an older kiln made.
    #[doc(hidden)]
    pub fn open_at(location: &str, version: i64) -> Result<Catalog, Error> {
        // Opening is idempotent, so a fresh SQLite file that several
        // processes open at once is retried until one has set it up.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match Catalog::open_once(location, version) {
                Err(e) if e.is_busy() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                result => return result,
            }
        }
    }

    fn open_once(location: &str, version: i64) -> Result<Catalog, Error> {
        let (driver, description): (Box<dyn Driver>, String) = match location::parse(location)? {
            Location::Sqlite(path) => (
                Box::new(sqlite::Sqlite::open(&path)?),
                format!("sqlite {}", path.display()),
            ),
            Location::Postgres(conninfo) => {
                let pg = postgres::Postgres::open(&conninfo)?;
                let description = pg.location().to_string();
                (Box::new(pg), description)
            }
        };
        let catalog = Catalog {
            driver: Mutex::new(driver),
            description,
        };
        catalog.migrate(version)?;
        Ok(catalog)
    }

    fn migrate(&self, target: i64) -> Result<(), Error> {
        let list = self.lock().migrations();
        let location = self.description.clone();
        // Up to date is the usual case: check without taking the write lock,
        // so that opening a catalog does not queue behind busy writers. A
        // fresh catalog has no table to read yet and takes the long way.
        if let Ok(current) = self.read(migrations::version) {
            let known = list.last().map_or(0, |m| m.version);
            if current > known {
                return Err(Error::SchemaTooNew {
                    location,
                    found: current,
                    known,
                });
            }
            if current >= target {
                return Ok(());
            }
        }
        self.write(|tx| migrations::migrate(tx, list, target, &location))
            .map(drop)
    }

    /// `sqlite PATH` or `postgresql HOST/DB`, never a password.
    pub fn describe(&self) -> String {
        self.description.clone()
    }

    /// The schema version the catalog is at.
    pub fn schema_version(&self) -> Result<i64, Error> {
        self.read(migrations::version)
    }

    /// Records a build; the same id again widens `built_at`..`last_built_at`
    /// and, when newest, updates the outputs' paths. Never a duplicate.
    pub fn record_build(&self, b: &NewBuild) -> Result<Build, Error> {
        self.write(|tx| builds::record(tx, b))
    }

    pub fn record_test(&self, build_id: &str, t: &NewTest) -> Result<TestRecord, Error> {
        self.write(|tx| builds::record_test(tx, build_id, t))
    }

    /// Newest first (`built_at` descending, then id).
    pub fn builds(&self, filter: &BuildFilter) -> Result<Vec<Build>, Error> {
        self.read(|tx| builds::list(tx, filter))
    }

    /// `NAME@VERSION` (the newest such build), `NAME@latest`, or at least
    /// `MIN_PREFIX` hex digits of a build's digest or of one of its outputs'
    /// digests, with or without `sha256:`.
    pub fn resolve(&self, reference: &str) -> Result<Build, Error> {
        self.read(|tx| reference::resolve(tx, reference))
    }

    pub fn get(&self, id: &str) -> Result<Option<Build>, Error> {
        self.read(|tx| builds::get(tx, id))
    }

    /// The build, its parent, and so on up to the root image.
    pub fn lineage(&self, id: &str) -> Result<Vec<Build>, Error> {
        self.read(|tx| builds::lineage(tx, id))
    }

    /// The bytes given as `NewBuild::manifest`.
    pub fn manifest(&self, id: &str) -> Result<Option<Vec<u8>>, Error> {
        self.read(|tx| builds::manifest(tx, id))
    }

    /// Oldest first.
    pub fn tests(&self, id: &str) -> Result<Vec<TestRecord>, Error> {
        self.read(|tx| builds::tests(tx, id))
    }

    /// Refuses a build whose last test failed unless `force`, and a build
    /// that already runs there. Going back to an older build that ran there
    /// before is recorded as a rollback.
    pub fn promote(&self, p: &NewPromotion) -> Result<Promotion, Error> {
        self.write(|tx| promotion::promote(tx, p))
    }

    /// Moves `name` in `env` back to the build that ran before the current
    /// one came in.
    pub fn rollback(&self, env: &str, name: &str, who: &str, at: i64) -> Result<Promotion, Error> {
        self.write(|tx| promotion::rollback(tx, env, name, who, at))
    }

    /// What runs where: per environment and image name, sorted by both.
    pub fn deployments(&self, name: Option<&str>) -> Result<Vec<Deployment>, Error> {
        self.read(|tx| promotion::deployments(tx, name))
    }

    /// Records that build `id` was pushed to `push.reference`.
    pub fn record_push(&self, id: &str, push: &Push) -> Result<(), Error> {
        self.write(|tx| pushes::record(tx, id, push))
    }

    /// Where build `id` was pushed, oldest first.
    pub fn pushes(&self, id: &str) -> Result<Vec<Push>, Error> {
        self.read(|tx| pushes::list(tx, id))
    }

    /// Starts a `kiln rebuild`'s record, or continues the unfinished one of
    /// the same directory and trigger (a rerun after a kill).
    pub fn start_rollout(&self, r: &NewRollout) -> Result<Rollout, Error> {
        self.write(|tx| rollouts::start(tx, r))
    }

    /// Records what rollout `id` did with one image, replacing what an
    /// earlier run of it recorded for that image.
    pub fn record_rollout_image(&self, id: i64, image: &RolloutImage) -> Result<(), Error> {
        self.write(|tx| rollouts::record_image(tx, id, image))
    }

    pub fn finish_rollout(&self, id: i64, passed: bool, at: i64) -> Result<Rollout, Error> {
        self.write(|tx| rollouts::finish(tx, id, passed, at))
    }

    pub fn rollout(&self, id: i64) -> Result<Option<Rollout>, Error> {
        self.read(|tx| rollouts::get(tx, id))
    }

    /// Newest first, at most `limit`.
    pub fn rollouts(&self, limit: Option<usize>) -> Result<Vec<Rollout>, Error> {
        self.read(|tx| rollouts::list(tx, limit))
    }

    /// Every promotion and rollback in `env`, in order.
    pub fn history(&self, env: &str) -> Result<Vec<Promotion>, Error> {
        self.read(|tx| promotion::history(tx, env))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Driver>> {
        // A panic mid-transaction dropped, so rolled back, that transaction:
        // the connection is fine to use.
        self.driver.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read<T>(&self, f: impl FnMut(&mut dyn Tx) -> Result<T, Error>) -> Result<T, Error> {
        self.run(Mode::Read, f)
    }

    fn write<T>(&self, f: impl FnMut(&mut dyn Tx) -> Result<T, Error>) -> Result<T, Error> {
        self.run(Mode::Write, f)
    }

    fn run<T>(
        &self,
        mode: Mode,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut out = None;
        self.lock().transaction(mode, &mut |tx| {
            out = Some(f(tx)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::InvalidRecord("a transaction committed without a result".into()))
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("location", &self.description)
            .finish()
    }
}
