//! A rebuild's record in the catalog: one rollout, and a row per image
//! written as the image starts and again when it ends, so a killed run
//! leaves behind what it did and what it was doing.

use std::path::Path;

use kiln_build::{Catalog, NewRollout, RolloutImage};
use serde::Serialize;

use crate::error::Error;
use crate::plan::Planned;
use crate::rebuild::{Outcome, Status, Tested};

pub(crate) struct Recorder {
    catalog: Catalog,
    pub id: i64,
    /// More than one: this run continues a rollout a kill interrupted.
    pub attempts: i64,
    /// What the runs before this one recorded, per image.
    before: Vec<RolloutImage>,
}

/// What the rollout row keeps of the options; the trigger is kept apart.
#[derive(Serialize)]
pub(crate) struct Options<'a> {
    pub max_parallel: usize,
    pub canary: Option<usize>,
    pub promote: Option<&'a str>,
}

impl Recorder {
    pub fn start(
        catalog: Catalog,
        root: &Path,
        trigger: &str,
        options: &Options<'_>,
    ) -> Result<Recorder, Error> {
        let dir = fs_err::canonicalize(root)?;
        let options = serde_json::to_string(options).map_err(std::io::Error::other)?;
        let rollout = catalog
            .start_rollout(&NewRollout {
                dir: dir.display().to_string(),
                trigger: trigger.to_string(),
                options,
                who: kiln_build::who(),
                at: kiln_build::unix_now(),
            })
            .map_err(kiln_build::Error::from)?;
        Ok(Recorder {
            catalog,
            id: rollout.id,
            attempts: rollout.attempts,
            before: rollout.images,
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The verdict an earlier run of this rollout reached on `build` of
    /// `name`, when its boot test failed: the same build fails the same
    /// checks, and this rollout has already decided about it.
    pub fn failed_before(&self, name: &str, build: &str) -> Option<&RolloutImage> {
        self.before.iter().find(|r| {
            r.name == name
                && r.build.as_deref() == Some(build)
                && r.tested.as_deref() == Some("failed")
        })
    }

    pub fn started(&self, p: &Planned, wave: usize) -> Result<(), Error> {
        self.write(&RolloutImage {
            name: p.name.clone(),
            wave: wave as i64 + 1,
            reason: p.reason.clone(),
            status: "started".into(),
            at: kiln_build::unix_now(),
            ..RolloutImage::default()
        })
    }

    pub fn ended(&self, o: &Outcome) -> Result<(), Error> {
        self.write(&RolloutImage {
            name: o.name.clone(),
            wave: o.wave as i64,
            reason: o.reason.clone(),
            status: match o.status {
                Status::Passed => "passed",
                Status::Failed => "failed",
                Status::Skipped => "skipped",
            }
            .into(),
            build: o.build.clone(),
            cached: o.cached,
            tested: o.tested.map(|t| {
                match t {
                    Tested::Passed => "passed",
                    Tested::Reused => "reused",
                    Tested::Failed => "failed",
                }
                .to_string()
            }),
            promoted: o.promoted.clone(),
            detail: o.detail.clone(),
            at: kiln_build::unix_now(),
        })
    }

    pub fn finish(&self, passed: bool) -> Result<(), Error> {
        self.catalog
            .finish_rollout(self.id, passed, kiln_build::unix_now())
            .map_err(kiln_build::Error::from)?;
        Ok(())
    }

    fn write(&self, image: &RolloutImage) -> Result<(), Error> {
        self.catalog
            .record_rollout_image(self.id, image)
            .map_err(kiln_build::Error::from)?;
        Ok(())
    }
}
