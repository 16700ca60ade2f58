//! Drawing the values of sampled axes.
//!
//! In: an [`Experiment`] whose matrix may hold sampled axes (values empty).
//! Out: the same experiment with every sampled axis's values drawn, and a
//! problem for each that cannot give what it asks.
//!
//! Each axis has its own stream: PCG-64 seeded with the SHA-256 of the
//! experiment's `seed` and the axis's path, so a file plans the same values
//! on every machine, and adding an axis leaves the others' values alone. A
//! number is drawn as `u = (next_u64 >> 11) / 2^53`, mapped onto the range
//! (linearly, or linearly in the logarithm), rounded to the axis's
//! significant digits and kept inside the range; a field of whole numbers
//! takes the rounded value's nearest integer. `int-uniform` and `choice`
//! draw by rejection and by cumulative weight.
//!
//! A lone sampled axis draws distinct values (a repeat is drawn again) and
//! lists them in order; an axis in a `zip` draws one value per row, repeats
//! allowed, and two rows of the zip may not be the same.

use rand_pcg::Pcg64;
use rand_pcg::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::error::{Kind, Problem};
use crate::file::{Axis, AxisValue, Distribution, Experiment, Factor, Override, SampleTarget, Sampling};
use crate::value::Value;

/// Draws every sampled axis of `experiment`'s matrix; what cannot be drawn
/// is added to `problems` (the values drawn so far are kept, so the planner
/// checks the rest).
pub(crate) fn draw_axes(experiment: &mut Experiment, problems: &mut Vec<Problem>) {
    let seed = experiment_seed(experiment);
    let Some(matrix) = &mut experiment.matrix else { return };
    for factor in &mut matrix.factors {
        match factor {
            Factor::Axis(axis) => draw_axis(axis, seed, true, problems),
            Factor::Zip { axes, span } => {
                for axis in axes.iter_mut() {
                    draw_axis(axis, seed, false, problems);
                }
                if axes.iter().any(|a| a.sampling.is_some()) {
                    let rows = axes.iter().map(|a| a.values.len()).min().unwrap_or(0);
                    let row = |r: usize| axes.iter().map(|a| a.values[r].label.as_str()).collect::<Vec<_>>();
                    if let Some((r, first)) =
                        (0..rows).find_map(|r| (0..r).find(|&earlier| row(earlier) == row(r)).map(|f| (r, f)))
                    {
                        problems.push(
                            Problem::at(
                                Kind::ZipRowTwice {
                                    row: r + 1,
                                    first: first + 1,
                                },
                                *span,
                            )
                            .help("draw fewer samples, widen a range, or cross the axes instead of zipping them"),
                        );
                    }
                }
            }
        }
    }
}

/// The experiment's own `seed` (the last one its settings write; 0 by default).
fn experiment_seed(experiment: &Experiment) -> i64 {
    experiment
        .settings
        .iter()
        .rev()
        .find_map(|o| match o {
            Override::Set {
                path: "seed",
                value: Value::Int(seed),
                ..
            } => Some(*seed),
            _ => None,
        })
        .unwrap_or(0)
}

fn draw_axis(axis: &mut Axis, seed: i64, distinct: bool, problems: &mut Vec<Problem>) {
    let Some(sampling) = &axis.sampling else { return };
    let values = match draw(sampling, &axis.name.value, seed, distinct) {
        Ok(values) => values,
        Err(values) => {
            problems.push(too_few(axis, sampling, values.len()));
            values
        }
    };
    axis.values = values
        .into_iter()
        .map(|(value, label)| AxisValue {
            overrides: overrides(&sampling.target, &value, sampling.span),
            label,
            span: sampling.span,
        })
        .collect();
}

/// A drawn value with its label.
type Drawn = (Value, String);

/// The axis's values with their labels: `Err` with those drawn when fewer
/// distinct ones than asked exist.
fn draw(sampling: &Sampling, path: &str, seed: i64, distinct: bool) -> Result<Vec<Drawn>, Vec<Drawn>> {
    let mut rng = stream(seed, path);
    let wanted = sampling.samples as usize;
    let mut drawn: Vec<Drawn> = Vec::with_capacity(wanted);
    // Enough tries that a range with `wanted` values is all but sure to give them.
    let mut tries = 0;
    while drawn.len() < wanted && tries < 64 * wanted + 256 {
        tries += 1;
        let value = one(sampling, &mut rng);
        let label = label(&value, &sampling.distribution);
        if !distinct || !drawn.iter().any(|(_, l)| *l == label) {
            drawn.push((value, label));
        }
    }
    if distinct {
        sort(&mut drawn, &sampling.distribution);
    }
    if drawn.len() < wanted { Err(drawn) } else { Ok(drawn) }
}

/// The axis's own random stream.
fn stream(seed: i64, path: &str) -> Pcg64 {
    let digest = Sha256::digest(format!("runner sampled axis\n{seed}\n{path}").as_bytes());
    Pcg64::from_seed(digest.into())
}

/// A uniform number in `[0, 1)` with 53 random bits.
fn unit(rng: &mut Pcg64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform whole number in `0..n` (`n >= 1`), by rejection.
fn below(rng: &mut Pcg64, n: u64) -> u64 {
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let x = rng.next_u64();
        if x < zone {
            return x % n;
        }
    }
}

/// One value. It lies between the bounds, which were checked against the
/// field, so it is one of the field's values.
fn one(sampling: &Sampling, rng: &mut Pcg64) -> Value {
    let number = |x: f64, low: f64, high: f64| {
        let rounded = round_to_digits(x, sampling.digits).clamp(low, high);
        match sampling.field.ty {
            crate::schema::Type::Int { .. } => Value::Int(rounded.round() as i64),
            _ => Value::Float(rounded),
        }
    };
    match &sampling.distribution {
        Distribution::Uniform { low, high } => number(low + unit(rng) * (high - low), *low, *high),
        Distribution::LogUniform { low, high } => {
            let (a, b) = (low.ln(), high.ln());
            number((a + unit(rng) * (b - a)).exp(), *low, *high)
        }
        Distribution::IntUniform { low, high } => {
            let n = high.abs_diff(*low).saturating_add(1);
            let k = low.wrapping_add(below(rng, n) as i64);
            match sampling.field.ty {
                crate::schema::Type::Float { .. } => Value::Float(k as f64),
                _ => Value::Int(k),
            }
        }
        Distribution::Choice { values, weights } => {
            let total: f64 = weights.iter().sum();
            let mut target = unit(rng) * total;
            let index = weights
                .iter()
                .position(|w| {
                    target -= w;
                    target < 0.0
                })
                .unwrap_or(values.len() - 1);
            values[index].0.clone()
        }
    }
}

/// `x` rounded to `digits` significant digits (through its decimal form,
/// so that the result is the number the label shows).
fn round_to_digits(x: f64, digits: u32) -> f64 {
    format!("{:.*e}", digits.saturating_sub(1) as usize, x)
        .parse()
        .unwrap_or(x)
}

/// A drawn value's label: as listed for `choice`, else its canonical form.
fn label(value: &Value, distribution: &Distribution) -> String {
    match distribution {
        Distribution::Choice { values, .. } => values
            .iter()
            .find(|(v, _)| v == value)
            .map_or_else(|| value.to_string(), |(_, label)| label.clone()),
        _ => value.to_string(),
    }
}

/// Numbers in increasing order; choices in their listed order.
fn sort(drawn: &mut [Drawn], distribution: &Distribution) {
    match distribution {
        Distribution::Choice { values, .. } => {
            drawn.sort_by_key(|(v, _)| values.iter().position(|(listed, _)| listed == v));
        }
        _ => drawn.sort_by(|a, b| {
            let (x, y) = (a.0.as_f64().unwrap_or(0.0), b.0.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }),
    }
}

/// What one drawn value sets.
fn overrides(target: &SampleTarget, value: &Value, span: crate::source::Span) -> Vec<Override> {
    match target {
        SampleTarget::Fields(paths) => paths
            .iter()
            .map(|path| Override::Set {
                path,
                value: value.clone(),
                span,
            })
            .collect(),
        SampleTarget::ChoiceField { choice, field } => vec![Override::Tweak {
            choice,
            field,
            value: value.clone(),
            span,
        }],
    }
}

fn too_few(axis: &Axis, sampling: &Sampling, drawn: usize) -> Problem {
    let help = match &sampling.distribution {
        Distribution::IntUniform { low, high } => {
            format!(
                "{low}..={high} holds {} whole numbers",
                high.abs_diff(*low).saturating_add(1)
            )
        }
        Distribution::Choice { values, .. } => format!("it lists {}; ask for fewer samples", values.len()),
        _ => format!(
            "at {} significant digits the range holds few numbers; raise `digits=` or ask for fewer samples",
            sampling.digits
        ),
    };
    Problem::at(
        Kind::TooFewDistinct {
            axis: axis.name.value.clone(),
            samples: sampling.samples,
            drawn,
        },
        sampling.span,
    )
    .help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_the_asked_significant_digits() {
        assert_eq!(round_to_digits(0.000123456, 3), 0.000123);
        assert_eq!(round_to_digits(98765.4, 2), 99000.0);
        assert_eq!(round_to_digits(1.0, 3), 1.0);
    }

    #[test]
    fn streams_depend_on_the_seed_and_the_path_only() {
        let first = |seed, path| stream(seed, path).next_u64();
        assert_eq!(first(0, "schedule.lr"), first(0, "schedule.lr"));
        assert_ne!(first(0, "schedule.lr"), first(1, "schedule.lr"));
        assert_ne!(first(0, "schedule.lr"), first(0, "schedule.warmup"));
    }

    #[test]
    fn units_lie_in_the_half_open_interval_and_spread_over_it() {
        let mut rng = stream(7, "x");
        let draws: Vec<f64> = (0..10_000).map(|_| unit(&mut rng)).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        let low = draws.iter().filter(|u| **u < 0.1).count();
        assert!((800..1200).contains(&low), "{low}");
    }

    #[test]
    fn rejection_gives_every_whole_number_of_the_range() {
        let mut rng = stream(3, "y");
        let mut seen = [0usize; 5];
        for _ in 0..5_000 {
            seen[below(&mut rng, 5) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (800..1200).contains(n)), "{seen:?}");
    }
}
