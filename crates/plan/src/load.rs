//! The driver: an experiment file → a [`Plan`], with every problem of the
//! file and of its runs in one [`SpecError`].
//!
//! In: a path. Out: the plan, or every problem found: the parser's, then
//! the planner's on what parsed (so a misspelt field and a selector that
//! matches no run are reported together), then, for [`check`], the data
//! folders that do not exist.

use std::path::Path;

use runner_spec::value::Value;
use runner_spec::{Experiment, Kind, Override, Problem, SpecError};

use crate::{Plan, expand};

/// Loads and plans an experiment file.
pub fn load(path: &Path) -> Result<Plan, SpecError> {
    drive(path, false)
}

/// Loads and plans an experiment file, and checks that the data folders it
/// names exist (relative ones are taken from the file's folder).
pub fn check(path: &Path) -> Result<Plan, SpecError> {
    drive(path, true)
}

fn drive(path: &Path, data: bool) -> Result<Plan, SpecError> {
    let mut loaded = runner_spec::load_all(path);
    if let Some(experiment) = &loaded.experiment {
        if data {
            loaded.problems.extend(missing_data(experiment));
        }
        match expand(experiment) {
            Ok(plan) if loaded.problems.is_empty() => return Ok(plan),
            Ok(_) => {}
            Err(found) => loaded.problems.extend(found),
        }
    }
    Err(loaded.error(path))
}

/// A problem for every `source ... path=` whose path does not exist.
fn missing_data(experiment: &Experiment) -> Vec<Problem> {
    let folder = experiment
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let variants = experiment.variants.iter().flat_map(|v| &v.overrides);
    let axes = experiment
        .matrix
        .iter()
        .flat_map(|m| &m.factors)
        .flat_map(|f| f.axes())
        .flat_map(|a| &a.values)
        .flat_map(|v| &v.overrides);
    experiment
        .settings
        .iter()
        .chain(variants)
        .chain(axes)
        .flat_map(source_paths)
        .filter(|(written, _)| !folder.join(written).exists())
        .map(|(written, span)| {
            Problem::at(
                Kind::MissingData {
                    path: written.to_owned(),
                },
                span,
            )
            .help(format!(
                "looked in `{}`: a relative path is taken from the experiment file's folder",
                folder.display()
            ))
        })
        .collect()
}

/// The data paths an override writes, with their spans.
fn source_paths(item: &Override) -> Vec<(&str, runner_spec::Span)> {
    match item {
        Override::Choose {
            path: "dataset.source",
            fields,
            ..
        } => fields
            .iter()
            .filter_map(|(name, value, span)| match (name, value) {
                (&"path", Value::Str(path)) => Some((path.as_str(), *span)),
                _ => None,
            })
            .collect(),
        Override::Tweak {
            choice: "dataset.source",
            field: "path",
            value: Value::Str(path),
            span,
        } => vec![(path.as_str(), *span)],
        _ => Vec::new(),
    }
}
