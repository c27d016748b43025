//! Verifying an `InRelease` clearsigned file against an OpenPGP keyring.
//!
//! The validity rules are not ours: Sequoia's `StandardPolicy`, the policy
//! apt applies through `sqv`, decides which hash and public-key algorithms
//! are still acceptable (SHA-1 data signatures are not), whether a key was
//! properly bound, alive and unrevoked when it signed. On top of it a key
//! must still be alive and unrevoked now, as gpgv's `EXPKEYSIG` makes apt
//! refuse an archive whose key has expired.
//!
//! Only the text covered by a good signature is ever returned, so a caller
//! cannot accidentally parse bytes an attacker added around it.

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::KeyHandle;
use openpgp::cert::amalgamation::ValidAmalgamation;
use openpgp::cert::{Cert, CertParser};
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    MessageLayer, MessageStructure, VerificationError, VerificationHelper, VerifierBuilder,
};
use openpgp::policy::StandardPolicy;
use openpgp::types::RevocationStatus;

/// The largest `InRelease` accepted: Debian's are under 200 KiB.
const MAX_SIGNED: usize = 16 << 20;

/// The public keys of a keyring file such as `debian-archive-keyring.gpg`.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<Cert>,
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
        "no signature verifies against keyring {keyring} (signed by {}){}",
        if issuers.is_empty() { "an unnamed key".to_string() } else { issuers.join(", ") },
        if reasons.is_empty() { String::new() } else { format!(": {}", reasons.join("; ")) }
    )]
    NoGoodSignature {
        keyring: String,
        /// Issuer fingerprints (or key ids) named by the signatures.
        issuers: Vec<String>,
        /// Why each signature by a key of the keyring was refused (a weak
        /// hash, an expired or revoked key, bytes that do not match).
        reasons: Vec<String>,
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
        const ARMOR: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
        let mut keys: Vec<Cert> = Vec::new();
        let mut errors = Vec::new();
        let mut add = |parsed: openpgp::Result<CertParser>| match parsed {
            Ok(parser) => {
                for cert in parser {
                    match cert {
                        Ok(c) if keys.iter().any(|k| k.fingerprint() == c.fingerprint()) => {}
                        Ok(c) => keys.push(c),
                        Err(e) => errors.push(format!("{e:#}")),
                    }
                }
            }
            Err(e) => errors.push(format!("{e:#}")),
        };
        // An armor reader stops at its block's end; `.asc` files may hold several.
        let blocks: Vec<usize> = bytes
            .windows(ARMOR.len())
            .enumerate()
            .filter(|(_, w)| *w == ARMOR)
            .map(|(i, _)| i)
            .collect();
        if blocks.is_empty() {
            add(CertParser::from_bytes(bytes));
        }
        for start in blocks {
            add(CertParser::from_bytes(&bytes[start..]));
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
        self.keys.iter().map(|k| k.fingerprint().to_hex()).collect()
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Verifies a clearsigned message (an `InRelease`) and returns its signed
/// text when at least one signature is good for a key of `keyring` under
/// Sequoia's standard policy, by a key alive and unrevoked both when it
/// signed and now. Other signatures on the same message (keys we do not
/// hold) are ignored, as apt does; the reasons the others were refused are
/// in the error.
pub fn verify_clearsigned(data: &[u8], keyring: &Keyring) -> Result<Verified, SignatureError> {
    verify_clearsigned_at(data, keyring, SystemTime::now())
}

/// [`verify_clearsigned`] as of `now`.
pub fn verify_clearsigned_at(
    data: &[u8],
    keyring: &Keyring,
    now: SystemTime,
) -> Result<Verified, SignatureError> {
    const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
    const END: &str = "-----END PGP SIGNATURE-----";
    let text =
        std::str::from_utf8(data).map_err(|e| SignatureError::NotClearsigned(e.to_string()))?;
    let Some(begin) = text.find(BEGIN) else {
        return Err(SignatureError::Unsigned);
    };
    // Bytes around the signed message are never read by anyone; refusing
    // them keeps a reader of the raw file from being misled.
    if !text[..begin].trim().is_empty() {
        return Err(SignatureError::NotClearsigned(
            "text before the signed message".into(),
        ));
    }
    match text.rfind(END) {
        Some(end) if text[end + END.len()..].trim().is_empty() => {}
        Some(_) => {
            return Err(SignatureError::NotClearsigned(
                "text after the signature".into(),
            ));
        }
        None => return Err(SignatureError::NotClearsigned("no signature block".into())),
    }
    let policy = StandardPolicy::at(now);
    let mut outcome = Outcome::default();
    let helper = Helper {
        keyring,
        policy: &policy,
        now,
        outcome: &mut outcome,
    };
    let verified = VerifierBuilder::from_bytes(data)
        .and_then(|b| b.with_policy(&policy, Some(now), helper))
        .and_then(|mut verifier| {
            let mut signed = Vec::new();
            (&mut verifier)
                .take(MAX_SIGNED as u64 + 1)
                .read_to_end(&mut signed)?;
            Ok(signed)
        });
    let failed = |outcome: Outcome| {
        let mut issuers = outcome.issuers;
        issuers.sort();
        issuers.dedup();
        SignatureError::NoGoodSignature {
            keyring: keyring.source.clone(),
            issuers,
            reasons: outcome.reasons,
        }
    };
    match verified {
        Ok(signed) => {
            if signed.len() > MAX_SIGNED {
                return Err(SignatureError::NotClearsigned(format!(
                    "the signed text is larger than {MAX_SIGNED} bytes"
                )));
            }
            let Some((signer, primary)) = outcome.good.take() else {
                return Err(failed(outcome));
            };
            let text = String::from_utf8(signed)
                .map_err(|e| SignatureError::NotClearsigned(e.to_string()))?;
            Ok(Verified {
                text: text.replace("\r\n", "\n"),
                signer,
                primary,
            })
        }
        // The helper saw the signatures: it is a verdict on them.
        Err(_) if outcome.checked => Err(failed(outcome)),
        Err(e) => Err(SignatureError::NotClearsigned(format!("{e:#}"))),
    }
}

#[derive(Default)]
struct Outcome {
    /// The signer's and its primary key's fingerprints.
    good: Option<(String, String)>,
    issuers: Vec<String>,
    reasons: Vec<String>,
    /// Whether the signatures were looked at (the message parsed).
    checked: bool,
}

struct Helper<'a> {
    keyring: &'a Keyring,
    policy: &'a StandardPolicy<'a>,
    now: SystemTime,
    outcome: &'a mut Outcome,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .keyring
            .keys
            .iter()
            .filter(|c| {
                c.keys()
                    .any(|k| ids.iter().any(|id| id.aliases(k.key().key_handle())))
            })
            .cloned()
            .collect())
    }

    fn inspect(&mut self, _pp: &openpgp::parse::PacketParser<'_>) -> openpgp::Result<()> {
        Ok(())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        self.outcome.checked = true;
        for layer in structure {
            let MessageLayer::SignatureGroup { results } = layer else {
                continue;
            };
            for result in results {
                match result {
                    Ok(good) => {
                        let signer = good.ka.key().fingerprint();
                        let primary = good.ka.cert().fingerprint();
                        self.outcome.issuers.push(signer.to_hex());
                        match alive_now(good.ka.cert(), &signer, self.policy, self.now) {
                            Ok(()) if self.outcome.good.is_none() => {
                                self.outcome.good = Some((signer.to_hex(), primary.to_hex()));
                            }
                            Ok(()) => {}
                            Err(why) => self.outcome.reasons.push(why),
                        }
                    }
                    Err(e) => {
                        if let VerificationError::MissingKey { sig }
                        | VerificationError::UnboundKey { sig, .. }
                        | VerificationError::BadKey { sig, .. }
                        | VerificationError::BadSignature { sig, .. }
                        | VerificationError::MalformedSignature { sig, .. } = &e
                        {
                            self.outcome
                                .issuers
                                .extend(sig.get_issuers().iter().map(KeyHandle::to_hex));
                        }
                        // A key we do not hold is not a reason: it is the
                        // issuer list.
                        if !matches!(e, VerificationError::MissingKey { .. }) {
                            self.outcome.reasons.push(reason(&e));
                        }
                    }
                }
            }
        }
        if self.outcome.good.is_some() {
            Ok(())
        } else {
            Err(openpgp::Error::BadSignature("no good signature".into()).into())
        }
    }
}

/// A verification error with its whole chain (the policy's reason is the
/// innermost part: "SHA1 is not considered secure since …").
fn reason(e: &VerificationError<'_>) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

/// Whether the key `signer` of `cert` is still valid under `policy` at
/// `now`: bound, alive and unrevoked, as is its certificate.
fn alive_now(
    cert: &Cert,
    signer: &openpgp::Fingerprint,
    policy: &StandardPolicy<'_>,
    now: SystemTime,
) -> Result<(), String> {
    let name = cert.fingerprint().to_hex();
    let valid = cert
        .with_policy(policy, now)
        .map_err(|e| format!("key {name} is not valid now: {e:#}"))?;
    if let RevocationStatus::Revoked(_) = valid.revocation_status() {
        return Err(format!("key {name} is revoked"));
    }
    valid
        .alive()
        .map_err(|e| format!("key {name} has expired: {e:#}"))?;
    let key = valid
        .keys()
        .key_handle(signer.clone())
        .next()
        .ok_or_else(|| format!("subkey {} of {name} is no longer bound", signer.to_hex()))?;
    if let RevocationStatus::Revoked(_) = key.revocation_status() {
        return Err(format!("subkey {} of {name} is revoked", signer.to_hex()));
    }
    key.alive()
        .map_err(|e| format!("subkey {} of {name} has expired: {e:#}", signer.to_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgp::composed::CleartextSignedMessage;
    use pgp::composed::{
        EncryptionCaps, KeyType, SecretKeyParamsBuilder, SignedSecretKey, SubkeyParamsBuilder,
    };
    use pgp::types::KeyDetails;
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
    fn the_debian_archive_keyring_loads() {
        // scripts/install-deps installs it; a machine without it fails here
        // rather than passing without having checked anything.
        let path = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
        let ring = Keyring::load(path)
            .unwrap_or_else(|e| panic!("{e}\nhint: apt-get install debian-archive-keyring"));
        assert!(ring.fingerprints().len() >= 3, "{:?}", ring.fingerprints());
    }

    mod policy {
        use super::super::*;
        use openpgp::cert::CertBuilder;
        use openpgp::packet::signature::SignatureBuilder;
        use openpgp::serialize::SerializeInto;
        use openpgp::serialize::stream::{Message, Signer};
        use openpgp::types::{HashAlgorithm, ReasonForRevocation, SignatureType};
        use std::io::Write;
        use std::time::Duration;

        const TEXT: &str = "Suite: testing\nDate: Sat, 10 May 2025 08:52:37 UTC\n";
        const DAY: Duration = Duration::from_secs(86_400);

        fn cert(created: SystemTime, validity: Option<Duration>) -> Cert {
            CertBuilder::new()
                .add_userid("archive")
                .add_signing_subkey()
                .set_creation_time(created)
                .set_validity_period(validity)
                .generate()
                .unwrap()
                .0
        }

        fn clearsign(cert: &Cert, hash: HashAlgorithm, at: SystemTime) -> Vec<u8> {
            let p = StandardPolicy::at(at);
            let key = cert
                .keys()
                .subkeys()
                .with_policy(&p, at)
                .secret()
                .for_signing()
                .next()
                .unwrap()
                .key()
                .clone()
                .into_keypair()
                .unwrap();
            let mut out = Vec::new();
            let mut signer = Signer::with_template(
                Message::new(&mut out),
                key,
                SignatureBuilder::new(SignatureType::Text),
            )
            .unwrap()
            .hash_algo(hash)
            .unwrap()
            .creation_time(at)
            .cleartext()
            .build()
            .unwrap();
            signer.write_all(TEXT.as_bytes()).unwrap();
            signer.finalize().unwrap();
            out
        }

        fn ring(cert: &Cert) -> Keyring {
            Keyring::from_bytes(&cert.to_vec().unwrap(), "policy.gpg").unwrap()
        }

        #[test]
        fn a_sha256_signature_by_a_live_key_verifies() {
            let now = SystemTime::now();
            let c = cert(now - DAY, None);
            let v =
                verify_clearsigned(&clearsign(&c, HashAlgorithm::SHA256, now), &ring(&c)).unwrap();
            assert_eq!(v.text, TEXT);
            assert_eq!(v.primary, c.fingerprint().to_hex());
            assert_ne!(v.signer, v.primary);
        }

        #[test]
        fn a_sha1_signature_is_refused_naming_the_hash() {
            let now = SystemTime::now();
            let c = cert(now - DAY, None);
            let err = verify_clearsigned(&clearsign(&c, HashAlgorithm::SHA1, now), &ring(&c))
                .unwrap_err();
            assert!(
                matches!(err, SignatureError::NoGoodSignature { .. }),
                "{err}"
            );
            assert!(err.to_string().contains("SHA1"), "{err}");
        }

        #[test]
        fn a_key_expired_since_it_signed_is_refused() {
            let now = SystemTime::now();
            let c = cert(now - 10 * DAY, Some(2 * DAY));
            // Signed while the key was alive: good then, refused now.
            let signed = clearsign(&c, HashAlgorithm::SHA256, now - 9 * DAY);
            assert!(verify_clearsigned_at(&signed, &ring(&c), now - 9 * DAY).is_ok());
            let err = verify_clearsigned(&signed, &ring(&c)).unwrap_err();
            assert!(err.to_string().contains("expired"), "{err}");
        }

        #[test]
        fn a_revoked_key_is_refused() {
            let now = SystemTime::now();
            let c = cert(now - DAY, None);
            let signed = clearsign(&c, HashAlgorithm::SHA256, now - DAY / 2);
            let mut primary = c
                .primary_key()
                .key()
                .clone()
                .parts_into_secret()
                .unwrap()
                .into_keypair()
                .unwrap();
            let rev = c
                .revoke(&mut primary, ReasonForRevocation::KeyCompromised, b"lost")
                .unwrap();
            let revoked = c.insert_packets(rev).unwrap().0;
            let err = verify_clearsigned(&signed, &ring(&revoked)).unwrap_err();
            assert!(err.to_string().contains("revoked"), "{err}");
        }

        /// Damaged InRelease files and keyrings: refused (or, when the damage
        /// is outside what the signature covers, the signed text exactly),
        /// never a panic.
        #[test]
        fn damaged_inreleases_and_keyrings_never_panic() {
            use proptest::prelude::*;
            let now = SystemTime::now();
            let c = cert(now - DAY, None);
            let ring = ring(&c);
            let signed = clearsign(&c, HashAlgorithm::SHA256, now);
            let mut runner =
                proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
            let flips = prop::collection::vec((any::<usize>(), any::<u8>()), 1..12);
            runner
                .run(&flips, |flips| {
                    let mut bytes = signed.clone();
                    for (at, b) in flips {
                        let at = at % bytes.len();
                        bytes[at] = b;
                    }
                    match verify_clearsigned(&bytes, &ring) {
                        Ok(v) => prop_assert_eq!(v.text, TEXT),
                        Err(e) => prop_assert!(!e.to_string().is_empty()),
                    }
                    Ok(())
                })
                .unwrap();
            runner
                .run(&prop::collection::vec(any::<u8>(), 0..4096), |bytes| {
                    if let Err(e) = Keyring::from_bytes(&bytes, "junk.gpg") {
                        prop_assert!(e.to_string().contains("junk.gpg"));
                    }
                    Ok(())
                })
                .unwrap();
        }
    }
}
