//! Signed `file://` archives for tests (feature `fixtures`): a throwaway
//! OpenPGP key and a writer of `dists/<suite>/` trees laid out as Debian's.
//! Test support only: failures panic with the reason.

use std::io::Write;
use std::path::Path;

use kiln_store::Digest;
use pgp::composed::{
    CleartextSignedMessage, EncryptionCaps, KeyType, SecretKeyParamsBuilder, SignedSecretKey,
    SubkeyParamsBuilder,
};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password};

/// A throwaway archive key: a certify-only primary key and a signing
/// subkey, as Debian's archive keys are made.
pub struct TestKey {
    secret: SignedSecretKey,
}

impl TestKey {
    pub fn generate(uid: &str) -> TestKey {
        let mut sub = SubkeyParamsBuilder::default();
        sub.key_type(KeyType::Ed25519Legacy)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None);
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(false)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id(uid.into())
            .subkeys(vec![sub.build().expect("subkey parameters")]);
        let secret = params
            .build()
            .expect("key parameters")
            .generate(rand::thread_rng())
            .expect("key generation");
        TestKey { secret }
    }

    /// The public key as a binary keyring, like `debian-archive-keyring.gpg`.
    pub fn keyring(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.secret
            .to_public_key()
            .to_writer(&mut out)
            .expect("serialising a public key");
        out
    }

    /// Uppercase hex fingerprint of the primary key.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.secret.fingerprint())
    }

    /// Uppercase hex fingerprint of the subkey that signs.
    pub fn signing_fingerprint(&self) -> String {
        format!("{:X}", self.secret.secret_subkeys[0].key.fingerprint())
    }

    /// `text` clearsigned by the signing subkey, as an `InRelease` is.
    pub fn clearsign(&self, text: &str) -> String {
        CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &self.secret.secret_subkeys[0].key,
            &Password::empty(),
        )
        .expect("signing")
        .to_armored_string(Default::default())
        .expect("armoring")
    }
}

/// One suite to write. Start from [`SuiteFixture::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct SuiteFixture {
    pub suite: String,
    pub codename: String,
    pub date: String,
    pub valid_until: Option<String>,
    pub arch: String,
    /// `(component, Packages text)`.
    pub packages: Vec<(String, String)>,
    /// Which files to serve, as suffixes of `Packages`: `.xz`, `.gz`, ``.
    /// The uncompressed `Packages` is listed in the Release either way, as
    /// Debian lists it without serving it.
    pub serve: Vec<&'static str>,
    /// Serve indices under `by-hash/SHA256/` too, and say so in the Release.
    pub by_hash: bool,
}

impl SuiteFixture {
    pub fn new(suite: &str, packages_main: &str) -> SuiteFixture {
        SuiteFixture {
            suite: suite.to_string(),
            codename: suite.to_string(),
            date: "Sat, 10 May 2025 08:52:37 UTC".to_string(),
            valid_until: None,
            arch: "amd64".to_string(),
            packages: vec![("main".to_string(), packages_main.to_string())],
            serve: vec![".xz"],
            by_hash: false,
        }
    }

    /// The Release text (unsigned), listing every index with its digest.
    pub fn release_text(&self) -> String {
        let mut text = format!(
            "Origin: kiln-test\nLabel: kiln-test\nSuite: {}\nCodename: {}\nDate: {}\n",
            self.suite, self.codename, self.date
        );
        if let Some(v) = &self.valid_until {
            text += &format!("Valid-Until: {v}\n");
        }
        if self.by_hash {
            text += "Acquire-By-Hash: yes\n";
        }
        let components: Vec<&str> = self.packages.iter().map(|(c, _)| c.as_str()).collect();
        text += &format!(
            "Architectures: {}\nComponents: {}\nSHA256:\n",
            self.arch,
            components.join(" ")
        );
        for (rel, bytes) in self.index_files() {
            text += &format!(" {} {:>8} {rel}\n", Digest::of(&bytes).hex(), bytes.len());
        }
        text
    }

    /// Every index form, listed or served: `(path under dists/<suite>, bytes)`.
    fn index_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for (component, text) in &self.packages {
            let base = format!("{component}/binary-{}/Packages", self.arch);
            out.push((base.clone(), text.as_bytes().to_vec()));
            out.push((format!("{base}.xz"), xz(text.as_bytes())));
            out.push((format!("{base}.gz"), gz(text.as_bytes())));
        }
        out
    }

    /// Writes `dists/<suite>/` under `root`, signed by `key`; returns the
    /// InRelease text.
    pub fn write(&self, root: &Path, key: &TestKey) -> String {
        let dists = root.join("dists").join(&self.suite);
        for (rel, bytes) in self.index_files() {
            let suffix = rel.rsplit_once("Packages").map_or("", |(_, s)| s);
            if !self.serve.contains(&suffix) {
                continue;
            }
            let path = dists.join(&rel);
            write_file(&path, &bytes);
            if self.by_hash {
                let dir = path.parent().expect("index path has a parent");
                write_file(
                    &dir.join("by-hash/SHA256").join(Digest::of(&bytes).hex()),
                    &bytes,
                );
            }
        }
        let inrelease = key.clearsign(&self.release_text());
        write_file(&dists.join("InRelease"), inrelease.as_bytes());
        inrelease
    }
}

fn write_file(path: &Path, bytes: &[u8]) {
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).expect("creating a fixture directory");
    }
    fs_err::write(path, bytes).expect("writing a fixture file");
}

pub fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = xz2::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(bytes).expect("xz in memory");
    enc.finish().expect("xz in memory")
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

/// A `Packages` stanza for a package whose `.deb` is `deb` (any bytes do for
/// index tests), at `pool/main/<name>_<version>_<arch>.deb`.
pub fn stanza(name: &str, version: &str, arch: &str, deb: &[u8]) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nPriority: optional\n\
         Filename: pool/main/{name}_{version}_{arch}.deb\nSize: {}\nSHA256: {}\n",
        deb.len(),
        Digest::of(deb).hex()
    )
}
