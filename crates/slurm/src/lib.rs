//! Slurm: hands an experiment's pending runs to a Slurm cluster and reads
//! back what the cluster says about them. `runner` schedules nothing itself.
//!
//! In: a plan, the runs store, the executor's selection options and what the
//! user asked of Slurm ([`Request`]). Out:
//!
//! - [`submit`]: the runs' datasets built once into the store's cache; a
//!   submission folder `<store>/<experiment>/slurm/<n>/` with the frozen
//!   [`manifest::Manifest`] (the whole plan and every submitted run's
//!   resolved configuration), frozen copies of `runner` and `runner-worker`,
//!   the two batch scripts and the job ids; one job array (task `i` trains
//!   run `i`) and one collation job that waits for the whole array
//!   (`afterany`) and writes the report of the submitted plan.
//! - [`task`]: inside array task `i`, that run as a one-run plan for the
//!   executor, which trains it under the store's per-run lock (so a run
//!   submitted twice is trained once) and resumes it from its checkpoint.
//! - [`status`]: each run's state in the store merged with its array
//!   task's state in squeue / sacct.
//!
//! The parts: [`manifest`] (the folder and its files), [`script`] (the
//! scripts and sbatch arguments, pure text), [`queue`] (the Slurm commands
//! and the parsing of their answers), [`status`] (the merge and its table).

#![deny(missing_docs)]

pub mod manifest;
pub mod queue;
pub mod script;
pub mod status;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use manifest::{Jobs, Manifest};
use runner_data::source::Folders;
use runner_exec::{self as exec, Worker};
use runner_job::Environment;
use runner_plan::{Plan, PlannedRun};
use runner_store::{RunState, RunStore, StoreError};

/// What went wrong handing runs to Slurm.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SlurmError {
    /// A file or folder of the submission could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A manifest could not be read.
    #[error("cannot read the manifest {}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A manifest is not one this runner wrote.
    #[error("the manifest {} is damaged: {problem}", path.display())]
    #[diagnostic(help("submit again with `runner exec FILE --backend slurm`"))]
    Damaged {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// An array task index past the manifest's runs.
    #[error("the manifest {} has {}, no task {index}", path.display(), runner_plan::show::count(*count, "run"))]
    NoTask {
        /// The manifest.
        path: PathBuf,
        /// The index asked for.
        index: usize,
        /// Its runs.
        count: usize,
    },
    /// The running binary could not be found to freeze it.
    #[error("cannot find this runner binary to copy it for the tasks")]
    Binary {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--force` asked to reset a run another process is training.
    #[error("run {id} is being trained by another process; --force cannot reset it now")]
    #[diagnostic(help("wait for it, or cancel its job (see `runner status`), then submit again"))]
    Busy {
        /// The run.
        id: String,
    },
    /// sbatch could not be started.
    #[error("`sbatch` could not be started: {source}")]
    #[diagnostic(help(
        "submit from a machine with Slurm's client commands (sbatch, squeue) on PATH, such as a login node"
    ))]
    NoSbatch {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// sbatch refused a job.
    #[error("sbatch refused the {what}: {answer}")]
    Refused {
        /// The job array or the collation job.
        what: &'static str,
        /// What sbatch said.
        answer: String,
    },
    /// The array went in but the collation job did not.
    #[error("the job array {array} was submitted, but sbatch refused the collation job: {answer}")]
    #[diagnostic(help("the runs will train; write the report yourself with `runner report` when they end"))]
    NoCollation {
        /// The array's job id.
        array: String,
        /// What sbatch said.
        answer: String,
    },
}

/// What the user asked of Slurm.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The partition (`None`: the cluster's default).
    pub partition: Option<String>,
    /// GPUs per run (`--gres=gpu:N`).
    pub gpus_per_run: Option<u32>,
    /// At most this many runs at once.
    pub max_parallel: Option<u32>,
    /// Each run's time limit, in sbatch's format.
    pub time: Option<String>,
    /// Further sbatch arguments, given to both jobs.
    pub sbatch_args: Vec<String>,
    /// The libtorch folder on the nodes (holding `lib/`), when not where
    /// this process loaded it from.
    pub libtorch: Option<PathBuf>,
}

/// What one submission made.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The submission folder.
    pub dir: PathBuf,
    /// Its number.
    pub number: u32,
    /// The runs submitted, one array task each.
    pub runs: usize,
    /// The job array's id.
    pub array: String,
    /// The collation job's id.
    pub report: String,
}

/// The runs a submission would hand to Slurm: those `options` select that
/// are not done (all of them with `--force`).
pub fn pending<'a>(
    plan: &'a Plan,
    store: &RunStore,
    options: &exec::Options,
) -> Result<Vec<&'a PlannedRun>, exec::SelectError> {
    Ok(exec::select(plan, store, options)?
        .into_iter()
        .filter(|(_, state)| options.force || *state != RunState::Done)
        .map(|(run, _)| run)
        .collect())
}

/// Submits `runs` of `plan` (read from `file`) to Slurm: prepares their
/// datasets in the store's cache, freezes the runs into a new submission
/// folder of the store, then submits the job array and the collation job.
/// With `options.force`, each run's previous attempt is cleared first, under
/// its lock.
pub fn submit(
    plan: &Plan,
    file: &Path,
    runs: &[&PlannedRun],
    options: &exec::Options,
    request: &Request,
) -> Result<Submitted, SlurmError> {
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| SlurmError::Write { path, source }
    };
    std::fs::create_dir_all(&options.runs_root).map_err(write_error(&options.runs_root))?;
    let store_root = std::fs::canonicalize(&options.runs_root).map_err(write_error(&options.runs_root))?;
    let store = RunStore::new(&store_root, &plan.experiment);
    if options.force {
        for run in runs {
            let from_store = |e: StoreError| SlurmError::Write {
                path: e.path,
                source: e.source,
            };
            match store.claim(run).map_err(from_store)? {
                Some(claimed) => claimed.reset().map_err(from_store)?,
                None => return Err(SlurmError::Busy { id: run.id.clone() }),
            }
        }
    }
    prepare_datasets(runs, &options.folders, &store_root.join(".datasets"));
    let (dir, number) = manifest::create_next(store.root())?;
    // Until sbatch accepted the array, nothing was submitted: leave no folder behind.
    let (manifest, array) = match freeze_and_submit(plan, file, runs, options, request, store_root, &dir) {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let mut jobs = Jobs {
        array: array.clone(),
        report: None,
        commands: vec![script::array_args(&manifest, request, &dir, runs.len())],
    };
    manifest::write_json(&dir, manifest::JOBS, &jobs)?;
    let report_args = script::report_args(&manifest, request, &dir, &array);
    let report = sbatch(&report_args).map_err(|answer| SlurmError::NoCollation {
        array: array.clone(),
        answer: match answer {
            Sbatch::NotStarted(e) => e.to_string(),
            Sbatch::Refused(answer) => answer,
        },
    })?;
    jobs.report = Some(report.clone());
    jobs.commands.push(report_args);
    manifest::write_json(&dir, manifest::JOBS, &jobs)?;
    Ok(Submitted {
        dir,
        number,
        runs: runs.len(),
        array,
        report,
    })
}

/// Builds (or finds in the store's cache) each distinct dataset of `runs`
/// once, here, so the tasks read it from the cache instead of building the
/// same entry at once on many nodes. A dataset that cannot be built is left
/// to its runs' tasks, which fail and record why, as local `runner exec` does.
fn prepare_datasets(runs: &[&PlannedRun], folders: &Folders, cache_dir: &Path) {
    let mut prepared = Vec::new();
    for run in runs {
        let key = (&run.config.dataset, run.config.encoder);
        if !prepared.contains(&key) {
            prepared.push(key);
            let _ = runner_data::dataset::build(&run.config, folders, cache_dir);
        }
    }
}

/// Writes the manifest, the frozen binary and the scripts into `dir`, then
/// submits the job array; returns the manifest and the array's job id.
fn freeze_and_submit(
    plan: &Plan,
    file: &Path,
    runs: &[&PlannedRun],
    options: &exec::Options,
    request: &Request,
    store: PathBuf,
    dir: &Path,
) -> Result<(Manifest, String), SlurmError> {
    let absolute = |path: &Path| {
        // A file in the current folder has an empty parent.
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        std::path::absolute(path).map_err(|source| SlurmError::Write {
            path: path.to_owned(),
            source,
        })
    };
    let runner = manifest::freeze_binaries(dir, &options.worker)?;
    let libtorch_lib = match &request.libtorch {
        Some(root) => Some(absolute(root)?.join("lib")),
        None => options.environment.libtorch_loaded_from.as_ref().map(PathBuf::from),
    };
    let manifest = Manifest {
        format: manifest::FORMAT,
        plan: plan.clone(),
        experiment_file: absolute(file)?,
        store,
        base_dir: absolute(&options.folders.base)?,
        workdir: absolute(Path::new("."))?,
        bundled: absolute(&options.folders.bundled)?,
        libtorch_lib,
        device: options.device,
        cuda_graph: options.cuda_graph,
        threads: options.threads,
        runs: runs.iter().map(|run| (*run).clone()).collect(),
    };
    manifest::write_json(dir, manifest::MANIFEST, &manifest)?;
    write_script(&dir.join("task.sh"), &script::task(&manifest, dir, &runner))?;
    write_script(&dir.join("report.sh"), &script::report(&manifest, dir, &runner))?;
    let array = sbatch(&script::array_args(&manifest, request, dir, runs.len())).map_err(|answer| match answer {
        Sbatch::NotStarted(source) => SlurmError::NoSbatch { source },
        Sbatch::Refused(answer) => SlurmError::Refused {
            what: "job array",
            answer,
        },
    })?;
    Ok((manifest, array))
}

/// Array task `index` of the submission whose manifest is at `path`: its
/// run as a one-run plan, and the options the executor trains it with (in
/// `worker`, the frozen one beside the frozen `runner`, which sees
/// `environment`).
pub fn task(
    path: &Path,
    index: usize,
    worker: Worker,
    environment: Environment,
) -> Result<(Plan, exec::Options), SlurmError> {
    let manifest = Manifest::read(path)?;
    let count = manifest.runs.len();
    let Some(run) = manifest.runs.into_iter().nth(index) else {
        return Err(SlurmError::NoTask {
            path: path.to_owned(),
            index,
            count,
        });
    };
    let plan = Plan {
        runs: vec![run],
        merged_duplicates: 0,
        expectations: Vec::new(),
        ..manifest.plan
    };
    let options = exec::Options {
        only: Vec::new(),
        failed_only: false,
        force: false,
        device: manifest.device,
        jobs: Some(1),
        threads: manifest.threads,
        openmp: exec::OpenMp::here(),
        cuda_graph: manifest.cuda_graph,
        folders: Folders {
            base: manifest.base_dir,
            bundled: manifest.bundled,
        },
        runs_root: manifest.store,
        worker,
        environment,
    };
    Ok((plan, options))
}

fn write_script(path: &Path, text: &str) -> Result<(), SlurmError> {
    let error = |source| SlurmError::Write {
        path: path.to_owned(),
        source,
    };
    runner_store::atomic::write(path, text.as_bytes()).map_err(error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(error)
}

/// Why sbatch gave no job id.
enum Sbatch {
    NotStarted(std::io::Error),
    Refused(String),
}

/// Runs `sbatch ARGS` and returns the job id it printed.
fn sbatch(args: &[String]) -> Result<String, Sbatch> {
    let output = Command::new("sbatch").args(args).output().map_err(Sbatch::NotStarted)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match script::parse_job_id(&stdout) {
        Some(id) if output.status.success() => Ok(id),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(Sbatch::Refused(format!("{}{}", stdout.trim(), stderr.trim())))
        }
    }
}
