//! The search's section: `search.json` → the winner, the budgets and the
//! rung table (which run stopped where, at what value).
//!
//! In: the experiment's [`SearchRecord`]. Out: Markdown (pure).

use runner_store::search::SearchRecord;

use super::collect::short_id;
use super::stats::fixed;
use super::table::Table;

/// The section's Markdown, from its heading on.
pub fn render(record: &SearchRecord) -> String {
    let metric = record.metric.name();
    let mut md = String::from("\n## Search: successive halving\n\n");
    let epochs: Vec<String> = record.planned.iter().map(u64::to_string).collect();
    md.push_str(&format!(
        "Every run trained to epoch {}; at each rung the best {:.3} of the runs by {metric} (ties in plan order) \
         went on from their checkpoint to the next; rungs at epochs {}.\n\n",
        record.planned.first().copied().unwrap_or(0),
        record.keep,
        epochs.join(", ")
    ));
    match record.winner() {
        Some(winner) => md.push_str(&format!(
            "- **winner**: `{}` {} ({metric} {} at epoch {})\n",
            short_id(&winner.id),
            winner.label,
            winner.value.map_or("–".to_owned(), |v| fixed(v, 3)),
            record.planned.last().copied().unwrap_or(0)
        )),
        None => md.push_str(&format!(
            "- **no winner yet**: {} of {} rungs ranked; `runner exec FILE` goes on\n",
            record.rungs.len(),
            record.planned.len()
        )),
    }
    md.push_str(&format!(
        "- **budget**: {} epochs trained, where the full grid trains {}\n\n",
        record.epochs_trained(),
        record.grid_epochs()
    ));
    md.push_str(&rung_table(record).markdown());
    md.push_str(&format!(
        "\nEach cell is the run's {metric} at the rung's epoch, marked ✓ when it went on (at the last rung: the \
         winner). One seed per run: a rung's ranking has no interval, and runs close in value could swap on \
         another seed.\n"
    ));
    md
}

/// One row per run of the first rung, one column per rung.
fn rung_table(record: &SearchRecord) -> Table {
    let mut header = vec!["run".to_owned(), "labels".to_owned()];
    header.extend(record.rungs.iter().map(|r| format!("epoch {}", r.epoch)));
    header.push("stopped at".to_owned());
    let Some(first) = record.rungs.first() else {
        return Table {
            header,
            rows: Vec::new(),
        };
    };
    let rows = first
        .runs
        .iter()
        .map(|run| {
            let mut row = vec![short_id(&run.id).to_owned(), run.label.clone()];
            for rung in &record.rungs {
                row.push(rung.runs.iter().find(|r| r.id == run.id).map_or(String::new(), |at| {
                    let value = at.value.map_or("failed".to_owned(), |v| fixed(v, 3));
                    if at.kept { format!("{value} ✓") } else { value }
                }));
            }
            let in_last_rung = record.is_complete()
                && record
                    .rungs
                    .last()
                    .is_some_and(|rung| rung.runs.iter().any(|r| r.id == run.id));
            let stopped = if record.winner().is_some_and(|w| w.id == run.id) {
                "winner".to_owned()
            } else if let Some(rung) = record.stopped_at(&run.id) {
                format!("epoch {}", rung.epoch)
            } else if in_last_rung {
                "trained to the end, not the best".to_owned()
            } else {
                "–".to_owned()
            };
            row.push(stopped);
            row
        })
        .collect();
    Table { header, rows }
}
