//! `extends "base.kdl"`: the chain of files an experiment builds on.
//!
//! In: the path of an experiment file. Out: the [`Experiment`] of its whole
//! chain, the base's settings first, with every problem of every file added
//! to a list. A base that cannot be read is reported (with the closest
//! `.kdl` file of its folder) and left out, so the rest is still checked.

use std::path::{Path, PathBuf};

use crate::error::{Kind, Problem, did_you_mean};
use crate::file::{Experiment, ExperimentFile, Variant};
use crate::parse;
use crate::source::{Sources, Span, Spanned};

/// The experiment at `path` merged onto its bases; `chain` holds the files
/// that extend it (to find cycles).
pub(crate) fn load_chain(
    path: &Path,
    extended_at: Option<&Spanned<String>>,
    chain: &mut Vec<PathBuf>,
    sources: &mut Sources,
    problems: &mut Vec<Problem>,
) -> Option<Experiment> {
    let text = match std::fs::read(path).map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(error)) => {
            problems.push(not_utf8(
                path,
                extended_at,
                error.as_bytes(),
                error.utf8_error().valid_up_to(),
            ));
            return None;
        }
        Err(error) => {
            problems.push(unreadable(path, extended_at, &error));
            return None;
        }
    };
    let id = sources.add(path, text);
    let (file, found) = parse::parse(&sources.file(id).text, id);
    problems.extend(found);
    let file = file?;
    let base = match &file.extends {
        Some(target) => {
            let base_path = path.parent().unwrap_or(Path::new(".")).join(&target.value);
            chain.push(canonical(path));
            let base = if chain.contains(&canonical(&base_path)) {
                problems.push(cycle(chain, &base_path, target.span));
                None
            } else {
                load_chain(&base_path, Some(target), chain, sources, problems)
            };
            chain.pop();
            base
        }
        None => None,
    };
    let own_sets_repeats = file.repeats.is_some();
    let own = own_experiment(file, path);
    Some(match base {
        Some(base) => merge(base, own, own_sets_repeats),
        None => own,
    })
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// A file that cannot be read: the experiment itself, or a base at the
/// `extends` that names it (with the closest `.kdl` name of its folder).
fn unreadable(path: &Path, extended_at: Option<&Spanned<String>>, error: &std::io::Error) -> Problem {
    let kind = Kind::Unreadable {
        path: path.display().to_string(),
        error: error.to_string(),
    };
    let Some(target) = extended_at else {
        return Problem::whole(kind);
    };
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let problem = Problem::at(kind, target.span);
    match closest_sibling(&target.value, folder) {
        Some(help) => problem.help(help),
        None => problem.help(format!(
            "`extends` paths are relative to the extending file's folder (`{}`)",
            folder.display()
        )),
    }
}

/// A file whose `bytes` stop being UTF-8 at `offset`.
fn not_utf8(path: &Path, extended_at: Option<&Spanned<String>>, bytes: &[u8], offset: usize) -> Problem {
    let kind = Kind::NotUtf8 {
        path: path.display().to_string(),
        offset,
        line: 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count(),
    };
    let problem = match extended_at {
        Some(target) => Problem::at(kind, target.span),
        None => Problem::whole(kind),
    };
    problem.help("save the file as UTF-8 (KDL is UTF-8 text)")
}

/// "did you mean `base.kdl`?" for `bsae.kdl`, from the `.kdl` files of `folder`.
fn closest_sibling(target: &str, folder: &Path) -> Option<String> {
    let written = Path::new(target).file_name()?.to_str()?;
    let prefix = &target[..target.len() - written.len()];
    let names: Vec<String> = std::fs::read_dir(folder)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".kdl"))
        .map(|name| format!("{prefix}{name}"))
        .collect();
    did_you_mean(target, names.iter().map(String::as_str))
}

fn cycle(chain: &[PathBuf], back_to: &Path, span: Span) -> Problem {
    let names: Vec<String> = chain
        .iter()
        .map(PathBuf::as_path)
        .chain([back_to])
        .map(file_name)
        .collect();
    Problem::at(Kind::ExtendsCycle, span).help(names.join(" → "))
}

fn own_experiment(file: ExperimentFile, path: &Path) -> Experiment {
    Experiment {
        name: file.name,
        description: file.description,
        repeats: file.repeats.as_ref().map_or(1, |r| r.value),
        settings: file.settings,
        variants: file.variants,
        matrix: file.matrix,
        search: file.search,
        expectations: file.expectations,
        path: path.to_owned(),
    }
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
        search: own.search.or(base.search),
        expectations: own.expectations,
        path: own.path,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
