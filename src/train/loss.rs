//! The training losses (FACTS.md section 5): logits `[B, T, V]`, target ids
//! `[B, T]` and the range of ids that are real targets (the velocities) in;
//! summed loss terms out, still on the device, so that reading them is the
//! caller's choice of when to synchronise.
//!
//! - [`Loss::CrossEntropy`]: `-log p(y)`.
//! - [`Loss::LabelSmoothing`]: the Annotated Transformer's `LabelSmoothing`
//!   restricted to the real classes: the smoothed target puts `1 - eps` on the
//!   true class and spreads `eps` evenly over the other `K - 1` real classes
//!   (`K` = number of real classes); specials (`<CLS>`, `<PAD>`, and in the
//!   shared scheme every non-velocity token) get nothing. The objective is
//!   the cross-entropy against that smoothed target,
//!   `-(1 - eps) log p(y) - eps/(K-1) sum_{c real, c != y} log p(c)`. It has
//!   the same gradient as the original's KL divergence and differs from it by
//!   the constant entropy of the smoothed target ([`Criterion::target_entropy`]),
//!   so it is on the scale of a cross-entropy; the plain cross-entropy of the
//!   true class is reported beside it ([`LossTerms::nll`]) for comparing runs
//!   trained with different losses.
//!
//! The log-softmax runs over the whole vocabulary `V` (the model may put
//! mass on specials, which only costs it). Positions whose target is not a
//! real class (the leading `<CLS>`, padding) count nowhere.

use std::ops::Range;

use tch::{Kind, Tensor};

use crate::plan::config::Loss;

/// A loss that cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    /// Label smoothing outside `[0, 1)`.
    #[error("label-smoothing epsilon must be in [0, 1), not {0}")]
    Epsilon(f64),
    /// No real target classes, or too few to spread smoothing over.
    #[error("{loss} needs at least {needed} real target classes, got ids {start}..{end}")]
    Classes {
        /// The loss.
        loss: &'static str,
        /// Classes it needs.
        needed: i64,
        /// First real class id.
        start: i64,
        /// One past the last.
        end: i64,
    },
}

/// A loss bound to its real target classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    classes: Range<i64>,
    epsilon: f64,
}

/// Sums over the counted positions of one batch (scalars on the logits' device).
#[derive(Debug)]
pub struct LossTerms {
    /// The objective summed over counted positions, with its graph: divide by
    /// the count (or a total count over accumulated batches) and backpropagate.
    pub sum: Tensor,
    /// Plain cross-entropy `-log p(y)` summed over counted positions, detached.
    pub nll: Tensor,
    /// Number of counted positions (i64).
    pub count: Tensor,
}

impl LossTerms {
    /// The objective averaged over counted positions (0 when none count).
    pub fn mean(&self) -> Tensor {
        &self.sum / self.count.clamp_min(1)
    }
}

impl Criterion {
    /// `loss` over the real target ids `classes`.
    pub fn new(loss: Loss, classes: Range<i64>) -> Result<Criterion, LossError> {
        let (epsilon, name, needed) = match loss {
            Loss::CrossEntropy => (0.0, "cross-entropy", 1),
            Loss::LabelSmoothing { epsilon } if !(0.0..1.0).contains(&epsilon) => {
                return Err(LossError::Epsilon(epsilon));
            }
            Loss::LabelSmoothing { epsilon } => (epsilon, "label smoothing", if epsilon > 0.0 { 2 } else { 1 }),
        };
        if classes.end - classes.start < needed || classes.start < 0 {
            return Err(LossError::Classes {
                loss: name,
                needed,
                start: classes.start,
                end: classes.end,
            });
        }
        Ok(Criterion { classes, epsilon })
    }

    /// The real target ids.
    pub fn classes(&self) -> Range<i64> {
        self.classes.clone()
    }

    /// Entropy of the smoothed target distribution (0 for cross-entropy):
    /// the objective minus this is the original's KL divergence per position.
    pub fn target_entropy(&self) -> f64 {
        let eps = self.epsilon;
        if eps == 0.0 {
            return 0.0;
        }
        let others = (self.classes.end - self.classes.start - 1) as f64;
        -(1.0 - eps) * (1.0 - eps).ln() - eps * (eps / others).ln()
    }

    /// The loss of `logits` `[B, T, V]` against `targets` `[B, T]` (i64).
    pub fn compute(&self, logits: &Tensor, targets: &Tensor) -> LossTerms {
        let Range { start, end } = self.classes;
        let vocab = logits.size()[2];
        // [B, T, V]
        let log_p = logits.log_softmax(-1, Kind::Float);
        let counted = targets.ge(start).logical_and(&targets.lt(end));
        // [B, T] -> [B, T, 1] -> [B, T]; targets outside the vocabulary are not counted anyway
        let index = targets.clamp(0, vocab - 1).unsqueeze(-1);
        let nll = -log_p.gather(-1, &index, false).squeeze_dim(-1);
        let objective = if self.epsilon == 0.0 {
            nll.shallow_clone()
        } else {
            let eps = self.epsilon;
            let others = (end - start - 1) as f64;
            // sum of log p over the real classes: [B, T, K] -> [B, T]
            let real = log_p
                .narrow(-1, start, end - start)
                .sum_dim_intlist(-1, false, Kind::Float);
            // -sum_{c != y} log p(c) = -real - nll
            &nll * (1.0 - eps) + (-real - &nll) * (eps / others)
        };
        let zero = Tensor::zeros([], (Kind::Float, logits.device()));
        LossTerms {
            sum: objective.where_self(&counted, &zero).sum(Kind::Float),
            nll: nll.detach().where_self(&counted, &zero).sum(Kind::Float),
            count: counted.sum(Kind::Int64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smoothing(epsilon: f64) -> Loss {
        Loss::LabelSmoothing { epsilon }
    }

    /// One batch of two positions over V = 5: ids 0 and 1 are specials, 2..5 real.
    fn example() -> (Tensor, Tensor) {
        let logits = Tensor::from_slice(&[
            0.5f32, -1.0, 2.0, 0.0, 1.0, // target 2
            1.0, 1.0, 0.3, -0.7, 0.2, // target 4
            0.0, 0.0, 5.0, 5.0, 5.0, // target 0: a special, not counted
        ])
        .view([1, 3, 5]);
        let targets = Tensor::from_slice(&[2i64, 4, 0]).view([1, 3]);
        (logits, targets)
    }

    fn log_softmax(row: &[f64]) -> Vec<f64> {
        let norm = row.iter().map(|x| x.exp()).sum::<f64>().ln();
        row.iter().map(|x| x - norm).collect()
    }

    fn rows() -> [Vec<f64>; 2] {
        [
            log_softmax(&[0.5, -1.0, 2.0, 0.0, 1.0]),
            log_softmax(&[1.0, 1.0, 0.3, -0.7, 0.2]),
        ]
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-5 * b.abs().max(1.0)
    }

    #[test]
    fn cross_entropy_is_the_negative_log_probability_of_real_targets() {
        let (logits, targets) = example();
        let c = Criterion::new(Loss::CrossEntropy, 2..5).unwrap();
        let terms = c.compute(&logits, &targets);
        let [a, b] = rows();
        let expected = -a[2] - b[4];
        assert_eq!(terms.count.int64_value(&[]), 2);
        assert!(close(terms.sum.double_value(&[]), expected));
        assert!(close(terms.nll.double_value(&[]), expected));
        assert!(close(terms.mean().double_value(&[]), expected / 2.0));
        assert_eq!(c.target_entropy(), 0.0);
    }

    #[test]
    fn label_smoothing_matches_its_closed_form() {
        let (logits, targets) = example();
        let eps = 0.1;
        let c = Criterion::new(smoothing(eps), 2..5).unwrap();
        let terms = c.compute(&logits, &targets);
        let [a, b] = rows();
        // Real classes 2, 3, 4: the true one gets 0.9, the two others 0.05 each.
        let expected = -(0.9 * a[2] + 0.05 * a[3] + 0.05 * a[4]) - (0.9 * b[4] + 0.05 * b[2] + 0.05 * b[3]);
        assert!(
            close(terms.sum.double_value(&[]), expected),
            "{} vs {expected}",
            terms.sum
        );
        assert!(close(terms.nll.double_value(&[]), -a[2] - b[4]));
        // Entropy of (0.9, 0.05, 0.05); objective - entropy is the KL divergence.
        let entropy = -(0.9f64 * 0.9f64.ln() + 2.0 * 0.05 * 0.05f64.ln());
        assert!(close(c.target_entropy(), entropy));
        let kl: f64 = [(&a, [0.9f64, 0.05, 0.05]), (&b, [0.05, 0.05, 0.9])]
            .iter()
            .map(|(row, q)| (0..3).map(|i| q[i] * (q[i].ln() - row[2 + i])).sum::<f64>())
            .sum();
        assert!(close(terms.sum.double_value(&[]) - 2.0 * c.target_entropy(), kl));
    }

    #[test]
    fn label_smoothing_gradient_pushes_towards_the_smoothed_target() {
        let (logits, targets) = example();
        let logits = logits.set_requires_grad(true);
        let c = Criterion::new(smoothing(0.1), 2..5).unwrap();
        c.compute(&logits, &targets).sum.backward();
        // d/dz of the cross-entropy with target q is softmax(z) - q, per counted row.
        let grad = logits.grad();
        let [a, _] = rows();
        let q = [0.0, 0.0, 0.9, 0.05, 0.05];
        for (i, (log_p, q)) in a.iter().zip(q).enumerate() {
            assert!(close(grad.double_value(&[0, 0, i as i64]), log_p.exp() - q));
        }
        // The uncounted position gets no gradient.
        assert_eq!(grad.get(0).get(2).abs().sum(Kind::Float).double_value(&[]), 0.0);
    }

    #[test]
    fn zero_smoothing_is_cross_entropy() {
        let (logits, targets) = example();
        let ls = Criterion::new(smoothing(0.0), 2..5).unwrap().compute(&logits, &targets);
        let ce = Criterion::new(Loss::CrossEntropy, 2..5)
            .unwrap()
            .compute(&logits, &targets);
        assert!(ls.sum.allclose(&ce.sum, 1e-6, 1e-6, false));
    }

    #[test]
    fn nothing_counted_gives_zero_mean() {
        let (logits, _) = example();
        let targets = Tensor::zeros([1, 3], (Kind::Int64, tch::Device::Cpu));
        let terms = Criterion::new(smoothing(0.1), 2..5).unwrap().compute(&logits, &targets);
        assert_eq!(terms.count.int64_value(&[]), 0);
        assert_eq!(terms.mean().double_value(&[]), 0.0);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert_eq!(Criterion::new(smoothing(1.0), 2..5), Err(LossError::Epsilon(1.0)));
        assert!(matches!(
            Criterion::new(smoothing(0.1), 2..3),
            Err(LossError::Classes { needed: 2, .. })
        ));
        assert!(matches!(
            Criterion::new(Loss::CrossEntropy, 4..4),
            Err(LossError::Classes { needed: 1, .. })
        ));
        assert_eq!(Criterion::new(Loss::CrossEntropy, 1..129).unwrap().classes(), 1..129);
    }
}
