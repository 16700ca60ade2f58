//! Velocity metrics from predicted and true velocities.
//!
//! In: pairs of (predicted, true) MIDI velocities, one per real note (the
//! CLS position never counts). Out: [`VelocityMetrics`]: mean absolute
//! distance, exact accuracy and flatness (std of predictions / std of truth),
//! plus the reference baselines "predict the training mean" and "predict the
//! centre of the note's coarse velocity bin".

use serde::{Deserialize, Deserializer, Serialize};

/// Metrics of one set of predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VelocityMetrics {
    /// Notes scored.
    pub notes: usize,
    /// Mean |predicted - true| in MIDI units.
    #[serde(deserialize_with = "nan_if_null")]
    pub dist: f64,
    /// Share of notes predicted exactly.
    #[serde(deserialize_with = "nan_if_null")]
    pub accuracy: f64,
    /// std(predicted) / std(true); 1 when the spread matches, 0 when flat.
    #[serde(deserialize_with = "nan_if_null")]
    pub flatness: f64,
}

impl VelocityMetrics {
    /// Scores predictions against the truth (equal lengths).
    pub fn of(predicted: &[u8], truth: &[u8]) -> VelocityMetrics {
        assert_eq!(predicted.len(), truth.len(), "one prediction per note");
        let n = truth.len();
        if n == 0 {
            return VelocityMetrics {
                notes: 0,
                dist: f64::NAN,
                accuracy: f64::NAN,
                flatness: f64::NAN,
            };
        }
        let dist = predicted
            .iter()
            .zip(truth)
            .map(|(p, t)| (f64::from(*p) - f64::from(*t)).abs())
            .sum::<f64>()
            / n as f64;
        let exact = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
        let spread = std(truth);
        VelocityMetrics {
            notes: n,
            dist,
            accuracy: exact as f64 / n as f64,
            flatness: if spread > 0.0 {
                std(predicted) / spread
            } else {
                f64::NAN
            },
        }
    }
}

/// Population standard deviation.
pub fn std(values: &[u8]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
    (values.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// Mean velocity.
pub fn mean(values: &[u8]) -> f64 {
    values.iter().map(|v| f64::from(*v)).sum::<f64>() / values.len() as f64
}

/// The "predict the training mean" baseline: every note gets the training
/// split's mean velocity, rounded.
pub fn mean_baseline(train_mean: f64, truth: &[u8]) -> VelocityMetrics {
    let guess = train_mean.round().clamp(0.0, 127.0) as u8;
    VelocityMetrics::of(&vec![guess; truth.len()], truth)
}

/// The "predict the bin centre" baseline: each note gets the centre of its
/// coarse velocity bin (which the model sees in its input). `edges` are the
/// velocity bin's lower edges; the last bin closes at 128.
pub fn bin_centre_baseline(edges: &[f64], truth: &[u8]) -> VelocityMetrics {
    let centre = |v: u8| {
        let x = f64::from(v);
        let bin = edges.iter().rposition(|e| *e <= x).unwrap_or(0);
        let low = edges[bin];
        let high = edges.get(bin + 1).copied().unwrap_or(128.0);
        // Velocities are integers in [low, high): the centre of those integers.
        ((low.ceil() + (high.ceil() - 1.0)) / 2.0).round().clamp(0.0, 127.0) as u8
    };
    let guesses: Vec<u8> = truth.iter().map(|v| centre(*v)).collect();
    VelocityMetrics::of(&guesses, truth)
}

/// A number as serde_json writes it: `null` stands for NaN.
pub fn nan_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Option::<f64>::deserialize(deserializer).map(|value| value.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_a_hand_made_prediction() {
        let truth = [60, 70, 80, 90];
        let predicted = [60, 72, 77, 90];
        let m = VelocityMetrics::of(&predicted, &truth);
        assert_eq!(m.notes, 4);
        assert!((m.dist - (0.0 + 2.0 + 3.0 + 0.0) / 4.0).abs() < 1e-12);
        assert!((m.accuracy - 0.5).abs() < 1e-12);
        // std(truth) = sqrt(125), std(pred) = sqrt(((-14.75)^2 + (-2.75)^2 + 2.25^2 + 15.25^2) / 4)
        let pred_std = ((14.75f64.powi(2) + 2.75f64.powi(2) + 2.25f64.powi(2) + 15.25f64.powi(2)) / 4.0).sqrt();
        assert!((m.flatness - pred_std / 125f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn a_constant_prediction_is_perfectly_flat() {
        let m = VelocityMetrics::of(&[64, 64, 64], &[50, 64, 80]);
        assert_eq!(m.flatness, 0.0);
    }

    #[test]
    fn mean_baseline_predicts_the_rounded_mean() {
        let m = mean_baseline(65.6, &[60, 70]);
        assert!((m.dist - (6.0 + 4.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn bin_centre_baseline_uses_the_velocity_bins() {
        // Bins [0,57) [57,74) [74,128): centres 28, 65 and 100.5, rounded to 101.
        let edges = [0.0, 57.0, 74.0];
        let m = bin_centre_baseline(&edges, &[28, 65, 100, 56]);
        // Predictions 28, 65, 101, 28.
        assert!((m.dist - (0.0 + 0.0 + 1.0 + 28.0) / 4.0).abs() < 1e-12, "{m:?}");
    }

    #[test]
    fn a_nan_written_as_null_reads_back_as_nan() {
        let metrics = VelocityMetrics {
            notes: 3,
            dist: 1.5,
            accuracy: 0.25,
            flatness: f64::NAN,
        };
        let text = serde_json::to_string(&metrics).unwrap();
        assert!(text.contains("\"flatness\":null"), "{text}");
        let back: VelocityMetrics = serde_json::from_str(&text).unwrap();
        assert!(back.flatness.is_nan());
        assert_eq!((back.notes, back.dist, back.accuracy), (3, 1.5, 0.25));
    }
}
