//! Durations as operators type them on the command line (`30`, `30s`, `5m`, `2h`, `7d`),
//! shared by `run --timeout`, `enroll-token create --expires` and `freeze on --for`.

use crate::client::CliError;

/// `30`, `30s`, `5m`, `2h`, `7d` → seconds (at least 1); `flag` names the option in errors.
pub(crate) fn parse_secs(flag: &str, text: &str) -> Result<u64, CliError> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number
        .parse()
        .map_err(|_| CliError::Usage(format!("{flag} {text:?}: expected e.g. 30s, 5m or 1h")))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(CliError::Usage(format!(
                "{flag} {text:?}: the unit must be s, m, h or d"
            )));
        }
    };
    Ok(value.saturating_mul(factor).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_mistakes() {
        assert_eq!(parse_secs("--timeout", "30").unwrap(), 30);
        assert_eq!(parse_secs("--timeout", "5m").unwrap(), 300);
        assert_eq!(parse_secs("--timeout", "2h").unwrap(), 7200);
        assert_eq!(parse_secs("--expires", "7d").unwrap(), 604_800);
        let err = parse_secs("--expires", "soon").unwrap_err().to_string();
        assert!(err.contains("--expires"), "{err}");
        assert!(parse_secs("--timeout", "5w").is_err());
    }
}
