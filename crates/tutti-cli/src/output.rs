//! Printing: aligned tables for people, one JSON document for scripts (`--json`), colour
//! only on a terminal.

use std::io::IsTerminal;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, Color, ContentArrangement, Table};

/// A table with the given header row, styled for the terminal.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.iter().map(Cell::new));
    if !std::io::stdout().is_terminal() {
        table.force_no_tty();
    }
    table
}

/// A cell coloured by a target or run state.
pub(crate) fn state_cell(state: &str) -> Cell {
    let color = match state {
        "succeeded" | "done" => Color::Green,
        "failed" | "timed_out" | "killed" | "interrupted" | "missed" | "expired" => Color::Red,
        "running" | "delivered" => Color::Cyan,
        "skipped" => Color::Yellow,
        _ => Color::Reset,
    };
    Cell::new(state).fg(color)
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn print_json<T: serde::Serialize + ?Sized>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("tutti: cannot print the answer as JSON: {err}"),
    }
}

/// A value that may be absent, as table text: empty when absent.
pub(crate) fn or_empty<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// A JSON field as text, empty when absent.
pub(crate) fn text(value: &serde_json::Value, field: &str) -> String {
    match value.get(field) {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `rows A–B of TOTAL <what>`, and the `--offset` that shows the next page if there is one.
pub(crate) fn print_page_footer<T>(page: &tutti_api::Paged<T>, offset: u64, what: &str) {
    let n_items = page.items.len() as u64;
    let total = page.total;
    if n_items == 0 {
        println!("no {what} (of {total})");
        return;
    }
    let last = offset + n_items;
    print!("{}–{last} of {total} {what}", offset + 1);
    if last < total {
        print!("; next page: --offset {last}");
    }
    println!();
}
