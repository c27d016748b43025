//! Trees kept in a bucket (a root filesystem under its cache key) and the
//! completion record that makes one trustworthy: `<key>.json` beside the
//! tree, naming its key, written atomically once the tree is whole and in
//! place. A tree without it (a build killed between the rename and the
//! record, a directory that merely exists) is not a cached tree.

use std::path::PathBuf;

use crate::{Bucket, StoreError};

impl Bucket {
    /// The tree kept under `key`, if it is there with its completion record.
    pub fn complete_tree(&self, key: &str) -> Result<Option<PathBuf>, StoreError> {
        let tree = self.path(key)?;
        if !tree.is_dir() {
            return Ok(None);
        }
        let said = self.get(&record_key(key))?;
        Ok((said.as_deref() == Some(record(key).as_bytes())).then_some(tree))
    }

    /// Records that the tree under `key` is whole: call it last, once the
    /// tree is in place.
    pub fn mark_complete(&self, key: &str) -> Result<(), StoreError> {
        self.put(&record_key(key), record(key).as_bytes())?;
        Ok(())
    }

    /// Removes the completion record of `key`, first of all when a tree is
    /// about to be replaced or removed, so no reader trusts it meanwhile.
    pub fn unmark_complete(&self, key: &str) -> Result<(), StoreError> {
        match fs_err::remove_file(self.path(&record_key(key))?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// `.json`, as every keyed record, so `kiln gc` keeps it with its key.
fn record_key(key: &str) -> String {
    format!("{key}.json")
}

fn record(key: &str) -> String {
    format!(
        "{{\"key\":\"{}\",\"complete\":true}}\n",
        key.escape_default()
    )
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn a_tree_counts_only_with_the_record_of_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Store::open(dir.path()).unwrap().bucket("trees-v1").unwrap();
        let tree = bucket.path("abc").unwrap();
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        assert_eq!(bucket.complete_tree("abc").unwrap(), None);
        bucket.mark_complete("abc").unwrap();
        assert_eq!(bucket.complete_tree("abc").unwrap(), Some(tree.clone()));
        // Another key's record does not vouch for this tree.
        std::fs::copy(
            bucket.path("abc.json").unwrap(),
            bucket.path("abd.json").unwrap(),
        )
        .unwrap();
        std::fs::create_dir_all(bucket.path("abd").unwrap()).unwrap();
        assert_eq!(bucket.complete_tree("abd").unwrap(), None);
        bucket.unmark_complete("abc").unwrap();
        bucket.unmark_complete("abc").unwrap();
        assert_eq!(bucket.complete_tree("abc").unwrap(), None);
    }
}
