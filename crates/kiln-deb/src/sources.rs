//! The host's apt sources: which mirror serves which suite.
