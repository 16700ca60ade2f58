//! The experiment language: KDL v2 files → a typed [`Experiment`].
//!
//! In: a path. Out: an [`Experiment`] (every value with its span) and the
//! [`Sources`] it was read from, or a [`SpecError`] holding every problem
//! found in every file. `extends "base.kdl"` is followed here: the base's
//! settings come first and this file's override them.
//!
//! The stages: [`parse`] checks one file against the [`schema`]; [`load`]
//! follows `extends` and merges. Expansion into runs is the planner's job
//! (the `runner-plan` crate). The language is documented in `docs/dsl.md`.

#![deny(missing_docs)]

pub mod error;
pub mod file;
pub mod parse;
pub mod schema;
pub mod source;
pub mod value;

use std::path::{Path, PathBuf};

pub use error::{Kind, Problem, SpecError};
pub use file::{Expectation, Matrix, Override, Variant};
pub use source::{Sources, Span, Spanned};

/// An experiment with its `extends` chain merged.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The experiment's name (the last file's).
    pub name: Spanned<String>,
    /// One-line description.
    pub description: Option<String>,
    /// Seeds per run (default 1).
    pub repeats: u32,
    /// The settings every run starts from: the base file's, then this file's.
    pub settings: Vec<Override>,
    /// The variants of every file in the chain (a later one replaces an
    /// earlier one of the same name).
    pub variants: Vec<Variant>,
    /// The matrix of the last file that has one.
    pub matrix: Option<Matrix>,
    /// This file's expectations (they are not inherited).
    pub expectations: Vec<Expectation>,
    /// The file the experiment was loaded from.
    pub path: PathBuf,
}

/// Reads an experiment file and every file it extends.
pub fn load(path: &Path) -> Result<(Experiment, Sources), SpecError> {
    let mut sources = Sources::default();
    let mut problems = Vec::new();
    let experiment = load_chain(path, None, &mut Vec::new(), &mut sources, &mut problems);
    match experiment {
        Some(experiment) if problems.is_empty() => Ok((experiment, sources)),
        _ => Err(SpecError::new(&path.display().to_string(), problems, &sources)),
    }
}

fn load_chain(
    path: &Path,
    extended_at: Option<Span>,
    chain: &mut Vec<PathBuf>,
    sources: &mut Sources,
    problems: &mut Vec<Problem>,
) -> Option<Experiment> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            let message = format!("cannot read `{}`: {error}", path.display());
            problems.push(match extended_at {
                Some(span) => Problem::at(Kind::MissingFile, span, "extended here", message),
                None => Problem::whole(Kind::MissingFile, message),
            });
            return None;
        }
    };
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let id = sources.add(path, text);
    let file = match parse::parse(&sources.file(id).text, id) {
        Ok(file) => file,
        Err(found) => {
            problems.extend(found);
            return None;
        }
    };
    chain.push(canonical);
    let base = match &file.extends {
        Some(target) => {
            let base_path = path.parent().unwrap_or(Path::new(".")).join(&target.value);
            let base_canonical = std::fs::canonicalize(&base_path).unwrap_or_else(|_| base_path.clone());
            if chain.contains(&base_canonical) {
                let cycle: Vec<String> = chain.iter().chain([&base_canonical]).map(|p| file_name(p)).collect();
                problems.push(
                    Problem::at(
                        Kind::ExtendsCycle,
                        target.span,
                        "extends a file already in the chain",
                        "`extends` makes a cycle",
                    )
                    .help(cycle.join(" → ")),
                );
                None
            } else {
                Some(load_chain(&base_path, Some(target.span), chain, sources, problems)?)
            }
        }
        None => None,
    };
    chain.pop();
    let own = Experiment {
        name: file.name,
        description: file.description,
        repeats: file.repeats.as_ref().map_or(1, |r| r.value),
        settings: file.settings,
        variants: file.variants,
        matrix: file.matrix,
        expectations: file.expectations,
        path: path.to_owned(),
    };
    Some(match base {
        Some(base) => merge(base, own, file.repeats.is_some()),
        None => own,
    })
}

/// `own` on top of `base`.
fn merge(base: Experiment, own: Experiment, own_sets_repeats: bool) -> Experiment {
    let mut variants: Vec<Variant> = base
        .variants
        .into_iter()
        .filter(|b| !own.variants.iter().any(|o| o.name.value == b.name.value))
        .collect();
    variants.extend(own.variants);
    Experiment {
        name: own.name,
        description: own.description.or(base.description),
        repeats: if own_sets_repeats { own.repeats } else { base.repeats },
        settings: base.settings.into_iter().chain(own.settings).collect(),
        variants,
        matrix: own.matrix.or(base.matrix),
        expectations: own.expectations,
        path: own.path,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
