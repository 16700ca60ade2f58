//! Where a token is: the positional signals both architectures share.
//!
//! - [`sinusoids`] and [`SinusoidTable`]: the Annotated Transformer's fixed
//!   sinusoidal positions, added to the embeddings (the vanilla model's
//!   default, T5's sinusoidal option).
//! - [`relative_position_bucket`] and [`RelativeBias`]: T5's learnt bias on
//!   the attention scores by bucketed relative position (T5's default, the
//!   vanilla model's relative option).

use tch::{Kind, Tensor, nn};

use super::CACHED_POSITIONS;

/// Sinusoidal positions `[len, d_model]`: `sin(pos / 10000^(2i/d))` at even
/// features `2i`, the cosine at odd ones.
pub(crate) fn sinusoids(len: i64, d_model: i64, device: tch::Device) -> Tensor {
    let options = (Kind::Float, device);
    // [len] -> [len, 1]
    let position = Tensor::arange(len, options).unsqueeze(1);
    // [ceil(d/2)]
    let frequency = (Tensor::arange_start_step(0, d_model, 2, options) * (-(10000f64.ln()) / d_model as f64)).exp();
    let angle = position * frequency;
    // [len, ceil(d/2), 2] -> [len, 2 * ceil(d/2)] -> [len, d]
    let half = angle.size()[1];
    Tensor::stack(&[angle.sin(), angle.cos()], 2)
        .view([len, 2 * half])
        .narrow(1, 0, d_model)
}

/// Sinusoidal positions ([`sinusoids`]) computed once, on the model's
/// device, for the first [`CACHED_POSITIONS`] positions; also T5's
/// sinusoidal option.
#[derive(Debug)]
pub(crate) struct SinusoidTable {
    /// `[P, D]`.
    table: Tensor,
}

impl SinusoidTable {
    /// The table for `d_model` features on `device`.
    pub(crate) fn new(d_model: i64, device: tch::Device) -> SinusoidTable {
        SinusoidTable {
            table: sinusoids(CACHED_POSITIONS, d_model, device),
        }
    }

    /// Positions `start..start + len`, `[len, D]`: a view of the table, or
    /// computed when the table is too short.
    pub(crate) fn at(&self, start: i64, len: i64) -> Tensor {
        let (rows, d_model) = self.table.size2().expect("[P, D]");
        if start + len <= rows {
            self.table.narrow(0, start, len)
        } else {
            sinusoids(start + len, d_model, self.table.device()).narrow(0, start, len)
        }
    }
}

/// The bucket of a relative position (`key position - query position`), as
/// HF `T5Attention._relative_position_bucket` computes it.
///
/// Bidirectional: half the buckets for keys before the query (and the query
/// itself), half for keys after it. Unidirectional (causal): keys after the
/// query all share bucket 0. Within a half of `n` buckets, distances below
/// `n / 2` have one bucket each; larger ones are log-spaced up to
/// `max_distance`, beyond which all share the last bucket. The logarithm is
/// taken in `f32` and truncated, as HF does on a float tensor.
pub fn relative_position_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: i64,
    max_distance: i64,
) -> i64 {
    let (half, offset, distance) = if bidirectional {
        let half = num_buckets / 2;
        let offset = if relative_position > 0 { half } else { 0 };
        (half, offset, relative_position.abs())
    } else {
        (num_buckets, 0, (-relative_position).max(0))
    };
    let max_exact = half / 2;
    if distance < max_exact {
        return offset + distance;
    }
    let log_ratio = (distance as f32 / max_exact as f32).ln() / (max_distance as f64 / max_exact as f64).ln() as f32;
    let large = max_exact + (log_ratio * (half - max_exact) as f32) as i64;
    offset + large.min(half - 1)
}

/// A learnt `[buckets, heads]` bias added to the attention scores by
/// relative position; also used by the vanilla model's relative option.
#[derive(Debug)]
pub(crate) struct RelativeBias {
    weight: Tensor,
    /// Bucket of each relative position `-max_distance..=max_distance`; all
    /// farther positions share the bucket of `±max_distance`.
    table: Tensor,
    max_distance: i64,
    /// Buckets `[P, P]` of the first [`CACHED_POSITIONS`] query and key
    /// positions, computed once: every shorter `[T, S]` is a view of it.
    cached: Tensor,
}

impl RelativeBias {
    /// Registers `weight` under `p`.
    pub(crate) fn new(
        p: nn::Path,
        heads: i64,
        buckets: i64,
        max_distance: i64,
        bidirectional: bool,
        init: nn::Init,
    ) -> RelativeBias {
        let table: Vec<i64> = (-max_distance..=max_distance)
            .map(|r| relative_position_bucket(r, bidirectional, buckets, max_distance))
            .collect();
        let table = Tensor::from_slice(&table).to_device(p.device());
        RelativeBias {
            weight: p.var("weight", &[buckets, heads], init),
            cached: bucket_matrix(&table, max_distance, 0, CACHED_POSITIONS, CACHED_POSITIONS),
            table,
            max_distance,
        }
    }

    /// Buckets `[T, S]` of the `queries` query positions from `first_query`
    /// on against key positions `0..keys`.
    fn buckets(&self, first_query: i64, queries: i64, keys: i64) -> Tensor {
        if first_query + queries <= CACHED_POSITIONS && keys <= CACHED_POSITIONS {
            self.cached.narrow(0, first_query, queries).narrow(1, 0, keys)
        } else {
            bucket_matrix(&self.table, self.max_distance, first_query, queries, keys)
        }
    }

    /// The bias `[1, H, T, S]` of `queries` query positions from
    /// `first_query` on (0 for a whole sequence, `t` for the one new query of
    /// an incremental step) against key positions `0..keys`.
    pub(crate) fn forward(&self, first_query: i64, queries: i64, keys: i64) -> Tensor {
        let buckets = self.buckets(first_query, queries, keys);
        // [T, S] -> [T, S, H] -> [H, T, S] -> [1, H, T, S]
        Tensor::embedding(&self.weight, &buckets, -1, false, false)
            .permute([2, 0, 1])
            .unsqueeze(0)
    }
}

/// Buckets `[T, S]` of `queries` query positions from `first_query` on
/// against key positions `0..keys`, looked up in `table` (the bucket of each
/// relative position `-max_distance..=max_distance`).
fn bucket_matrix(table: &Tensor, max_distance: i64, first_query: i64, queries: i64, keys: i64) -> Tensor {
    let device = table.device();
    let q = Tensor::arange_start(first_query, first_query + queries, (Kind::Int64, device));
    let k = Tensor::arange(keys, (Kind::Int64, device));
    // key - query: [1, S] - [T, 1] -> [T, S]
    let relative = k.unsqueeze(0) - q.unsqueeze(1);
    let index = relative.clamp(-max_distance, max_distance) + max_distance;
    // [T * S] -> [T, S]
    table.index_select(0, &index.view([-1])).view([queries, keys])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::max_diff;

    #[test]
    fn buckets_match_known_answers() {
        let bi = |r| relative_position_bucket(r, true, 32, 128);
        let uni = |r| relative_position_bucket(r, false, 32, 128);
        // Bidirectional: 16 buckets a side, 8 exact, then log-spaced to 128.
        // Keys before the query (r < 0) and the query itself use 0..16, keys after 16..32.
        let expected_bi = [
            (0, 0),
            (-1, 1),
            (1, 17),
            (-7, 7),
            (7, 23),
            (-8, 8),
            (-15, 9),  // 8 + floor(8 * ln(15/8) / ln 16) = 8 + floor(1.81)
            (-16, 10), // 8 + 8 * ln 2 / ln 16 = 8 + 2, exactly
            (16, 26),
            (-32, 12),
            (-64, 14),
            (-127, 15),
            (-128, 15),
            (200, 31),
            (-10_000, 15),
        ];
        for (r, bucket) in expected_bi {
            assert_eq!(bi(r), bucket, "bidirectional {r}");
        }
        // Unidirectional: keys after the query (r > 0) all land in bucket 0;
        // 16 exact distances, then log-spaced over 16 buckets to 128.
        let expected_uni = [
            (0, 0),
            (-1, 1),
            (1, 0),
            (5, 0),
            (-15, 15),
            (-16, 16),
            (-32, 21), // 16 + floor(16 * ln 2 / ln 8) = 16 + floor(5.33)
            (-64, 26), // 16 + floor(10.67)
            (-127, 31),
            (-1000, 31),
        ];
        for (r, bucket) in expected_uni {
            assert_eq!(uni(r), bucket, "unidirectional {r}");
        }
    }

    /// HF's `_relative_position_bucket`, transcribed in tensor operations.
    fn hf_buckets(relative: &Tensor, bidirectional: bool, num_buckets: i64, max_distance: i64) -> Tensor {
        let mut n = num_buckets;
        let mut buckets = relative.zeros_like();
        let relative = if bidirectional {
            n /= 2;
            buckets += relative.gt(0).to_kind(Kind::Int64) * n;
            relative.abs()
        } else {
            -relative.minimum(&relative.zeros_like())
        };
        let max_exact = n / 2;
        let is_small = relative.lt(max_exact);
        let large = (relative.to_kind(Kind::Float) / max_exact as f64).log()
            / (max_distance as f64 / max_exact as f64).ln()
            * (n - max_exact) as f64;
        let large = (large.to_kind(Kind::Int64) + max_exact).clamp_max(n - 1);
        buckets + relative.where_self(&is_small, &large)
    }

    #[test]
    fn buckets_match_the_hf_formula_in_tensor_operations() {
        let range: Vec<i64> = (-1000..=1000).collect();
        let relative = Tensor::from_slice(&range);
        for (bidirectional, buckets, max_distance) in
            [(true, 32, 128), (false, 32, 128), (true, 8, 16), (false, 64, 300)]
        {
            let hf = hf_buckets(&relative, bidirectional, buckets, max_distance);
            for (i, r) in range.iter().enumerate() {
                assert_eq!(
                    relative_position_bucket(*r, bidirectional, buckets, max_distance),
                    hf.int64_value(&[i as i64]),
                    "{r} {bidirectional} {buckets} {max_distance}"
                );
            }
        }
    }

    #[test]
    fn the_bias_table_lookup_agrees_with_the_bucket_function_beyond_max_distance() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        for bidirectional in [true, false] {
            let init = nn::Init::Const(0.0);
            let bias = RelativeBias::new(vs.root() / bidirectional, 2, 32, 128, bidirectional, init);
            // From the cached matrix (a whole sequence, rows further on), and
            // computed past its end.
            let p = CACHED_POSITIONS;
            for (first, queries, keys) in [(0, 300, 310), (250, 50, 310), (p - 100, 100, p + 10)] {
                let buckets = bias.buckets(first, queries, keys);
                assert_eq!(buckets.size(), [queries, keys]);
                for (i, k) in [
                    (0, 0),
                    (0, 300),
                    (49, 0),
                    (20, 151),
                    (10, 309),
                    (49, 170),
                    (queries - 1, keys - 1),
                ] {
                    let q = first + i;
                    let expected = relative_position_bucket(k - q, bidirectional, 32, 128);
                    assert_eq!(buckets.int64_value(&[i, k]), expected, "{q} {k} {bidirectional}");
                }
            }
            assert_eq!(bias.forward(0, 5, 7).size(), [1, 2, 5, 7]);
            assert_eq!(bias.forward(6, 1, 7).size(), [1, 2, 1, 7]);
        }
    }

    #[test]
    fn sinusoids_interleave_sine_and_cosine() {
        let pe = sinusoids(3, 6, tch::Device::Cpu);
        assert_eq!(pe.size(), [3, 6]);
        let at = |p, i| pe.double_value(&[p, i]);
        for i in 0..3 {
            assert_eq!((at(0, 2 * i), at(0, 2 * i + 1)), (0.0, 1.0));
        }
        let frequency = 10000f64.powf(-2.0 / 6.0);
        assert!((at(2, 2) - (2.0 * frequency).sin()).abs() < 1e-6);
        assert!((at(2, 3) - (2.0 * frequency).cos()).abs() < 1e-6);
        assert!((at(1, 0) - 1f64.sin()).abs() < 1e-6);
        // An odd width keeps the first d features.
        assert_eq!(sinusoids(2, 5, tch::Device::Cpu).size(), [2, 5]);
    }

    #[test]
    fn the_sinusoid_table_gives_the_positions_asked_for_within_and_beyond_it() {
        let table = SinusoidTable::new(6, tch::Device::Cpu);
        let p = CACHED_POSITIONS;
        for (start, len) in [(0, 129), (7, 1), (p - 3, 3), (p - 3, 10), (p + 5, 2)] {
            let expected = sinusoids(start + len, 6, tch::Device::Cpu).narrow(0, start, len);
            let got = table.at(start, len);
            assert_eq!(got.size(), [len, 6]);
            assert!(max_diff(&got, &expected) < 1e-6, "{start} {len}");
        }
    }
}
