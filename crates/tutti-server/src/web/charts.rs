//! Charts drawn on the server as SVG: no script, no library, readable without colour
//! (every bar carries its label and number as text, and the chart a `<title>`).

use maud::{Markup, html};

use super::layout::{segments, thousands};

/// Horizontal bars for `(label, value)` rows, longest first as given.
pub(crate) fn bars(title: &str, rows: &[(String, u64)]) -> Markup {
    const ROW: u32 = 26;
    const LABEL_WIDTH: f64 = 130.0;
    const BAR_WIDTH: f64 = 230.0;
    let max = rows
        .iter()
        .map(|(_, value)| *value)
        .max()
        .unwrap_or(0)
        .max(1);
    let height = ROW * rows.len().max(1) as u32;
    html! {
        svg.chart viewBox=(format!("0 0 440 {height}")) role="img" aria-label=(title) width="100%" {
            title { (title) }
            @if rows.is_empty() {
                text.axis x="0" y="16" { "No data yet" }
            }
            @for (index, (label, value)) in rows.iter().enumerate() {
                @let y = index as u32 * ROW;
                @let width = (BAR_WIDTH * *value as f64 / max as f64).max(2.0);
                @let shown = if label.is_empty() { "unknown" } else { label.as_str() };
                text x="0" y=(y + 17) { (truncate(shown, 18)) }
                rect.track x=(LABEL_WIDTH) y=(y + 5) width=(BAR_WIDTH) height="16" rx="3" {}
                rect.bar x=(LABEL_WIDTH) y=(y + 5) width=(format!("{width:.1}")) height="16" rx="3" {}
                text.axis x=(LABEL_WIDTH + BAR_WIDTH + 8.0) y=(y + 17) { (thousands(*value)) }
            }
        }
    }
}

/// A stacked liveness bar: online, offline, never seen.
pub(crate) fn liveness(online: u64, offline: u64, never_seen: u64) -> Markup {
    let total = online + offline + never_seen;
    let parts = [
        ("seg-ok", online),
        ("seg-bad", offline),
        ("seg-empty", never_seen),
    ];
    let label = format!("{online} online, {offline} offline, {never_seen} never seen");
    html! {
        svg.outcome.wide viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label=(label) {
            title { (label) }
            rect.seg-empty x="0" y="0" width="100" height="10" {}
            @for (class, x, width) in segments(&parts, total) {
                rect class=(class) x=(format!("{x:.2}")) y="0" width=(format!("{width:.2}")) height="10" {}
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_label_every_row_and_escape_labels() {
        let svg = bars(
            "OS",
            &[
                ("linux".into(), 9000),
                ("<b>bsd</b>".into(), 10),
                (String::new(), 1),
            ],
        )
        .into_string();
        assert!(svg.contains("9,000"), "{svg}");
        assert!(svg.contains("&lt;b&gt;bsd&lt;/b&gt;"), "{svg}");
        assert!(svg.contains("unknown"), "{svg}");
        assert!(bars("OS", &[]).into_string().contains("No data yet"));
    }
}
