//! The `runner-worker` command line: what `runner` hands over to the
//! process that loads libtorch, parsed by `clap`, with no I/O. Its usage
//! lines say `runner`, since users type `runner bench ...` and `runner model
//! ...`, which `runner` forwards here unchanged.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The libtorch side of `runner`: trains runs for `runner exec`, and runs
/// `runner bench`, `runner model` and `runner info`.
#[derive(Debug, Parser)]
#[command(name = "runner", bin_name = "runner", disable_version_flag = true)]
pub struct WorkerCli {
    /// What to do.
    #[command(subcommand)]
    pub command: WorkerCommand,
}

/// A `runner-worker` subcommand.
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Train the run written as a JSON job on stdin, reporting events on stdout (started by
    /// `runner exec`).
    #[command(hide = true)]
    Serve,
    /// Show the libtorch version, CUDA availability, device count and CPU threads.
    Info {
        /// Also run a small computation on every device and compare it with the CPU's.
        #[arg(long)]
        check_devices: bool,
        /// Print JSON (what `runner exec` reads to place runs).
        #[arg(long, conflicts_with = "check_devices")]
        json: bool,
    },
    /// Measure throughput (see docs/perf.md).
    Bench {
        /// What to measure.
        #[command(subcommand)]
        action: BenchCommand,
    },
    /// Write a trained run's weights for other tools: a T5 run as a HuggingFace checkpoint
    /// (config.json, model.safetensors), a vanilla run's with runner-vanilla.json, which
    /// documents them.
    #[command(after_help = "\
A T5 run exports when HuggingFace's T5ForConditionalGeneration computes it exactly (encoder shared,
norm pre, positions relative, tied embeddings); its config.json's `runner` key holds the velocity
ids and the decoder prefix.

Examples:
  runner export 3fa2 --hf hf/3fa2/
  runner export runs/quickstart/3fa2c1d0 --hf exported/ --force")]
    Export {
        /// The run: its folder, or its id or an id prefix unique in the store.
        run: String,
        /// The folder to write (created when missing; it must be empty).
        #[arg(long, value_name = "DIR")]
        hf: PathBuf,
        /// Write into DIR even when it holds files, replacing those of the same names.
        #[arg(long)]
        force: bool,
        /// The runs store that run ids are looked up in.
        #[arg(long, value_name = "DIR", default_value = "runs")]
        store: PathBuf,
    },
    /// Run a trained run's network (see tests/peer/).
    Model {
        /// What to do with it.
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Predict the velocity of every note of MIDI (or parquet) files with a finished run, and write
    /// them as MIDI files with the predicted velocities.
    Predict(PredictArgs),
}

/// The arguments of `runner predict`, as typed.
#[derive(Debug, Args)]
#[command(after_help = "\
Each input is read with the run's own settings (sustain threshold, bin edges, window length).
Every note is predicted once, greedily, from the window it is most central in (windows every
half window length, one more ending at the last note). The output MIDI file is the input file
with only its note-on velocities changed (predictions of 0 are written as 1, which stays a
note-on). The MAE against the input's velocities is printed two ways: each note once, and over
the run's own windows (its length and step), which is how `runner exec` scores a split: over a
run's test pieces it is the run's greedy test dist.

Examples:
  runner predict 3fa2 data/bundled/piece.midi --out predicted/
  runner predict runs/quickstart/3fa2c1d0 a.mid b.mid --out out/ --json")]
pub struct PredictArgs {
    /// The run: its folder, or its id or an id prefix unique in the store.
    pub run: String,
    /// MIDI files (.mid, .midi) or parquet files of pieces (HuggingFace maestro layout).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// The folder to write `<name>.mid` (and with --json `<name>.notes.json`) into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Also write a per-note table: pitch, start, end, input velocity, predicted velocity.
    #[arg(long)]
    pub json: bool,
    /// Device: auto, cpu, cuda or cuda:K.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: String,
    /// The runs store that run ids are looked up in.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub store: PathBuf,
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
