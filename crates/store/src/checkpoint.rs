//! A run's checkpoint, whole or not at all.
//!
//! In: a claimed run and a writer of the checkpoint's files (training owns
//! their format). Out: `checkpoint/`, holding the model, the optimizer, the
//! position and `manifest.json`, which names the run and lists every other
//! file with its size and SHA-256.
//!
//! With early stopping it also holds `best-model.safetensors`, the best
//! evaluation's weights, so that the best and the last change together.
//!
//! A new checkpoint is written completely into `.checkpoint-next/`, each
//! file synced, the manifest last; then `checkpoint/` is renamed to
//! `.checkpoint-old/`, `.checkpoint-next/` to `checkpoint/`, and the old one
//! removed. A process killed anywhere in that sequence leaves at least one
//! complete checkpoint, which [`ClaimedRun::recover_checkpoint`] finds
//! (`checkpoint/`, else the complete staging folder, else the old one) and
//! switches back in, removing what is left over. A checkpoint that does not
//! match its manifest (damaged, mixed from two epochs, another run's) is
//! refused, never resumed from.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files::RunFile;
use crate::folder::{ClaimedRun, RunFolder};
use crate::{StoreError, StoreProblem};

/// The manifest's format; a checkpoint of another format is refused.
pub const MANIFEST_FORMAT: u32 = 1;

const NEXT: &str = RunFile::CheckpointNext.name();
const OLD: &str = RunFile::CheckpointOld.name();
/// The manifest's name inside a checkpoint folder.
const MANIFEST: &str = "manifest.json";

/// The paths of a checkpoint's files in one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFiles {
    /// The folder.
    pub dir: PathBuf,
    /// The model's weights (`model.safetensors`).
    pub model: PathBuf,
    /// The optimizer's state (`optimizer.safetensors`).
    pub optimizer: PathBuf,
    /// Where training stands (`position.json`).
    pub position: PathBuf,
    /// With early stopping, the weights of the best evaluation so far
    /// (`best-model.safetensors`), kept beside the last.
    pub best_model: PathBuf,
}

impl CheckpointFiles {
    /// The weights that are the run's result: the best evaluation's when
    /// early stopping kept them, else the last.
    pub fn result_weights(&self) -> &Path {
        if self.best_model.is_file() {
            &self.best_model
        } else {
            &self.model
        }
    }

    /// The checkpoint files in `dir`.
    pub fn in_dir(dir: PathBuf) -> CheckpointFiles {
        CheckpointFiles {
            model: dir.join("model.safetensors"),
            optimizer: dir.join("optimizer.safetensors"),
            position: dir.join("position.json"),
            best_model: dir.join("best-model.safetensors"),
            dir,
        }
    }
}

/// What a checkpoint records beside its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The run's id: a checkpoint copied from another run is refused.
    pub run: String,
    /// How it was trained, which a resumed run keeps.
    pub trained: TrainedWith,
    /// Every file of the checkpoint but the manifest, by name.
    pub files: BTreeMap<String, FileDigest>,
}

/// How a checkpoint was trained: what its numbers depend on besides the
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainedWith {
    /// Optimizer steps taken.
    pub step: u64,
    /// libtorch's CPU threads.
    pub threads: usize,
    /// The device, in words (`cpu`, `cuda:0 (NVIDIA H100)`).
    pub device: String,
}

/// One file's size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Bytes.
    pub bytes: u64,
    /// SHA-256, 64 hex digits.
    pub sha256: String,
}

/// A checkpoint that matches its manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its files.
    pub files: CheckpointFiles,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Why a checkpoint cannot be resumed from or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// It does not match its manifest, or has none.
    #[error(
        "cannot resume from the checkpoint in {}: {reason}; it is damaged, mixed from two \
         checkpoints or another run's, and is left as it is; `runner exec FILE --force --only {run}` \
         starts the run over",
        dir.display()
    )]
    Unusable {
        /// The checkpoint folder.
        dir: PathBuf,
        /// What does not match.
        reason: String,
        /// The run's short id, for the remedy.
        run: String,
    },
    /// A file could not be written, read or removed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How closely a checkpoint is compared with its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Names and sizes (cheap: for `runner status`).
    Sizes,
    /// Names, sizes and SHA-256 (before resuming).
    Hashes,
}

impl RunFolder {
    /// The paths of its current checkpoint (`checkpoint/`).
    pub fn checkpoint(&self) -> CheckpointFiles {
        CheckpointFiles::in_dir(self.path(RunFile::Checkpoint))
    }

    /// Whether it holds a checkpoint to resume from (its manifest is there,
    /// in `checkpoint/` or, after a kill while switching, in the staging or
    /// old folder); file sizes are compared, not hashes.
    pub fn has_checkpoint(&self) -> bool {
        [RunFile::Checkpoint.name(), NEXT, OLD]
            .iter()
            .any(|name| self.verify(&self.dir().join(name), Check::Sizes).is_ok())
    }

    /// What is wrong with `checkpoint/`, when it is there and does not match
    /// its manifest by names and sizes.
    pub fn checkpoint_problem(&self) -> Option<String> {
        let dir = self.path(RunFile::Checkpoint);
        if !dir.exists() {
            return None;
        }
        self.verify(&dir, Check::Sizes).err()
    }

    /// The run's id: its folder's name.
    fn run_id(&self) -> String {
        self.dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The checkpoint in `dir` if it matches its manifest, else what does not.
    fn verify(&self, dir: &Path, check: Check) -> Result<Checkpoint, String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "it has no manifest.json (a partial write, or a runner before 0.2)".to_owned()
            }
            _ => format!("{MANIFEST}: {e}"),
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| format!("{MANIFEST} is corrupt: {e}"))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(format!(
                "{MANIFEST} has format {}, this runner reads {MANIFEST_FORMAT}",
                manifest.format
            ));
        }
        if manifest.run != self.run_id() {
            return Err(format!("its manifest names the run {}, not this one", manifest.run));
        }
        let mut present = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let name = entry
                .map_err(|e| e.to_string())?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name != MANIFEST {
                present.push(name);
            }
        }
        if let Some(extra) = present.iter().find(|n| !manifest.files.contains_key(n.as_str())) {
            return Err(format!("it holds {extra}, which its manifest does not list"));
        }
        for (name, expected) in &manifest.files {
            let file = dir.join(name);
            let bytes = std::fs::metadata(&file).map_err(|e| format!("{name}: {e}"))?.len();
            if bytes != expected.bytes {
                return Err(format!(
                    "{name} has {bytes} bytes, its manifest says {}",
                    expected.bytes
                ));
            }
            if check == Check::Hashes {
                let actual = digest(&file).map_err(|e| format!("{name}: {e}"))?;
                if actual.sha256 != expected.sha256 {
                    return Err(format!("{name} is not the file its manifest lists (SHA-256 differs)"));
                }
            }
        }
        Ok(Checkpoint {
            files: CheckpointFiles::in_dir(dir.to_owned()),
            manifest,
        })
    }
}

impl ClaimedRun {
    /// The checkpoint to resume from, hashes checked, after putting right
    /// what a kill while checkpointing left: a complete staging or old
    /// folder is switched in when `checkpoint/` is missing, and leftovers are
    /// removed. `None` when there is none; an error when `checkpoint/` does
    /// not match its manifest (it is then left untouched).
    pub fn recover_checkpoint(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        let current = self.path(RunFile::Checkpoint);
        let next = self.dir().join(NEXT);
        let old = self.dir().join(OLD);
        let unusable = |reason: String| CheckpointError::Unusable {
            dir: current.clone(),
            reason,
            run: self.run_id().chars().take(8).collect(),
        };
        if current.exists() {
            // A refused checkpoint is left as it is, and so is what lies beside it.
            let checkpoint = self.verify(&current, Check::Hashes).map_err(unusable)?;
            remove_dir(&next)?;
            remove_dir(&old)?;
            return Ok(Some(checkpoint));
        }
        // Killed while switching: the newest complete checkpoint goes in.
        let complete = [&next, &old]
            .into_iter()
            .find(|candidate| candidate.exists() && self.verify(candidate, Check::Hashes).is_ok());
        if let Some(candidate) = complete {
            std::fs::rename(candidate, &current).map_err(StoreError::at(&current))?;
            sync_dir(self.dir()).map_err(StoreError::at(self.dir()))?;
        }
        remove_dir(&next)?;
        remove_dir(&old)?;
        match complete {
            Some(_) => self.verify(&current, Check::Sizes).map(Some).map_err(unusable),
            None => Ok(None),
        }
    }

    /// Writes a new checkpoint: `write` puts its files into the staging
    /// folder it is given; then the manifest is written, everything synced,
    /// and the checkpoint switched in (see the module's text). A failure
    /// leaves the previous checkpoint in place.
    pub fn write_checkpoint<E: From<StoreError>>(
        &self,
        trained: TrainedWith,
        write: impl FnOnce(&CheckpointFiles) -> Result<(), E>,
    ) -> Result<(), E> {
        let next = self.dir().join(NEXT);
        remove_dir(&next)?;
        std::fs::create_dir(&next).map_err(StoreError::at(&next))?;
        let staging = CheckpointFiles::in_dir(next.clone());
        write(&staging)?;
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&next).map_err(StoreError::at(&next))? {
            let path = entry.map_err(StoreError::at(&next))?.path();
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(StoreError::at(&path))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.insert(name, digest(&path).map_err(StoreError::at(&path))?);
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            run: self.run_id(),
            trained,
            files,
        };
        let path = next.join(MANIFEST);
        let text = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(StoreError::at(&path))?;
        sync_dir(&next).map_err(StoreError::at(&next))?;
        self.switch_in(&next).map_err(E::from)
    }

    /// Renames the complete checkpoint `next` to `checkpoint/`, through
    /// `.checkpoint-old/`, and removes the old one.
    fn switch_in(&self, next: &Path) -> Result<(), StoreError> {
        let current = self.path(RunFile::Checkpoint);
        let old = self.dir().join(OLD);
        remove_dir(&old)?;
        if current.exists() {
            std::fs::rename(&current, &old).map_err(StoreError::at(&current))?;
        }
        std::fs::rename(next, &current).map_err(StoreError::at(&current))?;
        sync_dir(self.dir()).map_err(StoreError::at(self.dir()))?;
        remove_dir(&old)
    }
}

/// The store error for a failure that a library reported as text only
/// (libtorch, safetensors), when the text names a full disk, a read-only
/// file system or a quota.
pub fn store_error_in_text(path: &Path, text: &str) -> Option<StoreError> {
    StoreProblem::in_text(text).map(|problem| StoreError {
        path: path.to_owned(),
        source: std::io::Error::from_raw_os_error(problem.errno()),
    })
}

/// A file's size and SHA-256.
fn digest(path: &Path) -> std::io::Result<FileDigest> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    let sha256 = runner_data::source::hex(&hasher.finalize());
    Ok(FileDigest { bytes, sha256 })
}

/// Removes a folder and what it holds; nothing when it is not there.
fn remove_dir(dir: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::at(dir)(e)),
        _ => Ok(()),
    }
}

/// Persists a folder's entries (renames, new files); a file system that
/// cannot sync folders is let be.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if StoreProblem::of(&e).is_some() => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained(step: u64) -> TrainedWith {
        TrainedWith {
            step,
            threads: 2,
            device: "cpu".to_owned(),
        }
    }

    /// A claimed run in a fresh store; its id is `abcdef0123456789`.
    fn claimed(name: &str) -> (PathBuf, ClaimedRun) {
        let root = std::env::temp_dir().join(format!("runner-checkpoint-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("e").join("abcdef0123456789");
        std::fs::create_dir_all(&dir).unwrap();
        let lock = std::fs::File::create(dir.join("lock")).unwrap();
        (root, ClaimedRun::new(dir, lock))
    }

    /// Writes a checkpoint whose three files say `epoch`.
    fn write(run: &ClaimedRun, epoch: u64) {
        run.write_checkpoint(trained(epoch), |files: &CheckpointFiles| -> Result<(), StoreError> {
            for path in [&files.model, &files.optimizer, &files.position] {
                std::fs::write(path, format!("epoch {epoch}")).unwrap();
            }
            Ok(())
        })
        .unwrap();
    }

    fn epoch_of(checkpoint: &Checkpoint) -> Vec<String> {
        let f = &checkpoint.files;
        [&f.model, &f.optimizer, &f.position]
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_checkpoint_is_switched_in_whole_and_read_back() {
        let (root, run) = claimed("whole");
        assert!(!run.has_checkpoint());
        assert_eq!(run.recover_checkpoint().unwrap(), None);
        write(&run, 1);
        write(&run, 2);
        assert!(run.has_checkpoint());
        let checkpoint = run.recover_checkpoint().unwrap().unwrap();
        assert_eq!(epoch_of(&checkpoint), ["epoch 2"; 3]);
        assert_eq!(checkpoint.manifest.trained, trained(2));
        assert_eq!(names(run.dir()), ["checkpoint", "lock"]);
        assert_eq!(
            names(&run.checkpoint().dir),
            [
                "manifest.json",
                "model.safetensors",
                "optimizer.safetensors",
                "position.json"
            ]
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    /// Every state a kill can leave between two checkpoints, and what
    /// recovery makes of it: always one whole checkpoint, never a mix.
    #[test]
    fn a_kill_at_any_point_of_the_switch_recovers_one_whole_checkpoint() {
        let current = RunFile::Checkpoint.name();
        // (what is on disk, which epoch recovery resumes from)
        /// What a kill left on disk: (what, how to make it, the epoch recovered).
        type Case = (&'static str, fn(&Path), &'static str);
        let cases: [Case; 5] = [
            (
                "staging folder half written",
                |dir| {
                    std::fs::remove_file(dir.join(NEXT).join(MANIFEST)).unwrap();
                    std::fs::write(dir.join(NEXT).join("model.safetensors"), "epo").unwrap();
                },
                "epoch 1",
            ),
            ("staging complete, not switched", |_| {}, "epoch 1"),
            (
                "old renamed away, new not yet in",
                |dir| {
                    std::fs::rename(dir.join(RunFile::Checkpoint.name()), dir.join(OLD)).unwrap();
                },
                "epoch 2",
            ),
            (
                "new switched in, old not removed",
                |dir| {
                    std::fs::rename(dir.join(RunFile::Checkpoint.name()), dir.join(OLD)).unwrap();
                    std::fs::rename(dir.join(NEXT), dir.join(RunFile::Checkpoint.name())).unwrap();
                },
                "epoch 2",
            ),
            (
                "old renamed away, staging damaged",
                |dir| {
                    std::fs::rename(dir.join(RunFile::Checkpoint.name()), dir.join(OLD)).unwrap();
                    std::fs::write(dir.join(NEXT).join("position.json"), "epoch 9").unwrap();
                },
                "epoch 1",
            ),
        ];
        for (what, kill, expected) in cases {
            let (root, run) = claimed("kill");
            write(&run, 1);
            // A staging folder with epoch 2 beside the current epoch 1, as
            // write_checkpoint leaves it just before switching.
            let next = run.dir().join(NEXT);
            std::fs::rename(run.checkpoint().dir, run.dir().join("keep")).unwrap();
            write(&run, 2);
            std::fs::rename(run.checkpoint().dir, &next).unwrap();
            std::fs::rename(run.dir().join("keep"), run.dir().join(current)).unwrap();
            kill(run.dir());

            assert!(run.has_checkpoint(), "{what}");
            let checkpoint = run
                .recover_checkpoint()
                .unwrap()
                .unwrap_or_else(|| panic!("{what}: none"));
            assert_eq!(epoch_of(&checkpoint), [expected; 3], "{what}");
            assert_eq!(names(run.dir()), ["checkpoint", "lock"], "{what}: leftovers");
            std::fs::remove_dir_all(root).unwrap();
        }
    }

    #[test]
    fn a_mixed_or_foreign_checkpoint_is_refused_with_the_remedy() {
        let (root, run) = claimed("mixed");
        write(&run, 1);
        let files = run.checkpoint();
        std::fs::write(&files.optimizer, "epoch 7").unwrap();
        assert!(run.has_checkpoint(), "sizes alone cannot tell");
        let error = run.recover_checkpoint().unwrap_err().to_string();
        assert!(
            error.contains("optimizer.safetensors is not the file its manifest lists"),
            "{error}"
        );
        assert!(error.contains("`runner exec FILE --force --only abcdef01`"), "{error}");
        assert!(files.optimizer.exists(), "a refused checkpoint is left as it is");
        std::fs::create_dir(run.dir().join(NEXT)).unwrap();
        assert!(run.recover_checkpoint().is_err());
        assert!(run.dir().join(NEXT).exists(), "and so is what lies beside it");

        write(&run, 1);
        std::fs::write(files.dir.join("rng.bin"), "x").unwrap();
        let error = run.recover_checkpoint().unwrap_err().to_string();
        assert!(
            error.contains("it holds rng.bin, which its manifest does not list"),
            "{error}"
        );

        write(&run, 1);
        let manifest = files.dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replace("abcdef0123456789", "0123456789abcdef")).unwrap();
        assert!(!run.has_checkpoint());
        assert_eq!(
            run.checkpoint_problem().unwrap(),
            "its manifest names the run 0123456789abcdef, not this one"
        );

        std::fs::remove_file(&manifest).unwrap();
        let error = run.recover_checkpoint().unwrap_err().to_string();
        assert!(error.contains("it has no manifest.json"), "{error}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_previous_checkpoint() {
        let (root, run) = claimed("failed");
        write(&run, 1);
        let full = || StoreError {
            path: PathBuf::from("model.safetensors"),
            source: std::io::Error::from_raw_os_error(28),
        };
        let result = run.write_checkpoint(trained(2), |_: &CheckpointFiles| Err(full()));
        assert!(StoreProblem::of(&result.unwrap_err().source) == Some(StoreProblem::Full));
        let checkpoint = run.recover_checkpoint().unwrap().unwrap();
        assert_eq!(epoch_of(&checkpoint), ["epoch 1"; 3]);
        assert_eq!(names(run.dir()), ["checkpoint", "lock"]);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_library_message_naming_a_full_disk_becomes_a_store_error() {
        let path = Path::new("x/model.safetensors");
        let text = "I/O error: No space left on device (os error 28)";
        let error = store_error_in_text(path, text).unwrap();
        assert_eq!(StoreProblem::of(&error.source), Some(StoreProblem::Full));
        assert_eq!(error.path, path);
        assert!(store_error_in_text(path, "shape mismatch").is_none());
    }
}
