//! The experiment language: KDL v2 files → a typed [`Experiment`].
//!
//! In: a path. Out: an [`Experiment`] (every value with its span) and the
//! [`Sources`] it was read from, or a [`SpecError`] holding every problem
//! found in every file. `extends "base.kdl"` is followed here: the base's
//! settings come first and this file's override them.
//!
//! The stages: [`parse`] checks one file against the [`schema`]; [`load`]
//! follows `extends`, merges, and draws the values of sampled axes from the
//! experiment's seed; [`load_all`] does the same but keeps what
//! could be read beside the problems, so the planner can check it too. Expansion into runs is the planner's job
//! (the `runner-plan` crate). The language is documented in `docs/dsl.md`.

#![deny(missing_docs)]

pub mod error;
mod extends;
pub mod file;
pub mod parse;
mod sample;
pub mod schema;
pub mod source;
pub mod value;

use std::path::Path;

pub use error::{Kind, Problem, SpecError};
pub use file::{Expectation, Experiment, Matrix, Override, Variant};
pub use source::{Sources, Span, Spanned};

/// Reads an experiment file and every file it extends; fails with every
/// problem found.
pub fn load(path: &Path) -> Result<(Experiment, Sources), SpecError> {
    let loaded = load_all(path);
    match loaded.experiment {
        Some(experiment) if loaded.problems.is_empty() => Ok((experiment, loaded.sources)),
        _ => Err(loaded.error(path)),
    }
}

/// What [`load_all`] found.
#[derive(Debug)]
pub struct Loaded {
    /// The experiment as far as it could be read: the parts with problems
    /// left out, a base that cannot be read left out. `None` when the file
    /// cannot be read, is not KDL or declares no experiment.
    pub experiment: Option<Experiment>,
    /// The files read.
    pub sources: Sources,
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
}

impl Loaded {
    /// The problems as one error about `path`.
    pub fn error(self, path: &Path) -> SpecError {
        SpecError::new(&path.display().to_string(), self.problems, &self.sources)
    }
}

/// Reads an experiment file and every file it extends, keeping what can be
/// read even when there are problems (so that the planner can check it too).
pub fn load_all(path: &Path) -> Loaded {
    let mut sources = Sources::default();
    let mut problems = Vec::new();
    let mut experiment = extends::load_chain(path, None, &mut Vec::new(), &mut sources, &mut problems);
    if let Some(experiment) = &mut experiment {
        sample::draw_axes(experiment, &mut problems);
    }
    Loaded {
        experiment,
        sources,
        problems,
    }
}
