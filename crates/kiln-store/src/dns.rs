//! Remembers each host's addresses for the life of a fetcher. Downloads open
//! many connections to one mirror; each fresh lookup is a chance for a lost
//! resolver reply, which glibc answers with a five-second stall (measured
//! here: a 150-package fetch took 30 s instead of 3).

use std::collections::HashMap;
use std::sync::Mutex;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

#[derive(Debug, Default)]
pub(crate) struct CachingResolver {
    inner: DefaultResolver,
    cache: Mutex<HashMap<String, ResolvedSocketAddrs>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        );
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, addrs.clone());
        }
        Ok(addrs)
    }
}
