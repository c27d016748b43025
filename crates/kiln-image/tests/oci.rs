//! Layers as gzip blobs, OCI layouts and archives: reproducible to the
//! byte, readable back, and (in the `tool_` tests) accepted by skopeo and
//! umoci from Debian's archive.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use kiln_deb::Architecture;
use kiln_image::{
    Attachment, ImageError, ImageMeta, Layer, LayerInput, LayerSource, TarOptions,
    image_manifest_digest, read_oci_layout, write_layer, write_oci_archive, write_oci_layout,
};
use kiln_store::Digest;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    parent: PathBuf,
    child: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let parent = dir.join("parent");
    let child = dir.join("child");
    std::fs::create_dir(&parent).unwrap();
    std::fs::create_dir(&child).unwrap();
    base_tree(&parent);
    base_tree(&child);
    file(&child, "etc/hostname", b"web\n", 0o644);
    dir_with(&child, "srv/www", "index.html", b"<p>hi</p>\n");
    std::fs::remove_dir_all(child.join("var/lib/gone")).unwrap();
    touch_all(&child, SDE + 2000);
    Fixture {
        _tmp: tmp,
        dir,
        parent,
        child,
    }
}

fn dir_with(root: &Path, d: &str, name: &str, content: &[u8]) {
    dir(root, d, 0o755);
    file(root, &format!("{d}/{name}"), content, 0o644);
}

fn store(f: &Fixture, name: &str) -> PathBuf {
    let store = f.dir.join(name);
    std::fs::create_dir_all(&store).unwrap();
    store
}

/// The base layer and the child's diff layer, written into `store`.
fn layers(f: &Fixture, store: &Path) -> (Layer, Layer) {
    let opts = TarOptions::new(SDE);
    let base = write_layer(LayerSource::Tree(&f.parent), &opts, store).unwrap();
    let diff = write_layer(
        LayerSource::Diff {
            parent: &f.parent,
            child: &f.child,
        },
        &opts,
        store,
    )
    .unwrap();
    (base, diff)
}

fn inputs(base: &Layer, diff: &Layer) -> Vec<LayerInput> {
    vec![
        LayerInput {
            layer: base.clone(),
            created: SDE - 86_400,
            created_by: "kiln build base 1.0.0".to_string(),
            comment: None,
        },
        LayerInput {
            layer: diff.clone(),
            created: SDE,
            created_by: "kiln build web 2.1.0".to_string(),
            comment: Some("nginx and the site".to_string()),
        },
    ]
}

fn meta() -> ImageMeta {
    let mut meta = ImageMeta::new("web", "2.1.0", SDE, Architecture::Amd64);
    meta.cmd = Some(vec!["/bin/sh".to_string()]);
    meta.labels
        .insert("org.example.team".to_string(), "platform".to_string());
    meta
}

/// Every file under `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn a_layer_blob_is_the_gzipped_tar_named_by_its_digest() {
    let f = fixture();
    let store = store(&f, "store");
    let (base, diff) = layers(&f, &store);
    for layer in [&base, &diff] {
        let blob = std::fs::read(&layer.path).unwrap();
        assert_eq!(layer.path, store.join(layer.digest.hex()));
        assert_eq!(
            (Digest::of(&blob), blob.len() as u64),
            (layer.digest, layer.size)
        );
        let tar = gunzip(&layer.path);
        assert_eq!(
            (Digest::of(&tar), tar.len() as u64),
            (layer.diff_id, layer.uncompressed_size)
        );
        // gzip header: deflate, no flags (no name), mtime 0, OS unknown.
        assert_eq!(&blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    }
    assert!(gunzip(&base.path) == tar_of(&f.parent));
    // Nothing but the two blobs: no temporary files left behind.
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 2);
}

#[test]
fn layers_are_reproducible_across_stores_and_mtimes() {
    let f = fixture();
    let (a, _) = layers(&f, &store(&f, "one"));
    touch_all(&f.parent, SDE + 777_777);
    let (b, _) = layers(&f, &store(&f, "two"));
    assert_eq!((a.digest, a.diff_id), (b.digest, b.diff_id));
    assert!(std::fs::read(&a.path).unwrap() == std::fs::read(&b.path).unwrap());
}

#[test]
fn a_tar_source_compresses_to_the_same_layer() {
    let f = fixture();
    let tar = f.dir.join("parent.tar");
    std::fs::write(&tar, tar_of(&f.parent)).unwrap();
    let opts = TarOptions::new(SDE);
    let from_tree = write_layer(LayerSource::Tree(&f.parent), &opts, &store(&f, "a")).unwrap();
    let from_tar = write_layer(LayerSource::Tar(&tar), &opts, &store(&f, "b")).unwrap();
    assert_eq!(
        (from_tree.digest, from_tree.diff_id),
        (from_tar.digest, from_tar.diff_id)
    );
}

#[test]
fn a_failed_layer_leaves_nothing_behind() {
    let f = fixture();
    let store = store(&f, "store");
    file(&f.child, "etc/.wh.oops", b"", 0o644);
    let err = write_layer(
        LayerSource::Diff {
            parent: &f.parent,
            child: &f.child,
        },
        &TarOptions::new(SDE),
        &store,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::WhiteoutName { .. }), "{err}");
    let err = write_layer(
        LayerSource::Tree(&f.dir.join("missing")),
        &TarOptions::new(SDE),
        &store,
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
}

#[test]
fn a_layout_written_twice_is_the_same_bytes_and_reads_back() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let one = f.dir.join("oci-one");
    let two = f.dir.join("oci-two");
    let info = write_oci_layout(&inputs(&base, &diff), &meta(), &one).unwrap();
    // Layers re-made in another store, then the layout: same bytes.
    let (base2, diff2) = layers(&f, &store(&f, "store2"));
    let info2 = write_oci_layout(&inputs(&base2, &diff2), &meta(), &two).unwrap();
    assert_eq!(info, info2);
    let (a, b) = (files(&one), files(&two));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(*bytes == b[path], "{path:?} differs");
    }
    // oci-layout, index.json, config, manifest, two layers.
    assert_eq!(a.len(), 6);
    // Writing again over an existing layout replaces it.
    assert_eq!(
        write_oci_layout(&inputs(&base, &diff), &meta(), &one).unwrap(),
        info
    );

    let read = read_oci_layout(&one).unwrap();
    assert_eq!(read, vec![info.clone()]);
    assert_eq!(info.ref_name.as_deref(), Some("2.1.0"));
    assert_eq!(info.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    let digests: Vec<_> = info
        .layers
        .iter()
        .map(|l| (l.digest, l.size, l.diff_id))
        .collect();
    assert_eq!(
        digests,
        vec![
            (base.digest, base.size, base.diff_id),
            (diff.digest, diff.size, diff.diff_id)
        ]
    );
}

fn with_documents() -> ImageMeta {
    let mut meta = meta();
    meta.attachments = vec![
        Attachment {
            media_type: "application/spdx+json".to_string(),
            bytes: br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
        },
        Attachment {
            media_type: "application/vnd.in-toto+json".to_string(),
            bytes: br#"{"_type":"https://in-toto.io/Statement/v1"}"#.to_vec(),
        },
    ];
    meta
}

#[test]
fn documents_are_referrers_whose_subject_is_the_image() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci");
    let plain = write_oci_layout(&inputs(&base, &diff), &meta(), &f.dir.join("plain")).unwrap();
    let info = write_oci_layout(&inputs(&base, &diff), &with_documents(), &out).unwrap();
    // Attaching documents leaves the image itself as it was, and its digest
    // is known before anything is written.
    assert_eq!(info.manifest, plain.manifest);
    let (digest, size) = image_manifest_digest(&inputs(&base, &diff), &with_documents()).unwrap();
    assert_eq!((digest, size), (info.manifest, info.manifest_size));
    assert_eq!(read_oci_layout(&out).unwrap(), vec![info.clone()]);
    let kinds: Vec<&str> = info.referrers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );

    // index.json names one image index: the image for linux/amd64, and the
    // referrers on a platform nothing selects.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let top = index["manifests"].as_array().unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(
        top[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        top[0]["annotations"]["org.opencontainers.image.ref.name"],
        "2.1.0"
    );
    assert_eq!(top[0]["digest"], info.index.unwrap().to_string());
    let nested: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("blobs/sha256").join(info.index.unwrap().hex())).unwrap(),
    )
    .unwrap();
    let platforms: Vec<String> = nested["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "unknown/unknown", "unknown/unknown"]
    );
    assert_eq!(nested["manifests"][0]["digest"], info.manifest.to_string());
    for (kind, digest) in &info.referrers {
        let path = out.join("blobs/sha256").join(digest.hex());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(Digest::of(&bytes), *digest);
        let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m["artifactType"], kind.as_str());
        assert_eq!(m["subject"]["digest"], info.manifest.to_string());
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        let blob = m["layers"][0]["digest"].as_str().unwrap();
        let doc = std::fs::read(out.join("blobs/sha256").join(&blob[7..])).unwrap();
        assert!(with_documents().attachments.iter().any(|a| a.bytes == doc));
    }
    // And the same inputs give the same bytes.
    let again = f.dir.join("again");
    write_oci_layout(&inputs(&base, &diff), &with_documents(), &again).unwrap();
    assert_eq!(files(&out), files(&again));
}

#[test]
fn the_config_and_manifest_say_what_oci_expects() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci");
    let info = write_oci_layout(&inputs(&base, &diff), &meta(), &out).unwrap();
    let json = |d: &Digest| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join("blobs/sha256").join(d.hex())).unwrap())
            .unwrap()
    };
    let config = json(&info.config);
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["config"]["Env"][0], kiln_image::DEFAULT_PATH);
    assert_eq!(config["config"]["Cmd"][0], "/bin/sh");
    assert_eq!(config["config"]["Labels"]["org.example.team"], "platform");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.version"],
        "2.1.0"
    );
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["rootfs"]["diff_ids"][0], base.diff_id.to_string());
    assert_eq!(config["rootfs"]["diff_ids"][1], diff.diff_id.to_string());
    assert_eq!(config["history"][0]["created"], "2023-11-13T22:13:20Z");
    assert_eq!(config["history"][1]["comment"], "nginx and the site");

    let manifest = json(&info.manifest);
    assert_eq!(manifest["mediaType"], kiln_image::MEDIA_TYPE_MANIFEST);
    assert_eq!(manifest["layers"][1]["digest"], diff.digest.to_string());
    assert_eq!(
        manifest["layers"][1]["mediaType"],
        kiln_image::MEDIA_TYPE_LAYER_GZIP
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"],
        "web"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );

    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], info.manifest.to_string());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "2.1.0"
    );
}

#[test]
fn a_child_image_shares_its_parents_layer_blob() {
    let f = fixture();
    let store = store(&f, "store");
    let (base, diff) = layers(&f, &store);
    let all = inputs(&base, &diff);
    let parent_img = f.dir.join("base-oci");
    let child_img = f.dir.join("web-oci");
    let p = write_oci_layout(
        &all[..1],
        &ImageMeta::new("base", "1.0.0", SDE - 86_400, Architecture::Amd64),
        &parent_img,
    )
    .unwrap();
    let c = write_oci_layout(&all, &meta(), &child_img).unwrap();
    assert_eq!(p.layers[0], c.layers[0]);
    let blob =
        |dir: &Path| std::fs::read(dir.join("blobs/sha256").join(base.digest.hex())).unwrap();
    assert!(blob(&parent_img) == blob(&child_img));
}

#[test]
fn a_directory_that_is_not_a_layout_is_never_replaced() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let precious = f.dir.join("precious");
    std::fs::create_dir(&precious).unwrap();
    file(&precious, "thesis.tex", b"years of work", 0o644);
    let err = write_oci_layout(&inputs(&base, &diff), &meta(), &precious).unwrap_err();
    assert!(matches!(err, ImageError::BadLayout { .. }), "{err}");
    assert_eq!(
        std::fs::read(precious.join("thesis.tex")).unwrap(),
        b"years of work"
    );
    // And no temporary directory is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(&f.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
}

#[test]
fn a_tampered_manifest_is_caught_when_read() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci");
    let info = write_oci_layout(&inputs(&base, &diff), &meta(), &out).unwrap();
    let path = out.join("blobs/sha256").join(info.manifest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let err = read_oci_layout(&out).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn the_oci_archive_is_reproducible_and_plain() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let one = f.dir.join("oci-one");
    let two = f.dir.join("oci-two");
    write_oci_layout(&inputs(&base, &diff), &meta(), &one).unwrap();
    write_oci_layout(&inputs(&base, &diff), &meta(), &two).unwrap();
    let a = write_oci_archive(&one, &f.dir.join("one.tar"), None).unwrap();
    let b = write_oci_archive(&two, &f.dir.join("two.tar"), None).unwrap();
    assert_eq!(a, b);
    let bytes = std::fs::read(f.dir.join("one.tar")).unwrap();
    assert_eq!(Digest::of(&bytes), a);
    let listed = list(&bytes);
    let paths: Vec<&str> = listed.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(&paths[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(&paths[paths.len() - 2..], ["index.json", "oci-layout"]);
    for l in &listed {
        assert_eq!((l.uid, l.gid, l.mtime), (0, 0, 0), "{}", l.path);
        assert!(matches!(
            l.kind,
            tar::EntryType::Regular | tar::EntryType::Directory
        ));
    }
}

// --- Real clients: skopeo and umoci from Debian's archive. ---

/// `skopeo inspect` of an image reference, as JSON.
fn skopeo_inspect(image: &str) -> serde_json::Value {
    serde_json::from_str(&run(Command::new("skopeo").args(["inspect", image]))).unwrap()
}

fn layer_digests(inspect: &serde_json::Value) -> Vec<String> {
    inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tool_skopeo_inspects_and_copies_the_layout() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci");
    let info = write_oci_layout(&inputs(&base, &diff), &meta(), &out).unwrap();
    let image = format!("oci:{}:2.1.0", out.display());
    let inspect = skopeo_inspect(&image);
    assert_eq!(
        layer_digests(&inspect),
        [base.digest.to_string(), diff.digest.to_string()]
    );
    assert_eq!(inspect["Digest"], info.manifest.to_string());
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Created"], "2023-11-14T22:13:20Z");

    let copy = f.dir.join("copy");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        &image,
        &format!("oci:{}:2.1.0", copy.display()),
    ]));
    // skopeo keeps our manifest and blobs as they are.
    assert_eq!(read_oci_layout(&copy).unwrap(), vec![info]);
}

#[test]
fn tool_skopeo_reads_a_layout_with_referrers() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci");
    let info = write_oci_layout(&inputs(&base, &diff), &with_documents(), &out).unwrap();
    let image = format!("oci:{}:2.1.0", out.display());
    let inspect = skopeo_inspect(&image);
    assert_eq!(
        layer_digests(&inspect),
        [base.digest.to_string(), diff.digest.to_string()]
    );
    // The archive names no image, as users load it: one image is found.
    let archive = f.dir.join("oci.tar");
    write_oci_archive(&out, &archive, None).unwrap();
    let inspect = skopeo_inspect(&format!("oci-archive:{}", archive.display()));
    assert_eq!(
        layer_digests(&inspect),
        [base.digest.to_string(), diff.digest.to_string()]
    );
    // skopeo copies the image with its referrers.
    let copy = f.dir.join("copy");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--all",
        &image,
        &format!("oci:{}:2.1.0", copy.display()),
    ]));
    let copied = read_oci_layout(&copy).unwrap();
    assert_eq!(copied.len(), 1);
    assert_eq!(copied[0].manifest, info.manifest);
    assert_eq!(copied[0].referrers, info.referrers);
}

#[test]
fn tool_umoci_unpacks_the_child_tree() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci");
    write_oci_layout(&inputs(&base, &diff), &meta(), &out).unwrap();
    let bundle = f.dir.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:2.1.0", out.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        xattr::get(rootfs.join("bin/ping"), "security.capability").unwrap(),
        Some(CAP_NET_RAW.to_vec())
    );
    assert!(!rootfs.join("var/lib/gone").exists());
    assert!(
        tar_of(&rootfs) == tar_of(&f.child),
        "umoci's rootfs differs from the child tree"
    );
}

#[test]
fn tool_skopeo_reads_the_oci_archive() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci");
    let info = write_oci_layout(&inputs(&base, &diff), &meta(), &out).unwrap();
    let archive = f.dir.join("web.tar");
    write_oci_archive(&out, &archive, None).unwrap();
    let inspect = skopeo_inspect(&format!("oci-archive:{}", archive.display()));
    assert_eq!(
        layer_digests(&inspect),
        [base.digest.to_string(), diff.digest.to_string()]
    );
    assert_eq!(inspect["Digest"], info.manifest.to_string());
}

/// The archive carries `NAME:VERSION` as its image's ref name, which
/// podman load names the image by (containers/image reads the same field);
/// the layout directory keeps the bare version `oci:DIR:VERSION` selects.
#[test]
fn tool_an_archive_names_its_image_as_container_tools_load_it() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci");
    let info = write_oci_layout(&inputs(&base, &diff), &with_documents(), &out).unwrap();
    let archive = f.dir.join("web-2.1.0.oci.tar");
    write_oci_archive(&out, &archive, Some("web:2.1.0")).unwrap();
    let listed = Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("index.json")
        .output()
        .unwrap();
    assert!(listed.status.success());
    let index: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let name = "org.opencontainers.image.ref.name";
    assert_eq!(index["manifests"][0]["annotations"][name], "web:2.1.0");
    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(layout["manifests"][0]["annotations"][name], "2.1.0");
    // Selected by that name, and as the only image; the layout by version.
    let layers_of = |r: &str| layer_digests(&skopeo_inspect(r));
    let want = [base.digest.to_string(), diff.digest.to_string()];
    assert_eq!(
        layers_of(&format!("oci-archive:{}:web:2.1.0", archive.display())),
        want
    );
    assert_eq!(
        layers_of(&format!("oci-archive:{}", archive.display())),
        want
    );
    assert_eq!(layers_of(&format!("oci:{}:2.1.0", out.display())), want);
    assert_eq!(read_oci_layout(&out).unwrap(), vec![info]);
}

/// `podman load -i web-2.1.0.oci.tar` names the image `web:2.1.0` (podman
/// puts short names under `localhost/`), with the archive's layers. podman
/// runs without a daemon, on its own storage under target/tmp (vfs: no
/// overlay mount needed).
#[test]
fn tool_podman_loads_the_archive_as_name_and_version() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci");
    write_oci_layout(&inputs(&base, &diff), &meta(), &out).unwrap();
    let archive = f.dir.join("web-2.1.0.oci.tar");
    write_oci_archive(&out, &archive, Some("web:2.1.0")).unwrap();
    let storage = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let podman = |args: &[&str]| {
        let s = storage.path();
        run(Command::new("podman")
            .arg("--root")
            .arg(s.join("root"))
            .arg("--runroot")
            .arg(s.join("run"))
            .arg("--tmpdir")
            .arg(s.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .env("XDG_RUNTIME_DIR", s.join("xdg"))
            .args(args))
    };
    let loaded = podman(&["load", "-i", &archive.to_string_lossy()]);
    assert!(loaded.contains("localhost/web:2.1.0"), "{loaded}");
    let names = podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(names.lines().collect::<Vec<_>>(), ["localhost/web:2.1.0"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&podman(&["image", "inspect", "web:2.1.0"])).unwrap();
    let layers = inspect[0]["RootFS"]["Layers"].as_array().unwrap().len();
    assert_eq!(layers, 2, "{inspect}");
}

/// out/ holds copies: a byte flipped in an output blob leaves the store's
/// layer alone, and the next layout written is the clean one again. A
/// byte flipped in the store's blob is caught while it is copied.
#[test]
fn an_edited_output_blob_never_reaches_the_store() {
    let f = fixture();
    let (base, diff) = layers(&f, &store(&f, "store"));
    let out = f.dir.join("oci-out");
    let info = write_oci_layout(&inputs(&base, &diff), &meta(), &out).unwrap();
    let clean = files(&out);
    let stored = fs_err::read(&base.path).unwrap();
    let blob = out.join("blobs/sha256").join(base.digest.hex());
    let mut bytes = fs_err::read(&blob).unwrap();
    bytes[10] ^= 0xff;
    fs_err::write(&blob, &bytes).unwrap();
    assert_eq!(
        fs_err::read(&base.path).unwrap(),
        stored,
        "the store changed"
    );
    assert_eq!(
        write_oci_layout(&inputs(&base, &diff), &meta(), &out).unwrap(),
        info
    );
    assert_eq!(files(&out), clean);

    let mut flipped = stored.clone();
    flipped[10] ^= 0xff;
    fs_err::write(&base.path, &flipped).unwrap();
    let err = write_oci_layout(&inputs(&base, &diff), &meta(), &f.dir.join("oci-bad"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&base.digest.hex()) || err.contains("digest"),
        "{err}"
    );
}
