//! The command line: what the user typed, parsed by `clap`, with no I/O.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  runner check experiments/pathetique.kdl     validate an experiment file
  runner plan experiments/ablation.kdl        show the matrix of runs it expands to
  runner exec experiments/pathetique.kdl      train every run (CUDA when present)
  runner exec experiments/ablation.kdl --backend slurm --partition gpu --gpus-per-run 1
                                              hand the runs to Slurm as one job array
  runner status experiments/ablation.kdl      each run's state, with what Slurm says about it
  runner report experiments/pathetique.kdl    collate results into runs/<experiment>/report.md
  runner data inspect experiments/quickstart.kdl
  runner model logits runs/quickstart/<id> --ids ids.json --json
                                              a trained run's logits and greedy picks on given ids
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
    /// Show each run's state: the runs store's, merged with what Slurm says about submitted runs.
    Status {
        /// The experiment file (KDL).
        file: PathBuf,
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
    /// Train one run handed over by `runner exec --jobs N` (internal).
    #[command(name = "exec-worker", hide = true)]
    ExecWorker,
    /// Collate an experiment's results into Markdown tables and plots.
    Report {
        /// The experiment file (KDL).
        file: PathBuf,
        /// Where to write the Markdown report (default: <store>/<experiment>/report.md); figures go in
        /// `figures/` beside it.
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
    /// Measure throughput (see docs/perf.md).
    Bench {
        /// What to measure.
        #[command(subcommand)]
        action: BenchCommand,
    },
    /// Run a trained run's network (see tests/peer/).
    Model {
        /// What to do with it.
        #[command(subcommand)]
        action: ModelAction,
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
    /// In this process, one run after another.
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
    /// pieces, notes and windows per split, bin edges, bin shares, velocities and skipped files.
    Inspect {
        /// The experiment file (KDL).
        file: PathBuf,
        /// The id of the run whose dataset to use (see `runner plan`).
        #[arg(long)]
        run: Option<String>,
        /// The runs store whose dataset cache (`.datasets`) to use, as `runner exec --store`.
        #[arg(long, default_value = "runs")]
        store: PathBuf,
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

/// A `runner model` subcommand.
#[derive(Debug, Subcommand)]
pub enum ModelAction {
    /// Teacher-forced logits (eval mode, on the CPU) and greedy velocities of a trained run on
    /// given ids; with `tgt_out` in the ids, also the run's loss on them.
    Logits {
        /// The run folder (holding config.json and checkpoint/).
        run: PathBuf,
        /// JSON `{"src": [[id, ..], ..], "tgt_in": [[..]], "tgt_out": [[..]]}` (batch x length;
        /// tgt_out optional).
        #[arg(long, value_name = "FILE")]
        ids: PathBuf,
        /// Print JSON `{"logits", "greedy", "velocity_ids", "loss"}` instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

/// A `runner bench` subcommand.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time training steps of the write-up model (4+4 layers, d 256, random tokens, Adam), the data
    /// side and greedy decoding.
    Train(BenchTrainArgs),
}

/// The flags of `runner bench train`, as typed.
#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    /// Device: auto, cpu, cuda or cuda:K.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: String,
    /// Windows per step (comma-separated).
    #[arg(long, value_name = "N,..", value_delimiter = ',', default_value = "16,64,256")]
    pub batch: Vec<i64>,
    /// Precisions: fp32, bf16 (comma-separated; bf16 is CUDA only).
    #[arg(long, value_name = "P,..", value_delimiter = ',', default_value = "fp32,bf16")]
    pub precision: Vec<String>,
    /// Timed steps per cell.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps before them.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Architecture: vanilla or t5.
    #[arg(long, value_name = "ARCH", default_value = "vanilla")]
    pub arch: String,
    /// Token scheme: separate (6,601 source and 129 target ids, as
    /// midi-translation) or shared (one vocabulary of 6,730, as hf-t5)
    #[arg(long, value_name = "SCHEME", default_value = "separate")]
    pub scheme: String,
    /// Optimizer kernels: fused (multi-tensor; the default, as training uses) or per-tensor (the
    /// reference loop).
    #[arg(long, value_name = "KERNELS", default_value = "fused")]
    pub optimizer: String,
    /// Capture the whole training step in a CUDA graph (falls back to eager, with a note, when
    /// capture fails).
    #[arg(long)]
    pub cuda_graph: bool,
    /// Skip the data-side measurement.
    #[arg(long)]
    pub no_data: bool,
    /// Windows to decode greedily (0 skips; default 64, 2 on the CPU).
    #[arg(long, value_name = "N")]
    pub greedy_windows: Option<i64>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl Command {
    /// The subcommand's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Check { .. } => "check",
            Command::Plan { .. } => "plan",
            Command::Exec { .. } => "exec",
            Command::ExecWorker => "exec-worker",
            Command::Status { .. } => "status",
            Command::SlurmTask { .. } => "slurm-task",
            Command::Report { .. } => "report",
            Command::Data { .. } => "data",
            Command::Bench { .. } => "bench",
            Command::Model { .. } => "model",
            Command::Info { .. } => "info",
        }
    }
}
