//! `runner bench train`: throughput of the training step, the data side and
//! greedy decoding, measured the way FACTS.md section 8 measures PyTorch.
//!
//! In: [`Options`] (device, batch sizes, precisions, steps, warm-up,
//! architecture, CUDA graphs). Out: a [`Report`], shown as tables
//! ([`Report::tables`]) or JSON ([`Report::json`]) for
//! `scripts/bench-train`, which sets it beside `benches/pytorch_reference.py`.
//!
//! | part | module | measures |
//! |---|---|---|
//! | training step | [`train`] | sequences/s and ms per optimizer step of the write-up model on random tokens |
//! | data side | [`data`] | uploading a MAESTRO-scale split to the device, gathering batches there |
//! | greedy decoding | [`data`] | windows/s of the evaluation's greedy decoder |
//!
//! Every timed region starts and ends with a device synchronisation, after
//! warm-up. A cell that fails (out of memory, say) is reported with its
//! reason and the others still run.

pub mod data;
pub mod train;

use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::Style;
use tch::Device;

use crate::cli::BenchTrainArgs;
use crate::optimizer::Kernels;
use runner_plan::config::{Architecture, DevicePreference, Precision, Scheme};

/// What to measure, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The device.
    pub device: Device,
    /// Windows per step.
    pub batches: Vec<i64>,
    /// Precisions (bf16 is autocast, CUDA only).
    pub precisions: Vec<Precision>,
    /// Timed steps per cell.
    pub steps: usize,
    /// Untimed steps before them.
    pub warmup: usize,
    /// The architecture.
    pub architecture: Architecture,
    /// The token scheme (vocabulary sizes and ids).
    pub scheme: Scheme,
    /// How the optimizer computes its update.
    pub kernels: Kernels,
    /// Capture the training step in a CUDA graph (CUDA only).
    pub cuda_graph: bool,
    /// Also time the data side.
    pub data: bool,
    /// Windows to decode greedily (0: skip).
    pub greedy_windows: i64,
}

impl Options {
    /// The options the flags describe, or what is wrong with them.
    pub fn from_args(args: &BenchTrainArgs) -> Result<Options, String> {
        let preference =
            DevicePreference::parse(&args.device).ok_or_else(|| format!("unknown device `{}`", args.device))?;
        let device = crate::job::device_for(preference)?;
        let precisions = args
            .precision
            .iter()
            .map(|p| match p.as_str() {
                "fp32" => Ok(Precision::Fp32),
                "bf16" => Ok(Precision::Bf16),
                other => Err(format!("unknown precision `{other}` (fp32 or bf16)")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let architecture = match args.arch.as_str() {
            "vanilla" => Architecture::Vanilla,
            "t5" => Architecture::T5,
            other => return Err(format!("unknown architecture `{other}` (vanilla or t5)")),
        };
        let scheme = match args.scheme.as_str() {
            "separate" => Scheme::Separate,
            "shared" => Scheme::Shared,
            other => return Err(format!("unknown token scheme `{other}` (separate or shared)")),
        };
        let kernels = match args.optimizer.as_str() {
            "fused" => Kernels::Fused,
            "per-tensor" => Kernels::PerTensor,
            other => return Err(format!("unknown optimizer kernels `{other}` (fused or per-tensor)")),
        };
        if args.batch.iter().any(|&b| b < 1) || args.batch.is_empty() {
            return Err("--batch needs sizes of at least 1".to_owned());
        }
        if args.steps == 0 {
            return Err("--steps must be at least 1".to_owned());
        }
        let greedy_default = if device.is_cuda() { 64 } else { 2 };
        Ok(Options {
            device,
            batches: args.batch.clone(),
            precisions,
            steps: args.steps,
            warmup: args.warmup,
            architecture,
            scheme,
            kernels,
            cuda_graph: args.cuda_graph,
            data: !args.no_data,
            greedy_windows: args.greedy_windows.unwrap_or(greedy_default).max(0),
        })
    }
}

/// Everything measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The device, as libtorch names it.
    pub device: String,
    /// The libtorch version.
    pub libtorch: String,
    /// CPU threads libtorch uses.
    pub threads: i64,
    /// Training steps, one entry per (batch, precision).
    pub train: Vec<train::TrainCell>,
    /// Data side, when measured.
    pub data: Option<data::DataTiming>,
    /// Greedy decoding, when measured.
    pub greedy: Option<data::GreedyTiming>,
}

/// Runs every measurement `options` asks for.
pub fn run(options: &Options) -> Report {
    let train = train::run(options);
    let data = options.data.then(|| data::time_data(options.device, &options.batches));
    let greedy = (options.greedy_windows > 0).then(|| {
        data::time_greedy(
            options.device,
            options.architecture,
            options.scheme,
            options.greedy_windows,
        )
    });
    Report {
        device: crate::environment::device_name(options.device),
        libtorch: env!("RUNNER_LIBTORCH_VERSION").to_owned(),
        threads: i64::from(tch::get_num_threads()),
        train,
        data,
        greedy,
    }
}

/// Synchronises `device` (a no-op on the CPU): timed regions start and end here.
pub fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

/// CPU seconds this process has used (every thread, user and system): on a
/// shared machine it measures the work done where wall time also counts
/// the waiting.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// A number for a table, or `-`.
fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

impl Report {
    /// Pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// The terminal tables: training steps, then the data side and greedy
    /// decoding when measured.
    pub fn tables(&self) -> String {
        let mut out = format!(
            "runner bench train on {} (libtorch {}, {} CPU threads)\n",
            self.device, self.libtorch, self.threads
        );
        let mut builder = Builder::default();
        builder.push_record([
            "arch",
            "scheme",
            "batch",
            "precision",
            "step",
            "adam",
            "seq/s",
            "ms/step",
            "cpu ms/step",
            "loss",
            "note",
        ]);
        for c in &self.train {
            builder.push_record([
                c.arch.clone(),
                c.scheme.clone(),
                c.batch.to_string(),
                c.precision.clone(),
                c.mode.clone(),
                c.optimizer.clone(),
                cell(c.seq_per_s, 1),
                cell(c.ms_per_step, 2),
                cell(c.cpu_ms_per_step, 1),
                cell(c.loss, 4),
                c.note.clone().unwrap_or_default(),
            ]);
        }
        let mut table = builder.build();
        table.with(Style::rounded());
        out.push_str(&format!("{table}\n"));
        if let Some(d) = &self.data {
            let mut builder = Builder::default();
            builder.push_record(["batch", "batches/s", "windows/s"]);
            for g in &d.gather {
                builder.push_record([
                    g.batch.to_string(),
                    format!("{:.0}", g.batches_per_s),
                    format!("{:.0}", g.batches_per_s * g.batch as f64),
                ]);
            }
            let mut table = builder.build();
            table.with(Style::rounded());
            out.push_str(&format!(
                "data: {} windows uploaded in {:.3} s; batches gathered on the device:\n{table}\n",
                d.windows, d.upload_s
            ));
        }
        if let Some(g) = &self.greedy {
            out.push_str(&format!(
                "greedy decoding: {} windows of {} notes in batches of {}: {:.1} windows/s ({:.2} s)\n",
                g.windows, g.notes, g.batch, g.windows_per_s, g.seconds
            ));
        }
        out
    }
}
