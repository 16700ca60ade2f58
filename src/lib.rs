//! `runner`: experiments on velocity prediction for symbolic music, described
//! in KDL, planned into a matrix of training runs, trained with libtorch and
//! collated into Markdown reports.
//!
//! The crate is laid out by stage, each stage taking the previous one's
//! output:
//!
//! | stage | module | in → out |
//! |---|---|---|
//! | command line | [`cli`] | arguments → a [`cli::Command`] |
//! | environment | [`environment`] | libtorch and hardware → an [`environment::Environment`] |
//! | experiment language | [`spec`] | KDL files → a typed [`spec::Experiment`] |
//! | planner | [`plan`] | an experiment → a [`plan::Plan`] of resolved runs (and a run back → an experiment file) |
//! | data pipeline | [`data`] | MIDI files → pieces → quantized notes → token-id windows |
//! | models | [`model`] | a model config and vocabulary sizes → an encoder-decoder over token ids |
//! | training | [`train`] | a run config and its dataset → a trained model, metrics, checkpoints |
//! | executor | [`exec`] | a plan → trained runs in the runs store, skipping, resuming, isolating failures, in parallel worker processes across devices |
//! | report | [`report`] | a plan and its finished runs → `report.md` with tables, factor effects, verdicts, figures |
//! | benchmark | [`bench`] | options → throughput of the training step, the data side and greedy decoding |
//! | Slurm | [`slurm`] | a plan's pending runs → one job array and a collation job; the store and the queue → each run's state |
//!
//! [`atomic`] writes files whole or not at all.
#![deny(missing_docs)]

pub mod atomic;
pub mod bench;
pub mod cli;
pub mod data;
pub mod environment;
pub mod exec;
pub mod model;
pub mod plan;
pub mod report;
pub mod slurm;
pub mod spec;
pub mod train;
