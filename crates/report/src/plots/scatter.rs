//! One numeric parameter against the metric: a scatter of its runs
//! ([`crate::parameters`]), on a log axis when its values span a decade.

use plotters::prelude::*;

use super::{Area, DrawResult, bounds, padded};
use crate::parameters::Parameter;

/// Draws `parameter`'s points, `metric` (its title) on the y axis.
pub fn scatter(root: &Area<'_>, parameter: &Parameter, metric: &str) -> DrawResult {
    let (x0, x1) = bounds(parameter.points.iter().map(|p| p.0));
    let (y0, y1) = bounds(parameter.points.iter().map(|p| p.1));
    let caption = match parameter.rho {
        Some(rho) => format!("{metric} against {} (Spearman ρ {rho:+.2})", parameter.key),
        None => format!("{metric} against {}", parameter.key),
    };
    let dot = |chart_point| Circle::new(chart_point, 5, BLUE.mix(0.8).filled());
    if parameter.log {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x0 / 1.3..x1 * 1.3).log_scale(), padded(y0, y1))?;
        chart
            .configure_mesh()
            .x_desc(format!("{} (log scale)", parameter.key))
            .y_desc(metric)
            .x_label_formatter(&|v| {
                if (1.0..1e5).contains(v) {
                    format!("{v:.0}")
                } else {
                    format!("{v:.0e}")
                }
            })
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()?;
        chart.draw_series(parameter.points.iter().map(|&p| dot(p)))?;
    } else {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(padded(x0, x1), padded(y0, y1))?;
        chart
            .configure_mesh()
            .x_desc(parameter.key.as_str())
            .y_desc(metric)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()?;
        chart.draw_series(parameter.points.iter().map(|&p| dot(p)))?;
    }
    Ok(())
}
