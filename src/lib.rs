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
//! | planner | [`plan`] | an experiment → a [`plan::Plan`] of resolved runs |
//! | data pipeline | [`data`] | MIDI files → pieces → quantized notes → token-id windows |
//!
//! Stages still to come (see the issues): the training loop and evaluation
//! (in `train`), the executor (`exec`) and the report (`report`).
#![deny(missing_docs)]

pub mod cli;
pub mod data;
pub mod environment;
pub mod plan;
pub mod spec;
