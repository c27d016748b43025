//! Verifying an `InRelease` clearsigned file against an OpenPGP keyring.
//!
//! Only the text covered by a good signature is ever returned, so a caller
//! cannot accidentally parse bytes an attacker added around it.

use std::io::Cursor;
use std::path::Path;

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;

/// The public keys of a keyring file such as `debian-archive-keyring.gpg`.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    /// Where the keys came from, for error messages.
    source: String,
}

/// Text whose signature verified, and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed text, dash-unescaped, with `\n` line endings. As the
    /// cleartext framework defines it, the line break just before the
    /// signature armor is not part of the signed text and is absent here.
    pub text: String,
    /// Uppercase hex fingerprint of the key (or subkey) that made the good
    /// signature.
    pub signer: String,
    /// Uppercase hex fingerprint of the primary key `signer` belongs to.
    pub primary: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("could not read keyring {path}")]
    ReadKeyring {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("keyring {source_name} holds no usable OpenPGP public key{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    EmptyKeyring {
        source_name: String,
        detail: Option<String>,
    },
    #[error("not an OpenPGP clearsigned message: {0}")]
    NotClearsigned(String),
    #[error("the file is not signed: it has no `BEGIN PGP SIGNED MESSAGE` block")]
    Unsigned,
    #[error(
        "no signature verifies against keyring {keyring} (signed by {})",
        if issuers.is_empty() { "an unnamed key".to_string() } else { issuers.join(", ") }
    )]
    NoGoodSignature {
        keyring: String,
        /// Issuer fingerprints (or key ids) named by the signatures.
        issuers: Vec<String>,
    },
}

impl Keyring {
    /// Reads a keyring file: binary (`.gpg`, keys concatenated) or armored
    /// (`.asc`, one or more `PUBLIC KEY BLOCK`s).
    pub fn load(path: &Path) -> Result<Keyring, SignatureError> {
        let bytes = fs_err::read(path).map_err(|source| SignatureError::ReadKeyring {
            path: path.display().to_string(),
            source,
        })?;
        Keyring::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses keyring bytes; `source` names them in errors. Keys that do not
    /// parse are skipped, as gpgv does, so one exotic key does not make the
    /// whole keyring useless; a keyring with no usable key is an error.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Keyring, SignatureError> {
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        let mut add = |result: pgp::errors::Result<SignedPublicKey>| match result {
            Ok(k) => keys.push(k),
            Err(e) => errors.push(e.to_string()),
        };
        const ARMOR: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
        match std::str::from_utf8(bytes) {
            Ok(text) if text.contains(ARMOR) => {
                // rpgp reads one armor block per call; .asc files may hold several.
                for (start, _) in text.match_indices(ARMOR) {
                    match SignedPublicKey::from_armor_many(Cursor::new(&text[start..])) {
                        Ok((iter, _)) => iter.for_each(&mut add),
                        Err(e) => add(Err(e)),
                    }
                }
            }
            _ => match SignedPublicKey::from_bytes_many(Cursor::new(bytes)) {
                Ok(iter) => iter.for_each(&mut add),
                Err(e) => add(Err(e)),
            },
        }
        if keys.is_empty() {
            return Err(SignatureError::EmptyKeyring {
                source_name: source.to_string(),
                detail: errors.pop(),
            });
        }
        Ok(Keyring {
            keys,
            source: source.to_string(),
        })
    }

    /// Uppercase hex fingerprints of the primary keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| format!("{:X}", k.fingerprint()))
            .collect()
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Verifies a clearsigned message (an `InRelease`) and returns its signed
/// text when at least one signature is good for a key of `keyring`.
///
/// A signature counts when it is a document signature, it verifies against a
/// primary key or a signing-capable, properly bound subkey, and that key had
/// not expired nor been revoked when the signature was made. Other signatures
/// on the same message (keys we do not hold) are ignored, as apt does.
pub fn verify_clearsigned(data: &[u8], keyring: &Keyring) -> Result<Verified, SignatureError> {
    let text =
        std::str::from_utf8(data).map_err(|e| SignatureError::NotClearsigned(e.to_string()))?;
    if !text.contains("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(SignatureError::Unsigned);
    }
    let (msg, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| SignatureError::NotClearsigned(e.to_string()))?;
    if msg.signatures().is_empty() {
        return Err(SignatureError::Unsigned);
    }
    let signed = msg.signed_text();
    let mut issuers = Vec::new();
    for sig in msg.signatures() {
        issuers.extend(issuer_names(sig));
        if !matches!(sig.typ(), Some(SignatureType::Text | SignatureType::Binary)) {
            continue;
        }
        for key in &keyring.keys {
            if let Some(signer) = good_signer(sig, key, signed.as_bytes()) {
                return Ok(Verified {
                    text: signed.replace("\r\n", "\n"),
                    signer,
                    primary: format!("{:X}", key.fingerprint()),
                });
            }
        }
    }
    issuers.sort();
    issuers.dedup();
    Err(SignatureError::NoGoodSignature {
        keyring: keyring.source.clone(),
        issuers,
    })
}

fn issuer_names(sig: &Signature) -> Vec<String> {
    let fps: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|fp| format!("{fp:X}"))
        .collect();
    if !fps.is_empty() {
        return fps;
    }
    sig.issuer_key_id()
        .iter()
        .map(|id| hex::encode_upper(id.as_ref()))
        .collect()
}

/// The fingerprint of the component of `key` that made `sig` over `data`, if
/// one did and was entitled to.
fn good_signer(sig: &Signature, key: &SignedPublicKey, data: &[u8]) -> Option<String> {
    let made = sig.created().map(|t| i64::from(t.as_secs()));
    if sig.verify(&key.primary_key, data).is_ok() {
        let alive = !revoked(&key.details.revocation_signatures, |s| {
            s.verify_key(&key.primary_key).is_ok()
        }) && within(made, key.created_at().as_secs(), primary_expiry(key));
        return alive.then(|| format!("{:X}", key.fingerprint()));
    }
    for sub in &key.public_subkeys {
        if sig.verify(&sub.key, data).is_err() {
            continue;
        }
        // The newest binding decides the subkey's flags and expiry.
        let binding = sub
            .signatures
            .iter()
            .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
            .max_by_key(|s| s.created().map(|t| t.as_secs()))?;
        let bound = binding
            .verify_subkey_binding(&key.primary_key, &sub.key)
            .is_ok()
            && binding.key_flags().sign()
            && binding.embedded_signature().is_some_and(|back| {
                back.verify_primary_key_binding(&sub.key, &key.primary_key)
                    .is_ok()
            });
        let revoked_sub = revoked(&sub.signatures, |s| {
            s.typ() == Some(SignatureType::SubkeyRevocation)
                && s.verify_subkey_binding(&key.primary_key, &sub.key).is_ok()
        });
        let expiry = binding.key_expiration_time().map(|d| d.as_secs());
        if bound && !revoked_sub && within(made, sub.created_at().as_secs(), expiry) {
            return Some(format!("{:X}", sub.fingerprint()));
        }
    }
    None
}

fn revoked(sigs: &[Signature], valid: impl Fn(&Signature) -> bool) -> bool {
    sigs.iter()
        .filter(|s| {
            matches!(
                s.typ(),
                Some(SignatureType::KeyRevocation | SignatureType::SubkeyRevocation)
            )
        })
        .any(valid)
}

/// The primary key's validity period from its newest self-certification.
fn primary_expiry(key: &SignedPublicKey) -> Option<u32> {
    key.details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(key.details.direct_signatures.iter())
        .filter(|s| {
            s.issuer_fingerprint()
                .iter()
                .any(|fp| **fp == key.fingerprint())
                || s.issuer_key_id()
                    .iter()
                    .any(|id| **id == key.legacy_key_id())
        })
        .max_by_key(|s| s.created().map(|t| t.as_secs()))
        .and_then(|s| s.key_expiration_time())
        .map(|d| d.as_secs())
}

/// Whether a signature made at `made` falls inside a key's life. A validity
/// of zero means "never expires" in OpenPGP.
fn within(made: Option<i64>, key_created: u32, validity: Option<u32>) -> bool {
    let (Some(made), Some(validity)) = (made, validity.filter(|&v| v > 0)) else {
        return true;
    };
    let expires = i64::from(key_created) + i64::from(validity);
    made < expires
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgp::composed::{
        EncryptionCaps, KeyType, SecretKeyParamsBuilder, SignedSecretKey, SubkeyParamsBuilder,
    };
    use pgp::types::Password;

    /// A throwaway key: a certify-only primary and a signing subkey, as the
    /// Debian archive keys are laid out.
    fn keygen(uid: &str) -> SignedSecretKey {
        let mut sub = SubkeyParamsBuilder::default();
        sub.key_type(KeyType::Ed25519Legacy)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None);
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id(uid.into())
            .subkeys(vec![sub.build().unwrap()]);
        params
            .build()
            .unwrap()
            .generate(rand::thread_rng())
            .unwrap()
    }

    fn clearsign_with_subkey(text: &str, key: &SignedSecretKey) -> String {
        let msg = CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &key.secret_subkeys[0].key,
            &Password::empty(),
        )
        .unwrap();
        msg.to_armored_string(Default::default()).unwrap()
    }

    fn keyring_of(keys: &[&SignedSecretKey]) -> Keyring {
        use pgp::ser::Serialize;
        let mut bytes = Vec::new();
        for k in keys {
            k.to_public_key().to_writer(&mut bytes).unwrap();
        }
        Keyring::from_bytes(&bytes, "test.gpg").unwrap()
    }

    const TEXT: &str = "Suite: testing\nDate: Sat, 10 May 2025 08:52:37 UTC\n- dashed line\n";

    #[test]
    fn a_subkey_signature_verifies_and_names_the_signer() {
        let other = keygen("other");
        let key = keygen("archive");
        let ring = keyring_of(&[&other, &key]);
        assert_eq!(ring.fingerprints().len(), 2);
        let signed = clearsign_with_subkey(TEXT, &key);
        // Lines starting with a dash are escaped in the armor and unescaped here.
        assert!(signed.contains("- - dashed line"));
        let v = verify_clearsigned(signed.as_bytes(), &ring).unwrap();
        assert_eq!(v.text, TEXT);
        assert_eq!(
            v.signer,
            format!("{:X}", key.secret_subkeys[0].key.fingerprint())
        );
        assert_eq!(v.primary, format!("{:X}", key.fingerprint()));
    }

    #[test]
    fn a_primary_key_signature_verifies() {
        let key = keygen("archive");
        let msg = CleartextSignedMessage::sign(
            rand::thread_rng(),
            TEXT,
            &key.primary_key,
            &Password::empty(),
        )
        .unwrap();
        let signed = msg.to_armored_string(Default::default()).unwrap();
        let v = verify_clearsigned(signed.as_bytes(), &keyring_of(&[&key])).unwrap();
        assert_eq!(v.signer, v.primary);
    }

    #[test]
    fn a_changed_byte_in_the_signed_text_is_refused() {
        let key = keygen("archive");
        let signed = clearsign_with_subkey(TEXT, &key).replace("Suite: testing", "Suite: testinG");
        let err = verify_clearsigned(signed.as_bytes(), &keyring_of(&[&key])).unwrap_err();
        assert!(
            matches!(err, SignatureError::NoGoodSignature { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_keyring_without_the_signer_is_refused_naming_the_issuer() {
        let key = keygen("archive");
        let stranger = keygen("stranger");
        let signed = clearsign_with_subkey(TEXT, &key);
        let err = verify_clearsigned(signed.as_bytes(), &keyring_of(&[&stranger])).unwrap_err();
        let sub_fp = format!("{:X}", key.secret_subkeys[0].key.fingerprint());
        assert!(err.to_string().contains(&sub_fp), "{err}");
        assert!(err.to_string().contains("test.gpg"), "{err}");
    }

    #[test]
    fn text_outside_the_signed_part_is_never_returned() {
        let key = keygen("archive");
        let signed = clearsign_with_subkey(TEXT, &key);
        let with_prefix = format!("Suite: evil\n{signed}");
        assert!(verify_clearsigned(with_prefix.as_bytes(), &keyring_of(&[&key])).is_err());
        let with_suffix = format!("{signed}Suite: evil\n");
        assert!(verify_clearsigned(with_suffix.as_bytes(), &keyring_of(&[&key])).is_err());
    }

    #[test]
    fn unsigned_and_garbage_inputs_are_refused() {
        let key = keygen("archive");
        let ring = keyring_of(&[&key]);
        assert!(matches!(
            verify_clearsigned(TEXT.as_bytes(), &ring),
            Err(SignatureError::Unsigned)
        ));
        assert!(verify_clearsigned(&[0xff, 0xfe], &ring).is_err());
    }

    #[test]
    fn armored_keyrings_with_several_blocks_load() {
        let a = keygen("a");
        let b = keygen("b");
        let mut asc = String::new();
        for k in [&a, &b] {
            asc += &k
                .to_public_key()
                .to_armored_string(Default::default())
                .unwrap();
        }
        let ring = Keyring::from_bytes(asc.as_bytes(), "keys.asc").unwrap();
        assert_eq!(ring.fingerprints().len(), 2);
        let signed = clearsign_with_subkey(TEXT, &b);
        assert!(verify_clearsigned(signed.as_bytes(), &ring).is_ok());
    }

    #[test]
    fn empty_or_missing_keyrings_are_errors_naming_the_file() {
        let err = Keyring::from_bytes(b"", "empty.gpg").unwrap_err();
        assert!(err.to_string().contains("empty.gpg"), "{err}");
        let err = Keyring::load(Path::new("/nonexistent/kiln.gpg")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/kiln.gpg"), "{err}");
    }

    #[test]
    fn the_debian_archive_keyring_loads_when_installed() {
        let path = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
        if path.exists() {
            let ring = Keyring::load(path).unwrap();
            assert!(ring.fingerprints().len() >= 3, "{:?}", ring.fingerprints());
        }
    }
}
