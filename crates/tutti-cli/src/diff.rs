//! A small line diff for `tutti apply`: what changed between a job's previous manifest and
//! the one just applied. Manifests are short, so a plain longest-common-subsequence table
//! is fine; bigger inputs are not diffed at all rather than made slow.

/// Inputs with more lines than this (either side) get no diff.
const MAX_LINES: usize = 2_000;

/// `-`/`+` lines for what changed from `old` to `new`, with `context` unchanged lines
/// around each change; `None` when the inputs are too large to diff.
pub(crate) fn line_diff(old: &str, new: &str, context: usize) -> Option<Vec<String>> {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    if old.len() > MAX_LINES || new.len() > MAX_LINES {
        return None;
    }
    let ops = edit_script(&old, &new);
    Some(with_context(&ops, context))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

fn edit_script<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Op<'a>> {
    // lcs[i][j] = length of the longest common subsequence of old[i..] and new[j..].
    let mut lcs = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            ops.push(Op::Same(old[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < old.len() && (j == new.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals before additions, as `diff -u` shows them.
            ops.push(Op::Removed(old[i]));
            i += 1;
        } else {
            ops.push(Op::Added(new[j]));
            j += 1;
        }
    }
    ops
}

fn with_context(ops: &[Op<'_>], context: usize) -> Vec<String> {
    let near_change = |index: usize| {
        let from = index.saturating_sub(context);
        let to = (index + context + 1).min(ops.len());
        ops[from..to].iter().any(|op| !matches!(op, Op::Same(_)))
    };
    let mut lines = Vec::new();
    let mut skipped = false;
    for (index, op) in ops.iter().enumerate() {
        match op {
            Op::Removed(line) => lines.push(format!("-{line}")),
            Op::Added(line) => lines.push(format!("+{line}")),
            Op::Same(line) if near_change(index) => {
                if skipped && !lines.is_empty() {
                    lines.push("…".to_string());
                }
                skipped = false;
                lines.push(format!(" {line}"));
            }
            Op::Same(_) => skipped = true,
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
            line_diff(old, new, 0).unwrap(),
            ["-script: echo 1", "+script: echo 2"]
        );
        assert_eq!(
            line_diff(old, new, 1).unwrap(),
            [
                " name: a",
                "-script: echo 1",
                "+script: echo 2",
                " timeout_secs: 5"
            ]
        );
        assert!(line_diff(old, old, 3).unwrap().is_empty());
    }
}
