//! A line diff for `tutti apply`: what changed between a job's previous manifest and the one
//! just applied, as `-`/`+` lines with a little context, from `similar`'s Myers diff (given
//! at most a second, so a huge manifest cannot stall the CLI).

use std::time::Duration;

use similar::{ChangeTag, TextDiff};

/// `-`/`+` lines for what changed from `old` to `new`, with `context` unchanged lines
/// around each change and `…` between separate hunks.
pub(crate) fn line_diff(old: &str, new: &str, context: usize) -> Vec<String> {
    let diff = TextDiff::configure()
        .timeout(Duration::from_secs(1))
        .diff_lines(old, new);
    let mut lines = Vec::new();
    for (index, group) in diff.grouped_ops(context).iter().enumerate() {
        if index > 0 {
            lines.push("…".to_string());
        }
        for change in group.iter().flat_map(|op| diff.iter_changes(op)) {
            let sign = match change.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            };
            let line = change.value().trim_end_matches(['\n', '\r']);
            lines.push(format!("{sign}{line}"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_with_context() {
        let old = "kind: Job\nname: a\nscript: echo 1\ntimeout_secs: 5\n";
        let new = "kind: Job\nname: a\nscript: echo 2\ntimeout_secs: 5\n";
        assert_eq!(
            line_diff(old, new, 0),
            ["-script: echo 1", "+script: echo 2"]
        );
        assert_eq!(
            line_diff(old, new, 1),
            [
                " name: a",
                "-script: echo 1",
                "+script: echo 2",
                " timeout_secs: 5"
            ]
        );
        assert!(line_diff(old, old, 3).is_empty());
        // Two changes far apart are two hunks.
        let old = "a\nb\nc\nd\ne\nf\n";
        let new = "A\nb\nc\nd\ne\nF\n";
        assert_eq!(line_diff(old, new, 0), ["-a", "+A", "…", "-f", "+F"]);
    }
}
