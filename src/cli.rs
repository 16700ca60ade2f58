//! The command line: what the user typed, parsed by `clap`, with no I/O.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  runner check experiments/pathetique.kdl     validate an experiment file
  runner plan experiments/ablation.kdl        show the matrix of runs it expands to
  runner exec experiments/pathetique.kdl      train every run (CUDA when present)
  runner report experiments/pathetique.kdl    collate results into runs/<experiment>/report.md
  runner data inspect experiments/quickstart.kdl
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
    /// Show the libtorch version, CUDA availability, device count and CPU threads.
    Info {
        /// Also run a small computation on every device and compare it with the CPU's.
        #[arg(long)]
        check_devices: bool,
    },
}

/// A `runner data` subcommand; each works on one run's dataset (the first
/// run's unless `--run` names another).
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Build the dataset (or read it from the cache in runs/.datasets) and print
    /// pieces, notes and windows per split, bin edges, bin shares, velocities and skipped files.
    Inspect {
        /// The experiment file (KDL).
        file: PathBuf,
        /// The id of the run whose dataset to use (see `runner plan`).
        #[arg(long)]
        run: Option<String>,
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
            Command::Report { .. } => "report",
            Command::Data { .. } => "data",
            Command::Bench { .. } => "bench",
            Command::Info { .. } => "info",
        }
    }
}
