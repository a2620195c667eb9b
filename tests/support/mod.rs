//! What the integration suites share: temporary directories ([`TempDir`]), an engine with a store
//! to check against (`fixture`), requests through a router (`http`) and servers on a free port
//! (`serve`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under the system temp dir, unique to this process and call, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, not yet created, directory path tagged with `tag`.
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        TempDir(std::env::temp_dir().join(format!("writ-{tag}-{}-{n}-{nanos}", std::process::id())))
    }

    /// A fresh directory tagged with `tag`, created.
    pub fn created(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.path()).unwrap();
        dir
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub mod fixture;
pub mod http;
pub mod serve;
