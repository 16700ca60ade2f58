//! Finding a run from what a user typed (`runner export RUN`, `runner
//! predict RUN`): a run folder's path, or a run id, or a prefix of one
//! unique in the store, looked up in every experiment of the store.
//!
//! In: the store's root (`runs/`) and the text. Out: the [`RunFolder`] (a
//! folder the text names is taken as it is; whether it holds a run is the
//! caller's to check), or a [`FindRunError`] that lists the candidates.

use std::path::{Path, PathBuf};

use crate::files::RunFile;
use crate::folder::RunFolder;

/// Why no single run answers to the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum FindRunError {
    /// The text names a file, not a folder.
    #[error("{} is not a folder", .0.display())]
    #[diagnostic(help("give a run folder (runs/<experiment>/<id>) or a run id"))]
    NotAFolder(PathBuf),
    /// The text is a path (it has a separator) to nothing.
    #[error("there is no folder {}", .0.display())]
    #[diagnostic(help("give a run folder (runs/<experiment>/<id>) or a run id"))]
    NoFolder(PathBuf),
    /// No run id in the store starts with the text.
    #[error("no run in {} has an id starting with `{text}`", store.display())]
    #[diagnostic(help(
        "`runner plan FILE` lists an experiment's run ids; pass --store DIR for another store, or give the run \
         folder's path"
    ))]
    Unknown {
        /// What was typed.
        text: String,
        /// The store searched.
        store: PathBuf,
    },
    /// More than one run id in the store starts with the text.
    #[error(
        "`{text}` is the start of {} run ids in {}: {}",
        candidates.len(),
        store.display(),
        candidates.join(", ")
    )]
    #[diagnostic(help("give more of the id, or the run folder's path"))]
    Ambiguous {
        /// What was typed.
        text: String,
        /// The store searched.
        store: PathBuf,
        /// Each matching run as `<experiment>/<id>`, sorted.
        candidates: Vec<String>,
    },
}

/// The run `text` names: the folder at that path when there is one, else
/// the only run under `store_root/<experiment>/` whose id starts with
/// `text` (a folder holding `config.json`; hidden experiments such as
/// `.datasets` are skipped).
pub fn find_run(store_root: &Path, text: &str) -> Result<RunFolder, FindRunError> {
    let path = Path::new(text);
    if path.is_dir() {
        return Ok(RunFolder::at(path));
    }
    if path.exists() {
        return Err(FindRunError::NotAFolder(path.to_owned()));
    }
    if text.contains(std::path::is_separator) {
        return Err(FindRunError::NoFolder(path.to_owned()));
    }
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    if !text.is_empty() {
        for experiment in subfolders(store_root) {
            for run in subfolders(&experiment) {
                let id = name(&run);
                if id.starts_with(text) && RunFolder::at(&run).path(RunFile::Config).is_file() {
                    found.push((format!("{}/{id}", name(&experiment)), run));
                }
            }
        }
    }
    found.sort();
    match found.len() {
        1 => Ok(RunFolder::at(found.remove(0).1)),
        0 => Err(FindRunError::Unknown {
            text: text.to_owned(),
            store: store_root.to_owned(),
        }),
        _ => Err(FindRunError::Ambiguous {
            text: text.to_owned(),
            store: store_root.to_owned(),
            candidates: found.into_iter().map(|(label, _)| label).collect(),
        }),
    }
}

/// The folders directly in `dir` whose names do not start with `.` (none
/// when it cannot be read).
fn subfolders(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() && !name(path).starts_with('.'))
        .collect()
}

/// A path's last component, as text.
fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with runs `exp-a/abc1`, `exp-a/abd2`, `exp-b/ff00`, a
    /// folder without config.json (`exp-b/ffnot`), and a hidden `.datasets/ab00`.
    fn store(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("runner-find-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for run in ["exp-a/abc1", "exp-a/abd2", "exp-b/ff00", ".datasets/ab00"] {
            std::fs::create_dir_all(root.join(run)).unwrap();
            std::fs::write(root.join(run).join("config.json"), "{}").unwrap();
        }
        std::fs::create_dir_all(root.join("exp-b/ffnot")).unwrap();
        root
    }

    #[test]
    fn a_unique_prefix_or_a_whole_id_finds_its_run() {
        let root = store("unique");
        assert_eq!(find_run(&root, "abc").unwrap().dir(), root.join("exp-a/abc1"));
        assert_eq!(find_run(&root, "abd2").unwrap().dir(), root.join("exp-a/abd2"));
        // A folder without config.json is no run.
        assert_eq!(find_run(&root, "ff").unwrap().dir(), root.join("exp-b/ff00"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_folder_is_taken_as_it_is() {
        let root = store("folder");
        let folder = root.join("exp-b/ffnot");
        assert_eq!(find_run(&root, folder.to_str().unwrap()).unwrap().dir(), folder);
        let file = root.join("exp-a/abc1/config.json");
        assert_eq!(
            find_run(&root, file.to_str().unwrap()),
            Err(FindRunError::NotAFolder(file))
        );
        let missing = root.join("exp-a/nothing");
        assert_eq!(
            find_run(&root, missing.to_str().unwrap()),
            Err(FindRunError::NoFolder(missing))
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_ambiguous_prefix_lists_the_candidates() {
        let root = store("ambiguous");
        let error = find_run(&root, "ab").unwrap_err();
        assert_eq!(
            error,
            FindRunError::Ambiguous {
                text: "ab".to_owned(),
                store: root.clone(),
                candidates: vec!["exp-a/abc1".to_owned(), "exp-a/abd2".to_owned()],
            }
        );
        assert!(
            error.to_string().contains("`ab` is the start of 2 run ids in"),
            "{error}"
        );
        assert!(error.to_string().ends_with(": exp-a/abc1, exp-a/abd2"), "{error}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_unknown_or_empty_id_is_an_error() {
        let root = store("unknown");
        for text in ["abe", "", "ffnot"] {
            assert_eq!(
                find_run(&root, text),
                Err(FindRunError::Unknown {
                    text: text.to_owned(),
                    store: root.clone(),
                }),
                "{text:?}"
            );
        }
        let missing = root.join("no-store");
        assert!(matches!(find_run(&missing, "abc"), Err(FindRunError::Unknown { .. })));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
