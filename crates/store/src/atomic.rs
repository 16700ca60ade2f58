//! Files that appear whole or not at all.
//!
//! In: a path and its bytes. Out: the file, written to a temporary name in
//! the same folder, flushed to disk, then renamed over the target, so a
//! reader (or a run killed mid-write) never sees half a file.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the name of a temporary file holds between the target's name and
/// the writer's process id.
const TEMPORARY: &str = ".tmp-";

/// Writes `bytes` to `path` atomically (write, fsync, rename, fsync folder).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per write: two threads may write the same file (a run's status
    // from a second signal while training writes it).
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let nth = WRITES.fetch_add(1, Ordering::Relaxed);
    let temp = folder.join(format!(".{name}{TEMPORARY}{}-{nth}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        if let Ok(dir) = std::fs::File::open(folder) {
            // Persist the rename; not every file system allows syncing a folder.
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Removes the temporary files that writes killed halfway left in
/// `folder` (call it only while no other process writes there).
pub fn remove_leftovers(folder: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(TEMPORARY) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("runner-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("summary.json");
        write(&path, b"first").unwrap();
        write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["summary.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn leftovers_of_killed_writes_are_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("runner-leftovers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            ".summary.json.tmp-77-0",
            ".position.json.tmp-12",
            "metrics.csv",
            ".hidden",
        ] {
            std::fs::write(dir.join(name), "x").unwrap();
        }
        remove_leftovers(&dir).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".hidden", "metrics.csv"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_panic() {
        let path = std::env::temp_dir().join("runner-no-such-folder/x/y.json");
        assert!(write(&path, b"x").is_err());
    }
}
