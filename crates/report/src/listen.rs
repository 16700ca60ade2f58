//! Listening: for each cell, its first run's test pieces as MIDI files with
//! the true and with the greedy-predicted velocities, copied from the run's
//! `listen/` into the report's `listen/<cell>/` and linked from a table.
//!
//! In: the collected runs (each test piece names its listening files, which
//! collect checked exist) and the cells. Out: [`choose`] says what the
//! report links (pure), [`render`] the Markdown, [`copy`] the files.

use std::path::Path;

use runner_store::folder::listen_file_names;

use crate::collect::{Collected, short_id};
use crate::plots::{notes, slug};
use crate::stats;
use crate::table::Cell;

/// One test piece of a cell to listen to.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The piece's name.
    pub name: String,
    /// Its notes.
    pub notes: usize,
    /// Mean |greedy − true| velocity over its notes, each once.
    pub dist: f64,
    /// The listening files' name in the run's `listen/`.
    pub files: String,
}

/// The pieces a cell links to: its first run that has listening files.
#[derive(Debug, Clone, PartialEq)]
pub struct Listening {
    /// The cell's labels as text.
    pub cell: String,
    /// The report's folder for the cell's files (`listen/1-schedule-noam`).
    pub folder: String,
    /// The frame-order index of the run.
    pub run: usize,
    /// Its pieces, in test-split order.
    pub pieces: Vec<Piece>,
}

/// What the report links, one entry per cell that has listening files.
pub fn choose(collected: &Collected, cells: &[Cell]) -> Vec<Listening> {
    cells
        .iter()
        .enumerate()
        .filter_map(|(index, cell)| {
            let (run, records) = cell.rows.iter().find_map(|&r| {
                let records = &collected.runs[r];
                records.test.iter().any(|p| p.listen.is_some()).then_some((r, records))
            })?;
            let pieces = records
                .test
                .iter()
                .filter_map(|p| {
                    Some(Piece {
                        name: p.piece.clone(),
                        notes: p.truth.len(),
                        dist: notes::note_dist([p]).0,
                        files: p.listen.clone()?,
                    })
                })
                .collect();
            Some(Listening {
                cell: cell.text(),
                folder: format!("listen/{}-{}", index + 1, slug(&cell.text())),
                run,
                pieces,
            })
        })
        .collect()
}

/// The report's Listen section.
pub fn render(listenings: &[Listening], collected: &Collected) -> String {
    let mut md = String::from(
        "## Listen\n\nTest pieces as MIDI files: the piece as read (true velocities) and the same file with the \
         velocities the cell's first run predicted greedily, every note once (windows of the run's length \
         overlapping by half, each note taking the prediction of the window whose centre is nearest). The \
         files are in `listen/` beside this report; dist is the piece's mean |greedy − true| velocity.\n\n\
         | cell | run | piece | notes | dist | true | greedy |\n|---|---|---|---:|---:|---|---|\n",
    );
    for listening in listenings {
        let run = short_id(&collected.runs[listening.run].id);
        for piece in &listening.pieces {
            let [truth, greedy] = listen_file_names(&piece.files);
            let link = |kind: &str, file: &str| format!("[{kind}]({}/{file})", listening.folder);
            md.push_str(&format!(
                "| {} | {run} | {} | {} | {} | {} | {} |\n",
                listening.cell,
                piece.name.replace('|', "\\|"),
                piece.notes,
                stats::fixed(piece.dist, 2),
                link("true", &truth),
                link("greedy", &greedy),
            ));
        }
    }
    md
}

/// Copies each linked piece's files from its run's `listen/` into
/// `report_folder`; the file that could not be copied on failure.
pub fn copy(
    listenings: &[Listening],
    collected: &Collected,
    report_folder: &Path,
) -> Result<(), (std::path::PathBuf, std::io::Error)> {
    for listening in listenings {
        let folder = report_folder.join(&listening.folder);
        std::fs::create_dir_all(&folder).map_err(|e| (folder.clone(), e))?;
        let run = &collected.runs[listening.run].folder;
        for piece in &listening.pieces {
            for from in run.listen_files(&piece.files) {
                let to = folder.join(from.file_name().unwrap_or_default());
                let bytes = std::fs::read(&from).map_err(|e| (from.clone(), e))?;
                runner_store::atomic::write(&to, &bytes).map_err(|e| (to.clone(), e))?;
            }
        }
    }
    Ok(())
}
