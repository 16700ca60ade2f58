//! Reading predictions off a model, and the evaluation of a split.
//!
//! In: a network, its run's decoder convention and argmax setting
//! ([`Predictor`]), and windows on the device. Out: teacher-forced and greedy
//! velocities, and an [`Evaluation`] of a split: runner's own loss (the
//! cross-entropy of the true velocity, comparable across every run), each
//! original's own loss where the run uses its setting, and the velocity
//! metrics. Only velocity positions are scored; under
//! [`DecoderInput::ShiftRight`] the decoder's first output (the `<CLS>`
//! label) counts in that setting's loss only.

use std::ops::Range;

use tch::{Device, Kind, Tensor};

use super::loss::Criterion;
use super::step::{DeviceWindows, decoder_io};
use crate::model::Seq2Seq;
use runner_plan::config::{Argmax, DecoderInput, Loss, RunConfig};
use runner_store::metrics::VelocityMetrics;

/// Windows per evaluation batch on `device`: 64 on the CPU (larger batches
/// gain nothing there), 256 on CUDA, where small batches leave the card
/// waiting on kernel launches (greedy decoding takes 128 decoder steps a
/// batch) and 256 keeps the teacher-forced logits of even a shared
/// vocabulary (`[256, 128, ~6,700]` in f32, with their log-softmax) near
/// 2 GB.
pub fn eval_batch(device: Device) -> i64 {
    if device.is_cuda() { 256 } else { 64 }
}

/// A network with the settings that say how to read predictions off it.
pub struct Predictor<'a> {
    /// The network.
    pub net: &'a dyn Seq2Seq,
    /// The velocity ids (velocity `v` is `classes.start + v`).
    pub classes: Range<i64>,
    /// What the decoder reads.
    pub decoder_input: DecoderInput,
    /// Which ids a prediction chooses among.
    pub argmax: Argmax,
}

impl<'a> Predictor<'a> {
    /// `net` read as `config` says, with velocity ids `classes`.
    pub fn new(net: &'a dyn Seq2Seq, config: &RunConfig, classes: Range<i64>) -> Predictor<'a> {
        Predictor {
            net,
            classes,
            decoder_input: config.train.decoder_input,
            argmax: config.evaluate.argmax,
        }
    }

    /// Positions of the decoder's output before the first velocity.
    fn offset(&self) -> i64 {
        self.decoder_input.prefix().len() as i64 - 1
    }

    /// Teacher-forced logits (eval mode) for target windows `tgt` `[B, L+1]`:
    /// the decoder's whole output `[B, T, V]` with its targets `[B, T]`, and
    /// the `[B, L, V]` / `[B, L]` part of them at velocity positions.
    pub fn teacher_forced(&self, src: &Tensor, tgt: &Tensor) -> TeacherForced {
        let (tgt_in, tgt_out) = decoder_io(tgt, self.decoder_input);
        let logits = self.net.forward(src, &tgt_in, false).to_kind(Kind::Float);
        let length = tgt.size()[1] - 1;
        TeacherForced {
            velocity_logits: logits.narrow(1, self.offset(), length),
            velocity_targets: tgt_out.narrow(1, self.offset(), length),
            logits,
            targets: tgt_out,
        }
    }

    /// The chosen id at each position of `logits` `[.., V]` (same shape
    /// less the last dimension, keeping it when `keep`).
    fn choose(&self, logits: &Tensor, keep: bool) -> Tensor {
        match self.argmax {
            Argmax::Velocities => {
                let start = self.classes.start;
                let velocity = logits.narrow(-1, start, self.classes.end - start);
                velocity.argmax(-1, keep) + start
            }
            Argmax::Vocabulary => logits.argmax(-1, keep),
        }
    }

    /// Chosen ids as velocities, flattened; an id that is not a velocity is 0.
    pub fn velocities(&self, ids: &Tensor) -> Vec<u8> {
        let velocity = ids - self.classes.start;
        let inside = ids.ge(self.classes.start).logical_and(&ids.lt(self.classes.end));
        let velocity = velocity.where_self(&inside, &velocity.zeros_like());
        Vec::<u8>::try_from(velocity.to_kind(Kind::Uint8).flatten(0, -1).to_device(Device::Cpu)).unwrap_or_default()
    }

    /// The most likely velocity at each position of `logits` `[B, L, V]`, flattened.
    pub fn pick(&self, logits: &Tensor) -> Vec<u8> {
        self.velocities(&self.choose(logits, false))
    }

    /// Greedy autoregressive decoding of `length` velocities per source
    /// row, batched: the decoder reads the convention's prefix (`[CLS]`, or
    /// `[0, CLS]` for shift-right), then feeds back its own choices. The
    /// source is encoded once; each step feeds one id to
    /// [`Seq2Seq::decode_next`], which keeps the keys and values of the
    /// earlier ones. Flattened `[B * length]`.
    pub fn greedy(&self, src: &Tensor, length: i64) -> Vec<u8> {
        let memory = self.net.encode(src, None, false);
        let mut state = self.net.start_decoding(&memory);
        let batch = src.size()[0];
        let mut logits = None;
        for &id in self.decoder_input.prefix() {
            let next = Tensor::full([batch, 1], id, (Kind::Int64, src.device()));
            logits = Some(self.net.decode_next(&mut state, &next)); // [B, V]
        }
        let mut logits = logits.expect("a prefix is never empty");
        let mut chosen = Vec::with_capacity(length as usize);
        for step in 0..length {
            let next = self.choose(&logits, true); // [B, 1]
            if step + 1 < length {
                logits = self.net.decode_next(&mut state, &next);
            }
            chosen.push(next);
        }
        // length x [B, 1] -> [B, length]
        self.velocities(&Tensor::cat(&chosen, 1))
    }
}

/// Teacher-forced outputs of one batch.
pub struct TeacherForced {
    /// The decoder's whole output `[B, T, V]`.
    pub logits: Tensor,
    /// Its targets `[B, T]` (with the `<CLS>` label under shift-right).
    pub targets: Tensor,
    /// The outputs at velocity positions `[B, L, V]`.
    pub velocity_logits: Tensor,
    /// Their true ids `[B, L]`.
    pub velocity_targets: Tensor,
}

/// Validation or test results.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Cross-entropy of the true velocity, per velocity position: runner's
    /// loss, comparable across every run.
    pub loss: f64,
    /// midi-translation's val loss: the label-smoothing KL divergence per
    /// counted position, for runs trained with label smoothing.
    pub ls_kl: Option<f64>,
    /// midi-hf-transformers' val loss: cross-entropy over the labels
    /// `[CLS, v1 .. vn]`, for runs whose decoder input is shift-right.
    pub ce_with_cls: Option<f64>,
    /// Teacher-forced metrics.
    pub teacher_forced: VelocityMetrics,
    /// Greedy-decoded metrics, when asked for.
    pub greedy: Option<VelocityMetrics>,
}

/// Evaluates `split` in batches of [`eval_batch`]: teacher-forced losses and
/// metrics, and greedy metrics when `greedy`.
pub fn evaluate(
    predictor: &Predictor,
    criterion: &Criterion,
    loss: Loss,
    split: &DeviceWindows,
    greedy: bool,
) -> Evaluation {
    tch::no_grad(|| {
        let (mut velocity_nll, mut kl, mut nll, mut counted) = (0.0, 0.0, 0.0, 0i64);
        let mut predicted: Vec<u8> = Vec::new();
        let mut greedy_predicted: Vec<u8> = Vec::new();
        let mut truth: Vec<u8> = Vec::new();
        let n = split.len();
        let batch = eval_batch(split.src.device());
        let mut start = 0;
        while start < n {
            let size = batch.min(n - start);
            let src = split.src.narrow(0, start, size);
            let tgt = split.tgt.narrow(0, start, size);
            let out = predictor.teacher_forced(&src, &tgt);
            let log_probs = out.velocity_logits.log_softmax(-1, Kind::Float);
            velocity_nll += -log_probs
                .gather(2, &out.velocity_targets.unsqueeze(-1), false)
                .sum(Kind::Double)
                .double_value(&[]);
            let terms = criterion.compute(&out.logits, &out.targets);
            kl += terms.kl.double_value(&[]);
            nll += terms.nll.double_value(&[]);
            counted += terms.count.int64_value(&[]);
            predicted.extend(predictor.pick(&out.velocity_logits));
            truth.extend(predictor.velocities(&out.velocity_targets));
            if greedy {
                greedy_predicted.extend(predictor.greedy(&src, out.velocity_targets.size()[1]));
            }
            start += size;
        }
        let per = |sum: f64, count: i64| sum / count.max(1) as f64;
        Evaluation {
            loss: per(velocity_nll, truth.len() as i64),
            ls_kl: matches!(loss, Loss::LabelSmoothing { .. }).then(|| per(kl, counted)),
            ce_with_cls: (predictor.decoder_input == DecoderInput::ShiftRight).then(|| per(nll, counted)),
            teacher_forced: VelocityMetrics::of(&predicted, &truth),
            greedy: greedy.then(|| VelocityMetrics::of(&greedy_predicted, &truth)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{ids, seeded, tiny};
    use runner_plan::config::{Architecture, ModelConfig, Norm, Positions, Scheme};
    use tch::nn;

    /// Greedy decoding as it was before the key/value cache: the whole
    /// growing sequence, from `prefix`, through [`Seq2Seq::decode`] at every step.
    fn decode_full_prefix(
        net: &dyn Seq2Seq,
        src: &Tensor,
        length: i64,
        classes: &Range<i64>,
        prefix: &[i64],
    ) -> Vec<u8> {
        let memory = net.encode(src, None, false);
        let batch = src.size()[0];
        let mut ys = Tensor::from_slice(prefix).view([1, -1]).repeat([batch, 1]);
        for _ in 0..length {
            let logits = net.decode(&memory, &ys, false); // [B, t, V]
            let last = logits
                .select(1, -1)
                .narrow(1, classes.start, classes.end - classes.start); // [B, 128]
            let next = last.argmax(-1, true) + classes.start; // [B, 1]
            ys = Tensor::cat(&[ys, next], 1);
        }
        let predicted = (ys.narrow(1, prefix.len() as i64, length) - classes.start)
            .to_kind(Kind::Uint8)
            .flatten(0, -1);
        Vec::<u8>::try_from(predicted).unwrap()
    }

    #[test]
    fn cached_greedy_decoding_chooses_what_full_prefix_decoding_does() {
        let _generator = seeded(11);
        // Ids 2..12 are the "velocities" of a 12-id target vocabulary.
        let classes = 2..12;
        let mut varied = 0;
        for architecture in [Architecture::Vanilla, Architecture::T5] {
            for norm in [Norm::Pre, Norm::Post] {
                for positions in [Positions::Sinusoidal, Positions::Relative] {
                    for decoder_input in [DecoderInput::Cls, DecoderInput::ShiftRight] {
                        let cfg = ModelConfig {
                            norm,
                            positions,
                            ..tiny(architecture)
                        };
                        let vs = nn::VarStore::new(Device::Cpu);
                        let net = crate::model::build(&vs.root(), &cfg, 30, 12, Scheme::Separate).unwrap();
                        let predictor = Predictor {
                            net: net.as_ref(),
                            classes: classes.clone(),
                            decoder_input,
                            argmax: Argmax::Velocities,
                        };
                        let src = ids(3, 9, 0, 30);
                        let (cached, full) = tch::no_grad(|| {
                            (
                                predictor.greedy(&src, 20),
                                decode_full_prefix(net.as_ref(), &src, 20, &classes, decoder_input.prefix()),
                            )
                        });
                        assert_eq!(cached.len(), 3 * 20);
                        assert_eq!(cached, full, "{cfg:?} {decoder_input:?}");
                        varied += usize::from(cached.iter().any(|&v| v != cached[0]));
                    }
                }
            }
        }
        // Untrained models may repeat one velocity; most here do not.
        assert!(varied >= 8, "{varied} of 16 models vary their choices");
    }

    #[test]
    fn shift_right_scores_the_velocity_positions_after_the_cls_label() {
        let _generator = seeded(12);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = crate::model::build(&vs.root(), &tiny(Architecture::T5), 30, 30, Scheme::Shared).unwrap();
        let predictor = Predictor {
            net: net.as_ref(),
            classes: 20..30,
            decoder_input: DecoderInput::ShiftRight,
            argmax: Argmax::Velocities,
        };
        let src = ids(2, 6, 2, 20);
        let tgt = ids(2, 7, 20, 30);
        let _ = tgt.narrow(1, 0, 1).fill_(0);
        let out = tch::no_grad(|| predictor.teacher_forced(&src, &tgt));
        // The decoder reads [0, CLS, v1 .. v5] and predicts [CLS, v1 .. v6].
        assert_eq!(out.logits.size(), [2, 7, 30]);
        assert!(out.targets.equal(&tgt));
        assert!(out.velocity_targets.equal(&tgt.narrow(1, 1, 6)));
        assert!(out.velocity_logits.equal(&out.logits.narrow(1, 1, 6)));
        let by_hand = tch::no_grad(|| {
            let tgt_in = Tensor::cat(&[tgt.narrow(1, 0, 1).zeros_like(), tgt.narrow(1, 0, 6)], 1);
            net.forward(&src, &tgt_in, false)
        });
        assert!(by_hand.allclose(&out.logits, 1e-6, 1e-6, false));
    }

    #[test]
    fn a_vocabulary_argmax_may_choose_a_special_which_counts_as_velocity_0() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = crate::model::build(&vs.root(), &tiny(Architecture::Vanilla), 30, 12, Scheme::Separate).unwrap();
        // Over ids 0..5 (2..5 velocities 0..3): CLS is the most likely id in row 0.
        let logits = Tensor::from_slice(&[9.0f32, 0.0, 1.0, 3.0, 2.0, 0.0, 0.0, 1.0, 3.0, 2.0]).view([1, 2, 5]);
        let mut predictor = Predictor {
            net: net.as_ref(),
            classes: 2..5,
            decoder_input: DecoderInput::Cls,
            argmax: Argmax::Vocabulary,
        };
        assert_eq!(predictor.pick(&logits), [0, 1]);
        predictor.argmax = Argmax::Velocities;
        assert_eq!(predictor.pick(&logits), [1, 1]);
    }
}
