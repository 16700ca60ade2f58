//! Legends drawn in a strip below the chart, so that no legend covers
//! data: entries → their strip's height (for a figure's size) and pixels.

use plotters::prelude::*;

use super::{Area, DrawResult};

/// How an entry's series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// A line of this width.
    Line(u32),
    /// A dashed line.
    Dashed,
    /// A dotted line.
    Dotted,
    /// A filled box (histogram bars).
    Bar,
}

/// One labelled series.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What it is.
    pub label: String,
    /// Its colour.
    pub color: RGBAColor,
    /// How it is drawn.
    pub mark: Mark,
}

impl Entry {
    /// An entry.
    pub fn new(label: impl Into<String>, color: RGBAColor, mark: Mark) -> Entry {
        Entry {
            label: label.into(),
            color,
            mark,
        }
    }
}

/// Height of one row of entries.
const ROW: u32 = 20;
/// Left edge of the marks: under the chart's y labels.
const LEFT: i32 = 60;
/// Width of a mark and the gap before its label.
const MARK: i32 = 28;
/// Approximate width of a character of the 13 px label font.
const CHAR: u32 = 7;

/// Columns the entries are laid out in for a figure `width` pixels wide:
/// two when every label fits half the width.
fn columns(entries: &[Entry], width: u32) -> u32 {
    let widest = entries
        .iter()
        .map(|e| e.label.chars().count() as u32)
        .max()
        .unwrap_or(0);
    if entries.len() > 1 && widest * CHAR + (LEFT + MARK) as u32 + 20 <= width / 2 {
        2
    } else {
        1
    }
}

/// The strip's height for `entries` in a figure `width` pixels wide (0
/// without entries).
pub fn height(entries: &[Entry], width: u32) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    let rows = (entries.len() as u32).div_ceil(columns(entries, width));
    rows * ROW + 12
}

/// Splits `root` into the chart above and the legend's strip below.
pub fn split<'a>(root: &Area<'a>, entries: &[Entry]) -> (Area<'a>, Area<'a>) {
    let (width, total) = root.dim_in_pixel();
    let strip = height(entries, width).min(total);
    root.split_vertically(total - strip)
}

/// Draws `entries` into the strip.
pub fn draw(strip: &Area<'_>, entries: &[Entry]) -> DrawResult {
    let (width, _) = strip.dim_in_pixel();
    let columns = columns(entries, width);
    let rows = (entries.len() as u32).div_ceil(columns.max(1));
    let column_width = (width as i32 - LEFT) / columns as i32;
    for (i, entry) in entries.iter().enumerate() {
        let (column, row) = (i as u32 / rows.max(1), i as u32 % rows.max(1));
        let x = LEFT + column as i32 * column_width;
        let y = 6 + (row * ROW + ROW / 2) as i32;
        let color = entry.color;
        match entry.mark {
            Mark::Line(width) => {
                strip.draw(&PathElement::new(
                    vec![(x, y), (x + MARK - 6, y)],
                    color.stroke_width(width),
                ))?;
            }
            Mark::Dashed => {
                for start in [x, x + 9, x + 18] {
                    strip.draw(&PathElement::new(
                        vec![(start, y), (start + 5, y)],
                        color.stroke_width(2),
                    ))?;
                }
            }
            Mark::Dotted => {
                for dot in [x, x + 6, x + 12, x + 18] {
                    strip.draw(&Circle::new((dot + 1, y), 1, color.filled()))?;
                }
            }
            Mark::Bar => {
                strip.draw(&Rectangle::new([(x, y - 6), (x + MARK - 10, y + 6)], color.filled()))?;
            }
        }
        strip.draw(&Text::new(entry.label.clone(), (x + MARK, y - 7), ("sans-serif", 13)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(labels: &[&str]) -> Vec<Entry> {
        labels
            .iter()
            .map(|l| Entry::new(*l, BLACK.to_rgba(), Mark::Line(2)))
            .collect()
    }

    #[test]
    fn short_labels_share_rows_and_long_ones_get_a_row_each() {
        assert_eq!(height(&[], 900), 0);
        assert_eq!(
            height(&entries(&["true", "greedy", "teacher-forced"]), 900),
            2 * ROW + 12
        );
        let long = "encoder=midi-translation model.architecture=vanilla schedule=noam";
        assert_eq!(height(&entries(&[long, long, long]), 900), 3 * ROW + 12);
    }
}
