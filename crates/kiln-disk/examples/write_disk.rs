//! Makes a disk image from a root tree by hand, outside the pipeline:
//! `cargo run -p kiln-disk --example write_disk -- ROOT OUT.raw SIZE DIGEST EPOCH [qcow2|vmdk|vhd]…`

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, out, size, digest, epoch, formats @ ..] = args.as_slice() else {
        return Err("usage: ROOT OUT.raw SIZE DIGEST EPOCH [qcow2|vmdk|vhd]…".into());
    };
    let spec = kiln_disk::DiskSpec {
        size: size.parse()?,
        image_digest: digest.clone(),
        source_date_epoch: epoch.parse()?,
        title: "kiln".into(),
        architecture: kiln_deb::Architecture::Amd64,
        extra_files: Vec::new(),
        extra_links: Vec::new(),
    };
    let out = PathBuf::from(out);
    let t = std::time::Instant::now();
    let boot = kiln_build::boot_files(root.as_ref(), spec.architecture)?;
    let raw = kiln_disk::write_raw(root.as_ref(), &boot, &spec, &out)?;
    println!(
        "{} {} ({:.1}s)",
        raw.digest,
        out.display(),
        t.elapsed().as_secs_f64()
    );
    for f in formats {
        let format = match f.as_str() {
            "qcow2" => kiln_disk::DiskFormat::Qcow2,
            "vmdk" => kiln_disk::DiskFormat::Vmdk,
            "vhd" => kiln_disk::DiskFormat::Vhd,
            other => return Err(format!("unknown format {other}").into()),
        };
        let t = std::time::Instant::now();
        let c = kiln_disk::convert(&out, format, &spec, &out.with_extension(format.extension()))?;
        println!(
            "{} {} {} bytes ({:.1}s)",
            c.digest,
            c.path.display(),
            c.size,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
