//! Fetching: verified streaming into the store, retries on the failures that
//! deserve them and no others. HTTP tests talk to a scripted server on the
//! loopback interface.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kiln_store::{Digest, Expected, FetchError, Fetcher, Retry, Store};

fn quick(attempts: u32) -> Fetcher {
    Fetcher::new(Retry {
        attempts,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    })
}

/// Serves one scripted response per connection, in order; returns the base
/// URL and a count of requests served.
fn serve(script: Vec<(u16, &'static [u8])>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let served = count.clone();
    std::thread::spawn(move || {
        for (status, body) in script {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            served.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream;
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (url, count)
}

fn file_count(root: &Path) -> usize {
    walk(root)
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { walk(&p) } else { 1 }
        })
        .sum()
}

/// A 7-byte file `name` in `src`, its `file://` URL, what it must be, and
/// an empty store in `dir`.
fn payload(src: &Path, name: &str, dir: &Path) -> (std::path::PathBuf, Store, String, Expected) {
    let file = src.join(name);
    std::fs::write(&file, b"payload").unwrap();
    let url = format!("file://{}", file.display());
    let want = Expected::new(Digest::of(b"payload"), 7);
    (file, Store::open(dir).unwrap(), url, want)
}

#[test]
fn file_urls_stream_into_verified_blobs() {
    let (src, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (file, store, url, want) = payload(src.path(), "Packages.xz", dir.path());
    let e = quick(3).fetch_blob(&store, &url, &want).unwrap();
    assert_eq!(std::fs::read(&e.path).unwrap(), b"payload");
    // Once held, the blob is not fetched again: the source may even be gone.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(quick(3).fetch_blob(&store, &url, &want).unwrap(), e);
}

#[test]
fn a_digest_mismatch_names_the_url_and_both_digests_and_stores_nothing() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("Packages.xz");
    std::fs::write(&file, b"tampered").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let before = file_count(dir.path());
    let url = format!("file://{}", file.display());
    let want = Digest::of(b"original");
    let err = quick(3)
        .fetch_blob(&store, &url, &Expected::sha256(want))
        .unwrap_err();
    assert!(err.is_mismatch(), "{err}");
    let msg = err.to_string();
    for part in [url.as_str(), &want.hex(), &Digest::of(b"tampered").hex()] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
    assert_eq!(file_count(dir.path()), before);
}

#[test]
fn a_missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = quick(3)
        .fetch_blob(&store, "file:///nonexistent/kiln/x", &Expected::default())
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("file:///nonexistent/kiln/x"));
}

#[test]
fn server_errors_are_retried_until_success() {
    let (base, count) = serve(vec![(500, b""), (503, b""), (200, b"body")]);
    let url = format!("{base}/dists/x/InRelease");
    let bytes = quick(4).fetch_bytes(&url, 1024).unwrap();
    assert_eq!(bytes, b"body");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[test]
fn not_found_is_not_retried() {
    let (base, count) = serve(vec![(404, b""), (200, b"never")]);
    let err = quick(4)
        .fetch_bytes(&format!("{base}/missing"), 1024)
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn attempts_are_bounded_and_the_error_names_the_url() {
    let (base, count) = serve(vec![(503, b""); 5]);
    let url = format!("{base}/flaky");
    let err = quick(3).fetch_bytes(&url, 1024).unwrap_err();
    assert!(
        matches!(err, FetchError::Network { attempts: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&url), "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[test]
fn a_refused_connection_is_a_network_error() {
    // Bind then drop, so the port is almost certainly closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = quick(2)
        .fetch_bytes(&format!("http://127.0.0.1:{port}/x"), 10)
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Network { attempts: 2, .. }),
        "{err}"
    );
}

#[test]
fn oversized_bodies_are_cut_off() {
    let (base, _) = serve(vec![(200, b"0123456789"), (200, b"0123456789")]);
    let err = quick(1).fetch_bytes(&format!("{base}/big"), 4).unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 4, .. }),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let before = file_count(dir.path());
    let expected = Expected {
        sha256: None,
        size: Some(4),
    };
    let err = quick(1)
        .fetch_blob(&store, &format!("{base}/big"), &expected)
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    assert_eq!(file_count(dir.path()), before);
}

#[test]
fn other_schemes_are_refused() {
    let err = quick(3).fetch_bytes("ftp://x/y", 10).unwrap_err();
    assert!(matches!(err, FetchError::BadUrl { .. }), "{err}");
}

#[test]
fn a_held_blob_of_the_wrong_size_is_fetched_again() {
    let (src, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_file, store, url, want) = payload(src.path(), "app.deb", dir.path());
    let e = quick(3).fetch_blob(&store, &url, &want).unwrap();
    // Cut short since it was stored: its size says so without a read.
    std::fs::write(&e.path, b"pay").unwrap();
    let again = quick(3).fetch_blob(&store, &url, &want).unwrap();
    assert_eq!(again, e);
    assert_eq!(std::fs::read(&again.path).unwrap(), b"payload");
}
