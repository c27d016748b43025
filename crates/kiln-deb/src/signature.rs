//! Verifying an `InRelease` clearsigned file against an OpenPGP keyring.
