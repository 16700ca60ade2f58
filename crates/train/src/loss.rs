//! The training losses (FACTS.md section 5): logits `[B, T, V]`, target ids
//! `[B, T]`, the range of ids that are velocities and the vocabulary size
//! in; summed loss terms out, still on the device, so that reading them is
//! the caller's choice of when to synchronise.
//!
//! Counted positions are those whose target is a velocity, or `<CLS>` (a
//! `<CLS>` label exists only with `train.decoder-input shift-right`, where
//! midi-hf-transformers trains on it); nothing else counts.
//!
//! - [`Loss::CrossEntropy`]: `-log p(y)`.
//! - [`Loss::LabelSmoothing`]: the cross-entropy against a smoothed target
//!   `q`, `-sum_c q_c log p(c)`, with `q_y = 1 - eps` and `w` on each other
//!   column of a set `S`:
//!   - [`SmoothingTarget::ExcludeSpecials`]: `S` = the `K` velocity classes,
//!     `w = eps / (K - 1)`; specials get nothing (q sums to 1);
//!   - [`SmoothingTarget::Original`]: midi-translation's `LabelSmoothing`:
//!     `S` = every column of the output vocabulary, `<CLS>` included, and
//!     `w = eps / (V - 2)`, so q sums to `1 + eps / (V - 2)`.
//!
//!   Its gradient is the original's KL divergence's; the two differ by the
//!   constant `sum_c q_c log q_c` per position, which [`LossTerms::kl`] adds
//!   back: `kl` is the original's `KLDivLoss(reduction="sum")` summed over
//!   counted positions (divide by the count for midi-translation's val loss).
//!
//! The log-softmax runs over the whole vocabulary `V` (the model may put
//! mass on specials, which only costs it).

use std::ops::Range;

use tch::{Kind, Tensor};

use runner_data::encoder::CLS;
use runner_plan::config::{Loss, SmoothingTarget};

/// A loss that cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    /// Label smoothing outside `[0, 1)`.
    #[error("label-smoothing epsilon must be in [0, 1), not {0}")]
    Epsilon(f64),
    /// No real target classes, or too few to spread smoothing over.
    #[error("{loss} needs at least {needed} target classes, got ids {start}..{end} of a vocabulary of {vocab}")]
    Classes {
        /// The loss.
        loss: &'static str,
        /// Classes it needs.
        needed: i64,
        /// First velocity id.
        start: i64,
        /// One past the last.
        end: i64,
        /// Output vocabulary size.
        vocab: i64,
    },
}

/// A loss bound to its velocity classes and output vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    classes: Range<i64>,
    vocab: i64,
    epsilon: f64,
    target: SmoothingTarget,
}

/// Sums over the counted positions of one batch (scalars on the logits' device).
#[derive(Debug)]
pub struct LossTerms {
    /// The objective summed over counted positions, with its graph: divide by
    /// the count (or a total count over accumulated batches) and backpropagate.
    pub sum: Tensor,
    /// Plain cross-entropy `-log p(y)` summed over counted positions, detached.
    pub nll: Tensor,
    /// The KL divergence from the (smoothed) target summed over counted
    /// positions, detached; equal to `nll` for cross-entropy.
    pub kl: Tensor,
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
    /// `loss` over the velocity ids `classes` of an output vocabulary of `vocab` ids.
    pub fn new(loss: Loss, classes: Range<i64>, vocab: i64) -> Result<Criterion, LossError> {
        let (epsilon, target) = match loss {
            Loss::CrossEntropy => (0.0, SmoothingTarget::ExcludeSpecials),
            Loss::LabelSmoothing { epsilon, .. } if !(0.0..1.0).contains(&epsilon) => {
                return Err(LossError::Epsilon(epsilon));
            }
            Loss::LabelSmoothing { epsilon, target } => (epsilon, target),
        };
        let (name, needed, have) = match (epsilon > 0.0, target) {
            (false, _) => ("cross-entropy", 1, classes.end - classes.start),
            (true, SmoothingTarget::ExcludeSpecials) => ("label smoothing", 2, classes.end - classes.start),
            (true, SmoothingTarget::Original) => ("label smoothing (original target)", 3, vocab),
        };
        if have < needed || classes.start < 0 || classes.end > vocab || classes.is_empty() {
            return Err(LossError::Classes {
                loss: name,
                needed,
                start: classes.start,
                end: classes.end,
                vocab,
            });
        }
        Ok(Criterion {
            classes,
            vocab,
            epsilon,
            target,
        })
    }

    /// The velocity ids.
    pub fn classes(&self) -> Range<i64> {
        self.classes.clone()
    }

    /// The smoothing set `S` and the weight `w` on each of its non-true columns.
    fn spread(&self) -> (Range<i64>, f64) {
        match self.target {
            SmoothingTarget::ExcludeSpecials => {
                let k = self.classes.end - self.classes.start;
                (self.classes.clone(), self.epsilon / (k - 1) as f64)
            }
            SmoothingTarget::Original => (0..self.vocab, self.epsilon / (self.vocab - 2) as f64),
        }
    }

    /// The loss of `logits` `[B, T, V]` against `targets` `[B, T]` (i64).
    pub fn compute(&self, logits: &Tensor, targets: &Tensor) -> LossTerms {
        let Range { start, end } = self.classes;
        let vocab = logits.size()[2];
        // [B, T, V]
        let log_p = logits.log_softmax(-1, Kind::Float);
        let velocity = targets.ge(start).logical_and(&targets.lt(end));
        let counted = velocity.logical_or(&targets.eq(CLS as i64));
        // [B, T] -> [B, T, 1] -> [B, T]; targets outside the vocabulary are not counted anyway
        let index = targets.clamp(0, vocab - 1).unsqueeze(-1);
        let nll = -log_p.gather(-1, &index, false).squeeze_dim(-1);
        let zero = Tensor::zeros([], (Kind::Float, logits.device()));
        let counted_sum = |t: &Tensor| t.where_self(&counted, &zero).sum(Kind::Float);
        if self.epsilon == 0.0 {
            // One-hot target: the KL divergence is the cross-entropy.
            let nll_sum = counted_sum(&nll.detach());
            return LossTerms {
                sum: counted_sum(&nll),
                kl: nll_sum.shallow_clone(),
                nll: nll_sum,
                count: counted.sum(Kind::Int64),
            };
        }
        let eps = self.epsilon;
        let (set, w) = self.spread();
        // Is the true id in S? [B, T]
        let true_in_set = match self.target {
            SmoothingTarget::ExcludeSpecials => velocity.to_kind(Kind::Float),
            SmoothingTarget::Original => nll.ones_like(),
        };
        // sum of log p over S: [B, T, |S|] -> [B, T]
        let set_sum = log_p
            .narrow(-1, set.start, set.end - set.start)
            .sum_dim_intlist(-1, false, Kind::Float);
        // -sum_{c in S, c != y} log p(c) = -set_sum - [y in S] nll
        let objective = &nll * (1.0 - eps) + (-set_sum - &nll * &true_in_set) * w;
        // sum_c q_c log q_c: the true column, then the |S| - [y in S] others.
        let others = -(&true_in_set - (set.end - set.start) as f64);
        let q_log_q = others * (w * w.ln()) + (1.0 - eps) * (1.0 - eps).ln();
        LossTerms {
            sum: counted_sum(&objective),
            kl: counted_sum(&(objective.detach() + q_log_q)),
            nll: counted_sum(&nll.detach()),
            count: counted.sum(Kind::Int64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smoothing(epsilon: f64, target: SmoothingTarget) -> Loss {
        Loss::LabelSmoothing { epsilon, target }
    }

    const EXCLUDE: SmoothingTarget = SmoothingTarget::ExcludeSpecials;

    /// One batch of three positions over V = 5: ids 0 (CLS) and 1 are
    /// specials, 2..5 velocities.
    fn example() -> (Tensor, Tensor) {
        let logits = Tensor::from_slice(&[
            0.5f32, -1.0, 2.0, 0.0, 1.0, // target 2
            1.0, 1.0, 0.3, -0.7, 0.2, // target 4
            0.0, 0.0, 5.0, 5.0, 5.0, // target 1: a special that is not CLS, not counted
        ])
        .view([1, 3, 5]);
        let targets = Tensor::from_slice(&[2i64, 4, 1]).view([1, 3]);
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

    /// `sum_c q_c (log q_c - log p_c)` over the columns where `q_c > 0`.
    fn kl(q: &[f64], log_p: &[f64]) -> f64 {
        q.iter()
            .zip(log_p)
            .filter(|(q, _)| **q > 0.0)
            .map(|(q, lp)| q * (q.ln() - lp))
            .sum()
    }

    /// `-sum_c q_c log p_c`.
    fn cross(q: &[f64], log_p: &[f64]) -> f64 {
        -q.iter().zip(log_p).map(|(q, lp)| q * lp).sum::<f64>()
    }

    #[test]
    fn cross_entropy_is_the_negative_log_probability_of_real_targets() {
        let (logits, targets) = example();
        let c = Criterion::new(Loss::CrossEntropy, 2..5, 5).unwrap();
        let terms = c.compute(&logits, &targets);
        let [a, b] = rows();
        let expected = -a[2] - b[4];
        assert_eq!(terms.count.int64_value(&[]), 2);
        assert!(close(terms.sum.double_value(&[]), expected));
        assert!(close(terms.nll.double_value(&[]), expected));
        assert!(close(terms.kl.double_value(&[]), expected));
        assert!(close(terms.mean().double_value(&[]), expected / 2.0));
    }

    #[test]
    fn a_cls_label_counts() {
        let (logits, _) = example();
        let targets = Tensor::from_slice(&[0i64, 4, 1]).view([1, 3]);
        let terms = Criterion::new(Loss::CrossEntropy, 2..5, 5)
            .unwrap()
            .compute(&logits, &targets);
        let [a, b] = rows();
        assert_eq!(terms.count.int64_value(&[]), 2);
        assert!(close(terms.sum.double_value(&[]), -a[0] - b[4]));
    }

    #[test]
    fn label_smoothing_excluding_specials_matches_its_closed_form() {
        let (logits, targets) = example();
        let c = Criterion::new(smoothing(0.1, EXCLUDE), 2..5, 5).unwrap();
        let terms = c.compute(&logits, &targets);
        let [a, b] = rows();
        // Velocities 2, 3, 4: the true one gets 0.9, the two others 0.05 each.
        let (qa, qb) = ([0.0, 0.0, 0.9, 0.05, 0.05], [0.0, 0.0, 0.05, 0.05, 0.9]);
        let expected = cross(&qa, &a) + cross(&qb, &b);
        assert!(
            close(terms.sum.double_value(&[]), expected),
            "{} vs {expected}",
            terms.sum
        );
        assert!(close(terms.nll.double_value(&[]), -a[2] - b[4]));
        assert!(close(terms.kl.double_value(&[]), kl(&qa, &a) + kl(&qb, &b)));
    }

    /// midi-translation's `LabelSmoothing(size=V)`: `eps / (V - 2)` on every
    /// column but the true one, specials included; KL with sum reduction.
    #[test]
    fn label_smoothing_with_the_original_target_matches_midi_translation() {
        let (logits, targets) = example();
        let c = Criterion::new(smoothing(0.1, SmoothingTarget::Original), 2..5, 5).unwrap();
        let terms = c.compute(&logits, &targets);
        let [a, b] = rows();
        let w = 0.1 / 3.0;
        let (qa, qb) = ([w, w, 0.9, w, w], [w, w, w, w, 0.9]);
        assert!(close(terms.sum.double_value(&[]), cross(&qa, &a) + cross(&qb, &b)));
        assert!(close(terms.kl.double_value(&[]), kl(&qa, &a) + kl(&qb, &b)));
        // It differs from the other target.
        let other = Criterion::new(smoothing(0.1, EXCLUDE), 2..5, 5)
            .unwrap()
            .compute(&logits, &targets);
        assert!((other.sum.double_value(&[]) - terms.sum.double_value(&[])).abs() > 1e-3);
    }

    #[test]
    fn label_smoothing_gradient_pushes_towards_the_smoothed_target() {
        for (target, q) in [
            (EXCLUDE, [0.0, 0.0, 0.9, 0.05, 0.05]),
            (
                SmoothingTarget::Original,
                [0.1 / 3.0, 0.1 / 3.0, 0.9, 0.1 / 3.0, 0.1 / 3.0],
            ),
        ] {
            let (logits, targets) = example();
            let logits = logits.set_requires_grad(true);
            let c = Criterion::new(smoothing(0.1, target), 2..5, 5).unwrap();
            c.compute(&logits, &targets).sum.backward();
            // d/dz of -sum q log softmax(z) is sum(q) softmax(z) - q, per counted row.
            let grad = logits.grad();
            let [a, _] = rows();
            let mass: f64 = q.iter().sum();
            for (i, (log_p, q)) in a.iter().zip(q).enumerate() {
                assert!(close(grad.double_value(&[0, 0, i as i64]), mass * log_p.exp() - q));
            }
            // The uncounted position gets no gradient.
            assert_eq!(grad.get(0).get(2).abs().sum(Kind::Float).double_value(&[]), 0.0);
        }
    }

    #[test]
    fn zero_smoothing_is_cross_entropy() {
        let (logits, targets) = example();
        let ls = Criterion::new(smoothing(0.0, EXCLUDE), 2..5, 5)
            .unwrap()
            .compute(&logits, &targets);
        let ce = Criterion::new(Loss::CrossEntropy, 2..5, 5)
            .unwrap()
            .compute(&logits, &targets);
        assert!(ls.sum.allclose(&ce.sum, 1e-6, 1e-6, false));
    }

    #[test]
    fn nothing_counted_gives_zero_mean() {
        let (logits, _) = example();
        let targets = Tensor::ones([1, 3], (Kind::Int64, tch::Device::Cpu));
        let terms = Criterion::new(smoothing(0.1, EXCLUDE), 2..5, 5)
            .unwrap()
            .compute(&logits, &targets);
        assert_eq!(terms.count.int64_value(&[]), 0);
        assert_eq!(terms.mean().double_value(&[]), 0.0);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert_eq!(
            Criterion::new(smoothing(1.0, EXCLUDE), 2..5, 5),
            Err(LossError::Epsilon(1.0))
        );
        assert!(matches!(
            Criterion::new(smoothing(0.1, EXCLUDE), 2..3, 5),
            Err(LossError::Classes { needed: 2, .. })
        ));
        assert!(matches!(
            Criterion::new(Loss::CrossEntropy, 4..4, 5),
            Err(LossError::Classes { needed: 1, .. })
        ));
        assert!(matches!(
            Criterion::new(Loss::CrossEntropy, 1..129, 100),
            Err(LossError::Classes { .. })
        ));
        assert_eq!(
            Criterion::new(Loss::CrossEntropy, 1..129, 129).unwrap().classes(),
            1..129
        );
    }
}
