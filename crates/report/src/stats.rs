//! Summary statistics for the report: a list of numbers → a [`Spread`]
//! (mean, sample standard deviation, count, the 95% confidence interval of
//! the mean by Student's t) and its fixed-precision text; Welch's interval
//! for a difference of two independent means.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The mean and spread of a few numbers (one per replicate: a seed, or a
/// fold under k-fold).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (n − 1 in the denominator); `None`
    /// for a single number.
    pub std: Option<f64>,
    /// How many numbers.
    pub n: usize,
}

/// A 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Its lower end.
    pub low: f64,
    /// Its upper end.
    pub high: f64,
}

impl Interval {
    /// `[−1.20, +3.40]` with `decimals` digits.
    pub fn text(&self, decimals: usize) -> String {
        format!("[{}, {}]", signed(self.low, decimals), signed(self.high, decimals))
    }

    /// `[1.20, 3.40]`, without signs (for values rather than differences).
    pub fn plain(&self, decimals: usize) -> String {
        format!("[{}, {}]", fixed(self.low, decimals), fixed(self.high, decimals))
    }

    /// Whether it lies wholly above `x`.
    pub fn above(&self, x: f64) -> bool {
        self.low > x
    }

    /// Whether it lies wholly below `x`.
    pub fn below(&self, x: f64) -> bool {
        self.high < x
    }
}

/// The two-sided 95% critical value of Student's t with `df` degrees of
/// freedom (any real df > 0, as Welch's are); NaN otherwise.
pub fn t95(df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |t| t.inverse_cdf(0.975))
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Spread { mean, std, n })
    }

    /// The half-width of the mean's 95% confidence interval (Student's t
    /// with n − 1 degrees of freedom); `None` for a single number.
    pub fn half_width(&self) -> Option<f64> {
        let std = self.std?;
        Some(t95((self.n - 1) as f64) * std / (self.n as f64).sqrt())
    }

    /// The mean's 95% confidence interval; `None` for a single number.
    pub fn ci95(&self) -> Option<Interval> {
        let half = self.half_width()?;
        Some(Interval {
            low: self.mean - half,
            high: self.mean + half,
        })
    }

    /// `mean ± half-width of the 95% CI` (just the mean for one number)
    /// with `decimals` digits.
    pub fn text(&self, decimals: usize) -> String {
        match self.half_width() {
            Some(half) => format!("{} ± {}", fixed(self.mean, decimals), fixed(half, decimals)),
            None => fixed(self.mean, decimals),
        }
    }

    /// Like [`Spread::text`], with an explicit sign on the mean (for differences).
    pub fn signed(&self, decimals: usize) -> String {
        let mean = signed(self.mean, decimals);
        match self.half_width() {
            Some(half) => format!("{mean} ± {}", fixed(half, decimals)),
            None => mean,
        }
    }
}

/// `a − factor × b` for the means of two independent samples, with
/// Welch's 95% confidence interval (Welch–Satterthwaite degrees of
/// freedom); no interval when either sample has a single number.
pub fn welch(a: &Spread, b: &Spread, factor: f64) -> (f64, Option<Interval>) {
    let difference = a.mean - factor * b.mean;
    let (Some(sa), Some(sb)) = (a.std, b.std) else {
        return (difference, None);
    };
    let va = sa * sa / a.n as f64;
    let vb = factor * factor * sb * sb / b.n as f64;
    let variance = va + vb;
    let half = if variance == 0.0 {
        0.0
    } else {
        let df = variance * variance / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
        t95(df) * variance.sqrt()
    };
    (
        difference,
        Some(Interval {
            low: difference - half,
            high: difference + half,
        }),
    )
}

/// Spearman's rank correlation of paired values (ties take their mean
/// rank); `None` for fewer than 3 pairs or when either side is constant.
pub fn spearman(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let xs = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let ys = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let vx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let vy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

/// The 95% interval of a Spearman correlation `rho` over `n` pairs, by
/// Fisher's z with Fieller, Hartley and Pearson's standard error
/// √(1.06 / (n − 3)); `None` for fewer than 4 pairs.
pub fn spearman_ci95(rho: f64, n: usize) -> Option<Interval> {
    if n < 4 {
        return None;
    }
    let z = rho.clamp(-0.999_999, 0.999_999).atanh();
    let half = 1.959_964 * (1.06 / (n as f64 - 3.0)).sqrt();
    Some(Interval {
        low: (z - half).tanh(),
        high: (z + half).tanh(),
    })
}

/// 1-based ranks, ties given their mean rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// `value` with `decimals` digits; never `-0.00`.
pub fn fixed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_owned()
    } else {
        text
    }
}

/// `value` with an explicit sign (`+1.50`, `−0.25`; zero is `+0.00`).
pub fn signed(value: f64, decimals: usize) -> String {
    let body = fixed(value.abs(), decimals);
    let zero = body.chars().all(|c| c == '0' || c == '.');
    format!("{}{body}", if value < 0.0 && !zero { "−" } else { "+" })
}

#[cfg(test)]
mod tests {
    #[test]
    fn spearman_matches_hand_computed_ranks() {
        // Monotone: 1; reversed: -1; ranks (1,2,3,4) vs (2,1,4,3): 1 - 6·4/(4·15) = 0.6.
        let up = [(1.0, 10.0), (2.0, 20.0), (3.0, 25.0), (4.0, 90.0)];
        assert_eq!(spearman(&up), Some(1.0));
        let down: Vec<(f64, f64)> = up.iter().map(|&(x, y)| (x, -y)).collect();
        assert_eq!(spearman(&down), Some(-1.0));
        let swapped = [(1.0, 2.0), (2.0, 1.0), (3.0, 4.0), (4.0, 3.0)];
        assert!((spearman(&swapped).unwrap() - 0.6).abs() < 1e-12);
        // Ties share their mean rank; a constant side has no correlation.
        assert_eq!(ranks(&[5.0, 1.0, 5.0, 3.0]), [3.5, 1.0, 3.5, 2.0]);
        assert_eq!(spearman(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]), None);
        assert_eq!(spearman(&up[..2]), None);
        // z = atanh(0.6) = 0.6931, half-width 1.96 · √(1.06 / 7) = 0.7627 (n = 10).
        let ci = spearman_ci95(0.6, 10).unwrap();
        assert!((ci.low - (-0.0696_f64).tanh()).abs() < 1e-3, "{ci:?}");
        assert!((ci.high - 1.4558_f64.tanh()).abs() < 1e-3, "{ci:?}");
    }

    use super::*;

    #[test]
    fn sample_standard_deviation_and_its_interval() {
        let s = Spread::of(&[5.5, 7.5]).unwrap();
        assert_eq!(s.mean, 6.5);
        assert!((s.std.unwrap() - 2f64.sqrt()).abs() < 1e-12);
        // t(0.975, 1) = 12.706: half-width 12.706 × √2 / √2.
        assert_eq!(s.text(2), "6.50 ± 12.71");
        assert_eq!(s.signed(1), "+6.5 ± 12.7");
        assert_eq!(s.ci95().unwrap().text(2), "[−6.21, +19.21]");
    }

    #[test]
    fn t_quantiles_match_known_values() {
        // Two-sided 95% critical values, computed with mpmath's incomplete beta.
        let known = [
            (1.0, 12.7062047362),
            (2.0, 4.30265272975),
            (2.5, 3.574654842),
            (4.0, 2.7764451052),
            (7.3, 2.34506673655),
            (30.0, 2.0422724563),
            (120.0, 1.97993040508),
            (1000.0, 1.96233908083),
        ];
        for (df, t) in known {
            assert!((t95(df) - t).abs() < 1e-6, "df {df}: {} vs {t}", t95(df));
        }
        assert!(t95(0.0).is_nan());
    }

    #[test]
    fn welch_interval_of_a_difference() {
        let a = Spread::of(&[10.0, 12.0, 11.0, 14.0]).unwrap();
        let b = Spread::of(&[4.0, 5.0, 6.0, 6.0]).unwrap();
        let (difference, interval) = welch(&a, &b, 2.0);
        // 11.75 − 2 × 5.25; variances 2.9167/4 and 4 × 0.9167/4; df ≈ 5.93.
        assert!((difference - 1.25).abs() < 1e-12);
        let interval = interval.unwrap();
        let half = (interval.high - interval.low) / 2.0;
        let variance = 2.916_666_666_666_667 / 4.0 + 4.0 * 0.916_666_666_666_666_6 / 4.0;
        let df = variance * variance
            / ((2.916_666_666_666_667f64 / 4.0).powi(2) / 3.0 + (0.916_666_666_666_666_6f64).powi(2) / 3.0);
        assert!((half - t95(df) * variance.sqrt()).abs() < 1e-9, "{half}");
        assert!((5.0..7.0).contains(&df), "{df}");
        let one = Spread::of(&[3.0]).unwrap();
        assert_eq!(welch(&a, &one, 1.0), (8.75, None));
    }

    #[test]
    fn one_number_has_no_spread_and_no_negative_zero() {
        let s = Spread::of(&[-0.0001]).unwrap();
        assert_eq!(s.std, None);
        assert_eq!(s.ci95(), None);
        assert_eq!(s.text(2), "0.00");
        assert_eq!(Spread::of(&[]), None);
    }
}
