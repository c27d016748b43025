//! Measures how fast a tree becomes a tar and a gzip layer blob:
//! `cargo run --release -p kiln-image --example layer_throughput -- ROOTFS [PARENT]`.
//! With PARENT, also times the diff layer of ROOTFS against PARENT.

use std::time::Instant;

use kiln_image::{LayerSource, TarOptions, write_layer, write_tar};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first() else {
        return Err("usage: layer_throughput ROOTFS [PARENT]".into());
    };
    let root = std::path::Path::new(root);
    let opts = TarOptions::new(1_700_000_000);
    let out = tempfile::tempdir()?;
    let mb = |bytes: u64| bytes as f64 / 1e6;

    let start = Instant::now();
    let tar = write_tar(root, &mut std::io::sink(), &opts)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "tar only:   {:.1} MB, {} entries in {secs:.2}s = {:.0} MB/s",
        mb(tar.size),
        tar.entries,
        mb(tar.size) / secs
    );

    let start = Instant::now();
    let layer = write_layer(LayerSource::Tree(root), &opts, out.path())?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "tar+gzip:   {:.1} MB -> {:.1} MB in {secs:.2}s = {:.0} MB/s of tar ({})",
        mb(layer.uncompressed_size),
        mb(layer.size),
        mb(layer.uncompressed_size) / secs,
        layer.digest
    );

    if let Some(parent) = args.get(1) {
        let start = Instant::now();
        let diff = write_layer(
            LayerSource::Diff {
                parent: std::path::Path::new(parent),
                child: root,
            },
            &opts,
            out.path(),
        )?;
        println!(
            "diff layer: {:.1} MB -> {:.1} MB in {:.2}s",
            mb(diff.uncompressed_size),
            mb(diff.size),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
