//! Data paths: the `source midi-dir` / `hf-parquet` folders and the
//! metadata tables (`split table path=`, `group column table=`) an
//! experiment writes, checked for existence (for `runner check`).
//!
//! In: an [`Experiment`]. Out: a problem at every written path that does
//! not exist, relative ones taken from the experiment file's folder.

use std::path::Path;

use runner_spec::value::Value;
use runner_spec::{Experiment, Kind, Override, Problem};

/// A problem for every data path written that does not exist.
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
        .filter(|(_, written, _)| !folder.join(written).exists())
        .map(|(what, written, span)| {
            Problem::at(
                Kind::MissingData {
                    path: written.to_owned(),
                    what,
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

/// The choices whose fields name data paths: (choice, field, what it names).
const DATA_PATHS: [(&str, &str, &str); 3] = [
    ("dataset.source", "path", "data folder"),
    ("dataset.split", "path", "metadata table"),
    ("dataset.group", "table", "metadata table"),
];

/// The data paths an override writes, with what they name and their spans.
fn source_paths(item: &Override) -> Vec<(&'static str, &str, runner_spec::Span)> {
    match item {
        Override::Choose { path, fields, .. } => fields
            .iter()
            .filter_map(|(name, value, span)| {
                let (_, _, what) = DATA_PATHS.iter().find(|(c, f, _)| c == path && f == name)?;
                Some((*what, value.as_str()?, *span))
            })
            .collect(),
        Override::Tweak {
            choice,
            field,
            value: Value::Str(written),
            span,
        } => DATA_PATHS
            .iter()
            .filter(|(c, f, _)| c == choice && f == field)
            .map(|(_, _, what)| (*what, written.as_str(), *span))
            .collect(),
        _ => Vec::new(),
    }
}
