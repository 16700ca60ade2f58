//! A submission's folder and its frozen manifest.
//!
//! In: the pending runs and where things are. Out: a numbered folder
//! `<store>/<experiment>/slurm/<n>/` holding `manifest.json` (every
//! submitted run's resolved configuration, in array-task order, and the
//! absolute paths a task needs), a copy of the `runner` binary, the two batch
//! scripts, `jobs.json` (the job ids, written once sbatch answered) and
//! `logs/`. The manifest is written once and never changed, so a task trains
//! exactly what was submitted even when the experiment file or the binary
//! changes afterwards.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SlurmError;
use runner_exec::Worker;
use runner_plan::config::{CudaGraph, DevicePreference};
use runner_plan::{Plan, PlannedRun};
use runner_store::atomic;

/// The manifest's file name inside a submission folder.
pub const MANIFEST: &str = "manifest.json";
/// The job ids' file name inside a submission folder.
pub const JOBS: &str = "jobs.json";
/// The manifest format this runner writes and reads (2: the whole plan).
pub const FORMAT: u32 = 2;

/// What every array task of one submission needs, frozen at submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format.
    pub format: u32,
    /// The experiment's plan as submitted: every run and the expectations
    /// (the collation job reports from it, never from the live file).
    pub plan: Plan,
    /// The experiment file, absolute (for the record).
    pub experiment_file: PathBuf,
    /// The runs store's root, absolute.
    pub store: PathBuf,
    /// The folder relative dataset paths start from, absolute.
    pub base_dir: PathBuf,
    /// The folder the jobs start in (where `runner exec` was typed).
    pub workdir: PathBuf,
    /// The bundled data folder, absolute.
    pub bundled: PathBuf,
    /// The folder holding `libtorch_cpu.so` on the nodes, put first on
    /// `LD_LIBRARY_PATH`; `None` leaves the binary's own rpath.
    pub libtorch_lib: Option<PathBuf>,
    /// The device every run uses, overriding the experiment's preference.
    pub device: Option<DevicePreference>,
    /// Whether CUDA steps replay a captured graph (`--cuda-graph`).
    #[serde(default)]
    pub cuda_graph: CudaGraph,
    /// `--threads`: libtorch threads per run on the CPU (`None`: the task's cores).
    #[serde(default)]
    pub threads: Option<usize>,
    /// The submitted runs; array task `i` trains `runs[i]`.
    pub runs: Vec<PlannedRun>,
}

/// The jobs one submission made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// The job array's id.
    pub array: String,
    /// The collation job's id, once submitted.
    pub report: Option<String>,
    /// The sbatch command lines, for the record.
    pub commands: Vec<Vec<String>>,
}

/// One submission folder, with what it holds.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The folder.
    pub dir: PathBuf,
    /// Its number among the experiment's submissions (1, 2, ...).
    pub number: u32,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its jobs, when sbatch accepted them.
    pub jobs: Option<Jobs>,
}

impl Manifest {
    /// Reads a manifest, checking its format and that every run's
    /// configuration still hashes to its id.
    pub fn read(path: &Path) -> Result<Manifest, SlurmError> {
        let text = std::fs::read_to_string(path).map_err(|source| SlurmError::Read {
            path: path.to_owned(),
            source,
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|source| SlurmError::Damaged {
            path: path.to_owned(),
            problem: source.to_string(),
        })?;
        if manifest.format != FORMAT {
            return Err(SlurmError::Damaged {
                path: path.to_owned(),
                problem: format!("format {} (this runner reads format {FORMAT})", manifest.format),
            });
        }
        if let Some(run) = manifest
            .runs
            .iter()
            .chain(&manifest.plan.runs)
            .find(|run| run.config.id() != run.id)
        {
            return Err(SlurmError::Damaged {
                path: path.to_owned(),
                problem: format!("the configuration of run {} does not hash to its id", run.id),
            });
        }
        Ok(manifest)
    }
}

/// The folder holding an experiment's submissions.
pub fn submissions_dir(experiment_root: &Path) -> PathBuf {
    experiment_root.join("slurm")
}

/// Creates the next numbered submission folder (with `logs/`) and returns
/// it with its number; two submitters never get the same folder.
pub fn create_next(experiment_root: &Path) -> Result<(PathBuf, u32), SlurmError> {
    let parent = submissions_dir(experiment_root);
    let write = |path: &Path| {
        let path = path.to_owned();
        move |source| SlurmError::Write { path, source }
    };
    std::fs::create_dir_all(&parent).map_err(write(&parent))?;
    let mut number = numbers(&parent).into_iter().max().unwrap_or(0) + 1;
    loop {
        let dir = parent.join(number.to_string());
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::create_dir(dir.join("logs")).map_err(write(&dir))?;
                return Ok((dir, number));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => number += 1,
            Err(source) => return Err(SlurmError::Write { path: dir, source }),
        }
    }
}

/// Writes a JSON value into a submission folder, atomically.
pub fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> Result<(), SlurmError> {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    atomic::write(&path, text.as_bytes()).map_err(|source| SlurmError::Write { path, source })
}

/// An experiment's submissions that have a readable manifest, oldest first.
pub fn list(experiment_root: &Path) -> Vec<Submission> {
    let parent = submissions_dir(experiment_root);
    let mut numbers = numbers(&parent);
    numbers.sort_unstable();
    numbers
        .into_iter()
        .filter_map(|number| {
            let dir = parent.join(number.to_string());
            let manifest = Manifest::read(&dir.join(MANIFEST)).ok()?;
            let jobs = std::fs::read_to_string(dir.join(JOBS))
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok());
            Some(Submission {
                dir,
                number,
                manifest,
                jobs,
            })
        })
        .collect()
}

/// The numbers of the submission folders under `parent`.
fn numbers(parent: &Path) -> Vec<u32> {
    std::fs::read_dir(parent)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Freezes the running `runner` binary and its `worker` into the
/// submission folder, side by side: hard links when the file system allows
/// (a rebuild replaces the files, the links keep the old ones), copies
/// otherwise. Returns the frozen `runner`'s path.
pub fn freeze_binaries(dir: &Path, worker: &Worker) -> Result<PathBuf, SlurmError> {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|source| SlurmError::Binary { source })?;
    let frozen = dir.join("runner");
    freeze(&exe, &frozen)?;
    freeze(worker.path(), &dir.join(runner_exec::worker::BINARY))?;
    Ok(frozen)
}

/// `from` at `to`: a hard link, else a copy.
fn freeze(from: &Path, to: &Path) -> Result<(), SlurmError> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).map_err(|source| SlurmError::Write {
            path: to.to_owned(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch folder, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("runner-manifest-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn manifest(scratch: &Scratch) -> Manifest {
        let file = scratch.0.join("two.kdl");
        std::fs::write(&file, "experiment two {\n    repeats 2\n}\n").unwrap();
        let plan = runner_plan::load(&file).unwrap();
        Manifest {
            format: FORMAT,
            runs: plan.runs.clone(),
            plan,
            experiment_file: file,
            store: scratch.0.join("runs"),
            base_dir: scratch.0.clone(),
            workdir: scratch.0.clone(),
            bundled: scratch.0.join("bundled"),
            libtorch_lib: None,
            device: None,
            cuda_graph: CudaGraph::Auto,
            threads: None,
        }
    }

    #[test]
    fn submissions_are_numbered_and_listed_with_their_jobs() {
        let scratch = Scratch::new("list");
        let root = scratch.0.join("runs/two");
        let written = manifest(&scratch);
        let (first, one) = create_next(&root).unwrap();
        let (second, two) = create_next(&root).unwrap();
        assert_eq!((one, two), (1, 2));
        assert!(second.join("logs").is_dir());
        write_json(&first, MANIFEST, &written).unwrap();
        write_json(&second, MANIFEST, &written).unwrap();
        let jobs = Jobs {
            array: "7".to_owned(),
            report: Some("8".to_owned()),
            commands: Vec::new(),
        };
        write_json(&second, JOBS, &jobs).unwrap();
        let (_, three) = create_next(&root).unwrap(); // no manifest: not listed
        assert_eq!(three, 3);

        let listed = list(&root);
        assert_eq!(listed.iter().map(|s| s.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(listed[0].jobs, None);
        assert_eq!(listed[1].jobs, Some(jobs));
        let ids = |m: &Manifest| m.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&listed[1].manifest), ids(&written));
        assert_eq!(listed[1].manifest.runs.len(), 2);
    }

    #[test]
    fn a_manifest_whose_configuration_was_edited_is_refused() {
        let scratch = Scratch::new("edited");
        let written = manifest(&scratch);
        write_json(&scratch.0, MANIFEST, &written).unwrap();
        let path = scratch.0.join(MANIFEST);
        assert!(Manifest::read(&path).is_ok());
        let text = std::fs::read_to_string(&path).unwrap();
        let seed = format!("\"seed\": {}", written.runs[0].config.seed);
        assert!(text.contains(&seed), "{text}");
        std::fs::write(&path, text.replacen(&seed, "\"seed\": 999", 1)).unwrap();
        let error = Manifest::read(&path).unwrap_err().to_string();
        assert!(error.contains("does not hash to its id"), "{error}");
    }
}
