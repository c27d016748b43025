//! The binary's one error type: a pipeline's or the fleet's, each keeping
//! its hint and exit code.

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Build(#[from] kiln_build::Error),
    #[error(transparent)]
    Fleet(#[from] kiln_fleet::Error),
}

impl Failure {
    pub fn hint(&self) -> Option<String> {
        match self {
            Failure::Build(e) => e.hint(),
            Failure::Fleet(e) => e.hint(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Build(e) => e.exit_code(),
            Failure::Fleet(e) => e.exit_code(),
        }
    }
}

/// The catalog commands call the catalog directly; its errors mean what
/// they mean in a pipeline.
impl From<kiln_catalog::Error> for Failure {
    fn from(e: kiln_catalog::Error) -> Self {
        Failure::Build(e.into())
    }
}
