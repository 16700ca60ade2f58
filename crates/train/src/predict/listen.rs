//! What a finished run leaves for listening and for the report: every test
//! piece predicted note by note (`test-predictions.json`) and the first
//! `evaluate.listen` of them as MIDI, `listen/<name>.true.mid` (the piece as
//! read) and `listen/<name>.greedy.mid` (the same file with the predicted
//! velocities).
//!
//! In: the claimed run (its checkpoint just written), its configuration,
//! its dataset summary (which pieces are in the test split), where its data
//! is and the device. Out: those files; the number of pieces predicted.
//! Each record names its listening files. Runs with `evaluate.test` and
//! `evaluate.greedy` only.

use tch::Device;

use super::command::TrainedRun;
use runner_data::performance;
use runner_data::source::Folders;
use runner_data::split::Split;
use runner_data::summary::DatasetSummary;
use runner_plan::config::RunConfig;
use runner_store::ClaimedRun;
use runner_store::records::PiecePrediction;

/// Writes the run's test predictions and listening files (module docs);
/// `Ok(0)` when the run asks for none.
pub fn write(
    run: &ClaimedRun,
    config: &RunConfig,
    data: &DatasetSummary,
    folders: &Folders,
    device: Device,
) -> Result<usize, String> {
    if !(config.evaluate.test && config.evaluate.greedy) {
        return Ok(0);
    }
    let Some(test) = data.split(Split::Test) else {
        return Ok(0);
    };
    let trained = TrainedRun::load(run, device).map_err(|e| e.to_string())?;
    let length = trained.window().length();
    let names: Vec<String> = test.pieces.iter().map(|p| p.name.clone()).collect();
    let performances: Vec<_> = performance::of_source(&config.dataset, folders, &names)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|p| p.piece.notes.len() >= length)
        .collect();
    let pieces: Vec<_> = performances.iter().map(|p| &p.piece).collect();
    let predicted = trained.predict(&pieces).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = Vec::new();
    for performance in performances.iter().take(config.evaluate.listen) {
        let mut name = performance.stem();
        if names.contains(&name) {
            name = format!("{name}-{}", names.len() + 1);
        }
        names.push(name);
    }
    let records: Vec<PiecePrediction> = performances
        .iter()
        .zip(&predicted)
        .enumerate()
        .map(|(i, (p, predicted))| PiecePrediction {
            piece: p.piece.name.clone(),
            pitch: p.piece.notes.iter().map(|n| n.pitch).collect(),
            start: p.piece.notes.iter().map(|n| n.start).collect(),
            end: p.piece.notes.iter().map(|n| n.end).collect(),
            truth: p.piece.notes.iter().map(|n| n.velocity).collect(),
            greedy: predicted.velocities.clone(),
            listen: names.get(i).cloned(),
        })
        .collect();
    run.write_test_predictions(&records).map_err(|e| e.to_string())?;
    for ((performance, predicted), name) in performances.iter().zip(&predicted).zip(&names) {
        let truth: Vec<u8> = performance.piece.notes.iter().map(|n| n.velocity).collect();
        let bytes = |velocities: &[u8]| performance.with_velocities(velocities).map_err(|e| e.to_string());
        run.write_listen(name, &bytes(&truth)?, &bytes(&predicted.velocities)?)
            .map_err(|e| e.to_string())?;
    }
    Ok(records.len())
}
