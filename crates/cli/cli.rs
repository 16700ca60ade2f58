//! The command line: what the user typed, parsed by `clap`, with no I/O.
//! `runner bench`, `model`, `predict` and `export` are parsed by
//! `runner-worker`, which they are handed to unchanged.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use runner_plan::config::CudaGraph;

const EXAMPLES: &str = "\
Examples:
  runner check experiments/pathetique.kdl     validate an experiment file
  runner plan experiments/ablation.kdl        show the matrix of runs it expands to
  runner exec experiments/pathetique.kdl      train every run (CUDA when present)
  runner exec experiments/ablation.kdl --backend slurm --partition gpu --gpus-per-run 1
                                              hand the runs to Slurm as one job array
  runner status experiments/ablation.kdl      each run's state, epoch, metrics and ETA (and Slurm's word)
  runner report experiments/pathetique.kdl    collate results into runs/<experiment>/report.md
  runner data inspect experiments/quickstart.kdl
  runner model logits runs/quickstart/<id> --ids ids.json --json
                                              a trained run's logits and greedy picks on given ids
  runner predict <id> piece.midi --out predicted/
                                              a finished run's velocities for a MIDI file, as MIDI
  runner export <id> --hf hf/<id>/            a T5 run as a HuggingFace checkpoint
  runner info                                 libtorch version, CUDA devices, CPU threads
  runner bench train --batch 16,64            training throughput of the write-up model";

/// Plan, train and compare velocity-prediction models for symbolic music.
#[derive(Debug, Parser)]
#[command(name = "runner", after_help = EXAMPLES, disable_version_flag = true)]
pub struct Cli {
    /// Print the version, the libtorch in use, CUDA availability and CPU threads.
    #[arg(short = 'V', long)]
    pub version: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A `runner` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate experiment files and report every problem found.
    Check {
        /// Experiment files (KDL).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Expand an experiment file into its matrix of runs and show it.
    Plan {
        /// The experiment file (KDL).
        file: PathBuf,
        /// Print every run's fully resolved configuration as JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// The runs store whose status is shown (default: runs/ in the current folder).
        #[arg(long, value_name = "DIR", default_value = "runs")]
        store: PathBuf,
    },
    /// Train every planned run that is not done yet.
    Exec {
        /// The experiment file (KDL).
        file: PathBuf,
        /// Only runs matching this: an id prefix, a variant name, or `axis=value` pairs
        /// (repeatable).
        #[arg(long, value_name = "ID|VARIANT|FILTER")]
        only: Vec<String>,
        /// Only runs that failed before.
        #[arg(long)]
        failed_only: bool,
        /// Train again runs that are done.
        #[arg(long)]
        force: bool,
        /// Device for every run: cpu, cuda or cuda:K (default: each run's `train.device`, auto).
        #[arg(long, value_name = "DEVICE")]
        device: Option<String>,
        /// Runs trained at once, each in its own process (default: one per CUDA device when the
        /// runs go to CUDA, else 1; on the CPU each gets cores/N threads).
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// libtorch threads per run on the CPU (default: cores/jobs). CPU results depend on it
        /// (each run records its count, and a resumed run keeps it): fix it to train runs
        /// that do not depend on --jobs.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        threads: Option<u16>,
        /// Replay a captured CUDA graph of each training step on CUDA: auto (capture, else
        /// eager with the reason in the summary), on (fail a run that cannot be captured) or off.
        #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = parse_cuda_graph)]
        cuda_graph: CudaGraph,
        /// Show what would run, and do nothing.
        #[arg(long)]
        dry_run: bool,
        /// The runs store (default: runs/ in the current folder).
        #[arg(long, value_name = "DIR", default_value = "runs")]
        store: PathBuf,
        /// Where the runs train: here, one after another, or on a Slurm cluster as one job array.
        #[arg(long, value_enum, default_value_t = Backend::Local)]
        backend: Backend,
        /// Options of `--backend slurm`.
        #[command(flatten)]
        slurm: SlurmArgs,
    },
    /// Show each run's state (the runs store's, merged with what Slurm says about submitted
    /// runs), epochs done, latest metrics, and the ETA of runs training now.
    Status {
        /// The experiment file (KDL).
        file: PathBuf,
        /// Print the status as JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// The runs store (default: runs/ in the current folder).
        #[arg(long, value_name = "DIR", default_value = "runs")]
        store: PathBuf,
    },
    /// Train one run of a Slurm submission (what each array task runs).
    #[command(hide = true)]
    SlurmTask {
        /// The submission's manifest.json.
        manifest: PathBuf,
        /// The array task's index (`$SLURM_ARRAY_TASK_ID`).
        #[arg(long)]
        index: usize,
    },
    /// Write the report of a Slurm submission from its frozen plan (what the collation job runs).
    #[command(hide = true)]
    SlurmReport {
        /// The submission's manifest.json.
        manifest: PathBuf,
    },
    /// Collate an experiment's results into Markdown tables and plots; several files make one report
    /// comparing their experiments.
    Report {
        /// The experiment files (KDL): one, or several to compare (cells keyed by experiment and labels).
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Where to write the Markdown report (default: <store>/<experiment>/report.md, for several
        /// <store>/<A>+<B>/report.md); figures go in `figures/` beside it.
        #[arg(short = 'o', long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// The runs store to read (default: runs/ in the current folder).
        #[arg(long, value_name = "DIR", default_value = "runs")]
        store: PathBuf,
    },
    /// Inspect or export the dataset an experiment uses.
    Data {
        /// What to do with it.
        #[command(subcommand)]
        action: DataCommand,
    },
    /// Measure throughput (see docs/perf.md; `runner bench train --help`).
    #[command(disable_help_flag = true)]
    Bench {
        /// `train` and its flags, handed to runner-worker.
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
    /// Run a trained run's network (see tests/peer/; `runner model logits --help`).
    #[command(disable_help_flag = true)]
    Model {
        /// `logits` and its arguments, handed to runner-worker.
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
    /// Predict every note's velocity in MIDI files with a finished run, written as MIDI files
    /// (`runner predict --help`).
    #[command(disable_help_flag = true)]
    Predict {
        /// RUN INPUT... --out DIR, handed to runner-worker.
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
    /// Write a trained run's weights for other tools: a T5 run as a HuggingFace checkpoint, a
    /// vanilla run's with a JSON file that documents them (`runner export --help`).
    #[command(disable_help_flag = true)]
    Export {
        /// RUN --hf DIR, handed to runner-worker.
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
    /// Show the libtorch version, CUDA availability, device count and CPU threads.
    Info {
        /// Also run a small computation on every device and compare it with the CPU's.
        #[arg(long)]
        check_devices: bool,
    },
}

/// Where `runner exec` trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// On this machine, `--jobs` runs at a time.
    Local,
    /// On a Slurm cluster: one array task per run, then a job that writes the report.
    Slurm,
}

/// The options of `runner exec --backend slurm`, as typed.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Slurm (with --backend slurm)")]
pub struct SlurmArgs {
    /// The partition to submit to (default: the cluster's default partition).
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// GPUs per run, asked for as `--gres=gpu:N`.
    #[arg(long, value_name = "N")]
    pub gpus_per_run: Option<u32>,
    /// At most this many runs at once (the array's `%K`).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: Option<u32>,
    /// Each run's time limit, in sbatch's format (e.g. `4:00:00`, `1-12:00:00`).
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// One more argument for sbatch, e.g. `--sbatch-arg=--account=proj` (repeatable; given to both jobs).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_arg: Vec<String>,
    /// The libtorch folder (holding lib/) on the nodes, when it is not where this runner loaded it from.
    #[arg(long, value_name = "DIR")]
    pub libtorch: Option<PathBuf>,
}

impl SlurmArgs {
    /// The options given, as `--flag` names, to refuse them without `--backend slurm`.
    pub fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        for (set, name) in [
            (self.partition.is_some(), "--partition"),
            (self.gpus_per_run.is_some(), "--gpus-per-run"),
            (self.max_parallel.is_some(), "--max-parallel"),
            (self.time.is_some(), "--time"),
            (!self.sbatch_arg.is_empty(), "--sbatch-arg"),
            (self.libtorch.is_some(), "--libtorch"),
        ] {
            if set {
                given.push(name);
            }
        }
        given
    }
}

/// A `runner data` subcommand; each works on one run's dataset (the first
/// run's unless `--run` names another).
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Build the dataset (or read it from the cache in the store's .datasets) and print
    /// groups, pieces, notes and windows per split, bin edges, bin shares, velocities,
    /// skipped files, duplicates and warnings.
    Inspect {
        /// The experiment file (KDL).
        file: PathBuf,
        /// The id of the run whose dataset to use (see `runner plan`).
        #[arg(long)]
        run: Option<String>,
        /// The runs store whose dataset cache (`.datasets`) to use, as `runner exec --store`.
        #[arg(long, default_value = "runs")]
        store: PathBuf,
        /// Print JSON: every piece with its group, split, notes, distinct velocities,
        /// duplicate-of and warnings.
        #[arg(long)]
        json: bool,
    },
    /// Write the dataset's pieces, with their splits, as parquet in the HuggingFace maestro layout.
    Export {
        /// The experiment file (KDL).
        file: PathBuf,
        /// The folder to write `dataset.parquet` into.
        #[arg(long)]
        out: PathBuf,
        /// The id of the run whose dataset to use (see `runner plan`).
        #[arg(long)]
        run: Option<String>,
    },
}

/// `--cuda-graph`'s value.
fn parse_cuda_graph(text: &str) -> Result<CudaGraph, String> {
    CudaGraph::parse(text).ok_or_else(|| format!("expected one of {}", CudaGraph::WORDS.join(", ")))
}
