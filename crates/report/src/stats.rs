//! Summary statistics for the report: a list of numbers → a [`Spread`]
//! (mean, sample standard deviation, count) and its fixed-precision text.

/// The mean and spread of a few numbers (usually one per seed).
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

    /// `mean ± std` (just the mean for one number) with `decimals` digits.
    pub fn text(&self, decimals: usize) -> String {
        match self.std {
            Some(std) => format!("{} ± {}", fixed(self.mean, decimals), fixed(std, decimals)),
            None => fixed(self.mean, decimals),
        }
    }

    /// Like [`Spread::text`], with an explicit sign on the mean (for differences).
    pub fn signed(&self, decimals: usize) -> String {
        let body = fixed(self.mean.abs(), decimals);
        let zero = body.chars().all(|c| c == '0' || c == '.');
        let mean = format!("{}{body}", if self.mean < 0.0 && !zero { "−" } else { "+" });
        match self.std {
            Some(std) => format!("{mean} ± {}", fixed(std, decimals)),
            None => mean,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_standard_deviation() {
        let s = Spread::of(&[5.5, 7.5]).unwrap();
        assert_eq!(s.mean, 6.5);
        assert!((s.std.unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.text(2), "6.50 ± 1.41");
        assert_eq!(s.signed(1), "+6.5 ± 1.4");
    }

    #[test]
    fn one_number_has_no_spread_and_no_negative_zero() {
        let s = Spread::of(&[-0.0001]).unwrap();
        assert_eq!(s.std, None);
        assert_eq!(s.text(2), "0.00");
        assert_eq!(Spread::of(&[]), None);
    }
}
