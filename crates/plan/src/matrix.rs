//! The matrix → cells: label sets with the overrides that make them.
//!
//! In: an [`Experiment`]. Out: its cells, before seeds are added. Without a
//! `matrix`, each variant is a cell (or the base settings alone are, when
//! there are no variants); with one, the full product of its factors
//! (a `zip` is one factor), minus `exclude` rules, plus `include` rules.

use runner_spec::file::{Axis, AxisValue, Factor, Rule};
use runner_spec::{Experiment, Kind, Override, Problem};

/// The most cells a matrix's product may have (before seeds).
pub const MAX_CELLS: usize = 100_000;

/// One combination of axis values.
#[derive(Debug, Clone)]
pub struct Cell {
    /// (axis, label) pairs, in factor order.
    pub labels: Vec<(String, String)>,
    /// What the cell changes on top of the base settings.
    pub overrides: Vec<Override>,
}

impl Cell {
    /// Whether every pair of the rule holds for this cell.
    fn matches(&self, rule: &Rule) -> bool {
        rule.pairs
            .iter()
            .all(|(axis, label)| self.labels.iter().any(|(a, l)| *a == axis.value && *l == label.value))
    }
}

/// The experiment's cells, or the problems in its matrix.
pub fn cells(experiment: &Experiment) -> Result<Vec<Cell>, Vec<Problem>> {
    let Some(matrix) = &experiment.matrix else {
        if experiment.variants.is_empty() {
            return Ok(vec![Cell {
                labels: Vec::new(),
                overrides: Vec::new(),
            }]);
        }
        return Ok(experiment
            .variants
            .iter()
            .map(|v| Cell {
                labels: vec![("variant".to_owned(), v.name.value.clone())],
                overrides: v.overrides.clone(),
            })
            .collect());
    };
    let axes: Vec<&Axis> = matrix.factors.iter().flat_map(Factor::axes).collect();
    let mut problems = check_axes(experiment, &axes);
    for rule in matrix.exclude.iter().chain(&matrix.include) {
        check_rule(rule, &axes, &mut problems);
    }
    let size = matrix
        .factors
        .iter()
        .map(|f| f.axes().iter().map(|a| a.values.len()).min().unwrap_or(0) as u128)
        .try_fold(1u128, u128::checked_mul);
    if size.is_none_or(|n| n > MAX_CELLS as u128) {
        let cells = size.map_or_else(|| "more than 2^128".to_owned(), |n| n.to_string());
        problems.push(
            Problem::at(
                Kind::TooManyCells {
                    cells,
                    limit: MAX_CELLS,
                },
                matrix.span,
            )
            .help("draw fewer samples, or `zip` sampled axes (one draw per row) instead of crossing them"),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut cells = product(experiment, &matrix.factors);
    cells.retain(|cell| !matrix.exclude.iter().any(|rule| cell.matches(rule)));
    for rule in &matrix.include {
        if let Some(cell) = included(experiment, rule, &axes, &mut problems)
            && !cells.iter().any(|c| c.labels == cell.labels)
        {
            cells.push(cell);
        }
    }
    if cells.is_empty() && problems.is_empty() {
        problems.push(
            Problem::at(Kind::EmptyMatrix, matrix.span)
                .help("an `exclude` rule removes every combination, or an axis has no values"),
        );
    }
    if problems.is_empty() { Ok(cells) } else { Err(problems) }
}

/// Axes over undeclared variants, and axes varied twice.
fn check_axes(experiment: &Experiment, axes: &[&Axis]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for axis in axes {
        if axis.name.value == "variant" {
            for value in &axis.values {
                if !experiment.variants.iter().any(|v| v.name.value == value.label) {
                    let names: Vec<&str> = experiment.variants.iter().map(|v| v.name.value.as_str()).collect();
                    let help =
                        runner_spec::error::did_you_mean(&value.label, names.iter().copied()).unwrap_or_else(|| {
                            format!(
                                "declared variants: {}",
                                if names.is_empty() {
                                    "none".to_owned()
                                } else {
                                    names.join(", ")
                                }
                            )
                        });
                    problems.push(
                        Problem::at(
                            Kind::UnknownVariant {
                                name: value.label.clone(),
                            },
                            value.span,
                        )
                        .help(help),
                    );
                }
            }
        }
    }
    for (i, axis) in axes.iter().enumerate() {
        if let Some(first) = axes[..i].iter().find(|a| a.name.value == axis.name.value) {
            problems.push(
                Problem::at(
                    Kind::AxisTwice {
                        axis: axis.name.value.clone(),
                    },
                    axis.name.span,
                )
                .also(first.name.span, "first here"),
            );
        }
    }
    problems
}

/// The full product of the factors, in order (a `zip` is one factor).
fn product(experiment: &Experiment, factors: &[Factor]) -> Vec<Cell> {
    let mut cells = vec![Cell {
        labels: Vec::new(),
        overrides: Vec::new(),
    }];
    for factor in factors {
        // The parser reports a `zip` of unequal axes; plan the rows they share.
        let rows = factor.axes().iter().map(|a| a.values.len()).min().unwrap_or(0);
        let mut next = Vec::with_capacity(cells.len() * rows);
        for cell in &cells {
            for row in 0..rows {
                let mut cell = cell.clone();
                for axis in factor.axes() {
                    add_value(&mut cell, axis, &axis.values[row], experiment);
                }
                next.push(cell);
            }
        }
        cells = next;
    }
    cells
}

/// The cell an `include` rule adds: it must name a value for every axis.
fn included(experiment: &Experiment, rule: &Rule, axes: &[&Axis], problems: &mut Vec<Problem>) -> Option<Cell> {
    let missing: Vec<&str> = axes
        .iter()
        .filter(|a| !rule.pairs.iter().any(|(k, _)| k.value == a.name.value))
        .map(|a| a.name.value.as_str())
        .collect();
    if !missing.is_empty() {
        problems.push(Problem::at(
            Kind::IncompleteInclude {
                missing: missing.join(", "),
            },
            rule.span,
        ));
        return None;
    }
    let mut cell = Cell {
        labels: Vec::new(),
        overrides: Vec::new(),
    };
    for axis in axes {
        let label = &rule
            .pairs
            .iter()
            .find(|(k, _)| k.value == axis.name.value)
            .expect("checked above")
            .1
            .value;
        let value = axis
            .values
            .iter()
            .find(|v| v.label == *label)
            .expect("checked by check_rule");
        add_value(&mut cell, axis, value, experiment);
    }
    Some(cell)
}

fn add_value(cell: &mut Cell, axis: &Axis, value: &AxisValue, experiment: &Experiment) {
    cell.labels.push((axis.name.value.clone(), value.label.clone()));
    if axis.name.value == "variant" {
        if let Some(variant) = experiment.variants.iter().find(|v| v.name.value == value.label) {
            cell.overrides.extend(variant.overrides.iter().cloned());
        }
    } else {
        cell.overrides.extend(value.overrides.iter().cloned());
    }
}

fn check_rule(rule: &Rule, axes: &[&Axis], problems: &mut Vec<Problem>) {
    for (key, label) in &rule.pairs {
        match axes.iter().find(|a| a.name.value == key.value) {
            None => {
                let names: Vec<&str> = axes.iter().map(|a| a.name.value.as_str()).collect();
                let help = runner_spec::error::did_you_mean(&key.value, names.iter().copied())
                    .unwrap_or_else(|| format!("axes: {}", names.join(", ")));
                problems.push(
                    Problem::at(
                        Kind::NoSuchAxis {
                            axis: key.value.clone(),
                        },
                        key.span,
                    )
                    .help(help),
                );
            }
            Some(axis) if !axis.values.iter().any(|v| v.label == label.value) => {
                let labels: Vec<&str> = axis.values.iter().map(|v| v.label.as_str()).collect();
                problems.push(
                    Problem::at(
                        Kind::NoSuchAxisValue {
                            axis: key.value.clone(),
                            label: label.value.clone(),
                        },
                        label.span,
                    )
                    .help(format!("its values: {}", labels.join(", "))),
                );
            }
            Some(_) => {}
        }
    }
}
