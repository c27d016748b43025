//! Bakes a rootfs directory into a one-layer OCI layout and archive:
//! `cargo run --release -p kiln-image --example make_oci -- ROOTFS OUT_DIR`,
//! then e.g. `skopeo inspect oci:OUT_DIR/oci:0.1.0`.

use kiln_image::{
    ImageMeta, LayerInput, LayerSource, TarOptions, write_layer, write_oci_archive,
    write_oci_layout,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, out] = args.as_slice() else {
        return Err("usage: make_oci ROOTFS OUT_DIR".into());
    };
    let out = std::path::Path::new(out);
    let sde = 1_700_000_000;
    let blobs = out.join("blobs");
    fs_err::create_dir_all(&blobs)?;
    let layer = write_layer(
        LayerSource::Tree(std::path::Path::new(root)),
        &TarOptions::new(sde),
        &blobs,
    )?;
    let input = LayerInput {
        layer,
        created: sde,
        created_by: "make_oci".to_string(),
        comment: None,
    };
    let info = write_oci_layout(
        &[input],
        &ImageMeta::new("example", "0.1.0", sde, kiln_deb::Architecture::Amd64),
        &out.join("oci"),
    )?;
    let archive = write_oci_archive(&out.join("oci"), &out.join("oci.tar"), None)?;
    println!(
        "manifest {} layer {} archive {archive}",
        info.manifest, info.layers[0].digest
    );
    Ok(())
}
