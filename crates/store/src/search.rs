//! `search.json`: where an experiment's search stands, rung by rung.
//!
//! In: the executor's rungs as it ranks them. Out: `<store>/<experiment>/
//! search.json`, written whole after every rung (atomically), read by the
//! report for its rung table. The executor never needs it to resume: every
//! run's own checkpoint and evaluations decide again, the same way.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use runner_spec::file::Metric;

use crate::{RunStore, StoreError};

/// The file's name in the experiment's folder.
pub const SEARCH_FILE: &str = "search.json";

/// Successive halving's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRecord {
    /// The metric runs are ranked by.
    pub metric: Metric,
    /// The share of a rung's runs that go on.
    pub keep: f64,
    /// The epochs of every rung, the planned ones too.
    pub planned: Vec<u64>,
    /// The rungs ranked so far, in order.
    pub rungs: Vec<Rung>,
}

/// One ranked rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// The epoch its runs trained to.
    pub epoch: u64,
    /// Its runs, best first; runs without a value (failed) last.
    pub runs: Vec<RungRun>,
}

/// One run at a rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungRun {
    /// The run's id.
    pub id: String,
    /// Its labels as text.
    pub label: String,
    /// Its metric at the rung's epoch (`None`: it failed or did not get there).
    pub value: Option<f64>,
    /// Whether it goes on to the next rung (at the last rung: the winner).
    pub kept: bool,
}

impl SearchRecord {
    /// Whether every planned rung is ranked.
    pub fn is_complete(&self) -> bool {
        self.rungs.len() == self.planned.len()
    }

    /// The winner: the kept run of the last rung, once every rung is ranked.
    pub fn winner(&self) -> Option<&RungRun> {
        self.rungs
            .last()
            .filter(|_| self.is_complete())
            .and_then(|rung| rung.runs.iter().find(|r| r.kept))
    }

    /// Epochs trained by the rungs ranked so far: each rung's runs trained
    /// from the previous rung's epoch to its own.
    pub fn epochs_trained(&self) -> u64 {
        runner_plan::search::epochs_trained(self.rungs.iter().map(|rung| (rung.epoch, rung.runs.len())))
    }

    /// Epochs the full grid trains: every run to the last rung.
    pub fn grid_epochs(&self) -> u64 {
        let runs = self.rungs.first().map_or(0, |rung| rung.runs.len()) as u64;
        runs * self.planned.last().copied().unwrap_or(0)
    }

    /// The rung at which `id` stopped, when the search left it behind
    /// before the last rung.
    pub fn stopped_at(&self, id: &str) -> Option<&Rung> {
        let last = self.planned.len().checked_sub(1)?;
        self.rungs
            .iter()
            .take(last)
            .find(|rung| rung.runs.iter().any(|r| r.id == id && !r.kept))
    }
}

impl RunStore {
    /// Where the experiment's search record lives.
    pub fn search_path(&self) -> PathBuf {
        self.root().join(SEARCH_FILE)
    }

    /// Writes the search record whole.
    pub fn write_search(&self, record: &SearchRecord) -> Result<(), StoreError> {
        let path = self.search_path();
        let text = serde_json::to_string_pretty(record).expect("a search record serialises");
        std::fs::create_dir_all(self.root()).map_err(StoreError::at(self.root()))?;
        crate::atomic::write(&path, text.as_bytes()).map_err(StoreError::at(&path))
    }

    /// The search record; `Ok(None)` when there is none.
    pub fn search(&self) -> Result<Option<SearchRecord>, String> {
        let path = self.search_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("{SEARCH_FILE} is corrupt: {e}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{SEARCH_FILE}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(epoch: u64, kept: &[bool]) -> Rung {
        Rung {
            epoch,
            runs: kept
                .iter()
                .enumerate()
                .map(|(i, &kept)| RungRun {
                    id: format!("run{i}"),
                    label: String::new(),
                    value: Some(i as f64),
                    kept,
                })
                .collect(),
        }
    }

    #[test]
    fn budgets_count_each_rungs_runs_from_the_previous_rung() {
        let record = SearchRecord {
            metric: Metric::ValDist,
            keep: 1.0 / 3.0,
            planned: vec![1, 3, 9],
            rungs: vec![
                rung(1, &[true, true, true, false, false, false, false, false, false]),
                rung(3, &[true, false, false]),
                rung(9, &[true]),
            ],
        };
        // 9 × 1 + 3 × 2 + 1 × 6 = 21 epochs, where the grid trains 9 × 9 = 81.
        assert_eq!(record.epochs_trained(), 21);
        assert_eq!(record.grid_epochs(), 81);
        assert_eq!(record.winner().unwrap().id, "run0");
        assert_eq!(record.stopped_at("run4").unwrap().epoch, 1);
        assert_eq!(record.stopped_at("run1").unwrap().epoch, 3);
        assert!(record.stopped_at("run0").is_none());
    }
}
