//! Data folders: the `source midi-dir` / `hf-parquet` paths an experiment
//! writes, checked for existence (for `runner check`).
//!
//! In: an [`Experiment`]. Out: a problem at every written path that does
//! not exist, relative ones taken from the experiment file's folder.

use std::path::Path;

use runner_spec::value::Value;
use runner_spec::{Experiment, Kind, Override, Problem};

/// A problem for every `source ... path=` whose path does not exist.
pub(crate) fn missing_data(experiment: &Experiment) -> Vec<Problem> {
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
