//! `Selection`: which keys of a bucket a watch, scan or replica covers.
//!
//! A selection is the whole bucket or a list of key prefixes. Prefixes are plain string
//! prefixes ("agents.web" covers "agents.web-1.os" too). NATS filters only match whole
//! tokens, so each prefix becomes the filter of its complete tokens (`$KV.b.agents.>`) and the
//! partial last token is checked here; filters that another filter covers are dropped, because
//! the broker rejects overlapping filters on one consumer. An empty prefix list selects
//! nothing, never the whole bucket.
//!
//! A selection may also name exact keys ([`Selection::KeysAndPrefixes`]): each becomes the
//! exact filter `$KV.b.<key>`, so an agent following only `agent.<its-id>` is sent only that
//! key, not every agent's (a prefix `agent.web-01` would widen to the token filter `agent.>`).

use crate::error::KvError;

/// Which keys of a bucket to cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every key.
    WholeBucket,
    /// Every key starting with one of these prefixes; an empty list selects nothing.
    Prefixes(Vec<String>),
    /// These exact keys, plus every key starting with one of the prefixes.
    KeysAndPrefixes {
        /// Exact keys.
        keys: Vec<String>,
        /// Key prefixes.
        prefixes: Vec<String>,
    },
}

impl Selection {
    /// A selection of the given prefixes, validated.
    pub fn prefixes<I, S>(prefixes: I) -> Result<Selection, KvError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let prefixes: Vec<String> = prefixes.into_iter().map(Into::into).collect();
        for prefix in &prefixes {
            validate_prefix(prefix)?;
        }
        Ok(Selection::Prefixes(prefixes))
    }

    /// A selection of exact keys plus prefixes, validated.
    pub fn keys_and_prefixes<K, P, S, T>(keys: K, prefixes: P) -> Result<Selection, KvError>
    where
        K: IntoIterator<Item = S>,
        P: IntoIterator<Item = T>,
        S: Into<String>,
        T: Into<String>,
    {
        let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        for key in &keys {
            validate_key(key)?;
        }
        let prefixes: Vec<String> = prefixes.into_iter().map(Into::into).collect();
        for prefix in &prefixes {
            validate_prefix(prefix)?;
        }
        Ok(Selection::KeysAndPrefixes { keys, prefixes })
    }

    /// Whether `key` is covered.
    pub fn matches(&self, key: &str) -> bool {
        match self {
            Selection::WholeBucket => true,
            Selection::Prefixes(prefixes) => prefixes
                .iter()
                .any(|prefix| key.starts_with(prefix.as_str())),
            Selection::KeysAndPrefixes { keys, prefixes } => {
                keys.iter().any(|exact| exact == key)
                    || prefixes
                        .iter()
                        .any(|prefix| key.starts_with(prefix.as_str()))
            }
        }
    }

    /// Whether the selection covers no key at all.
    pub fn is_empty(&self) -> bool {
        match self {
            Selection::WholeBucket => false,
            Selection::Prefixes(prefixes) => prefixes.is_empty(),
            Selection::KeysAndPrefixes { keys, prefixes } => keys.is_empty() && prefixes.is_empty(),
        }
    }

    /// A canonical text naming the selection, stored beside a replica's cursor so that a
    /// changed selection is noticed at the next start.
    pub fn fingerprint(&self) -> String {
        match self {
            Selection::WholeBucket => "*".to_string(),
            Selection::Prefixes(prefixes) => {
                let mut sorted = prefixes.clone();
                sorted.sort();
                sorted.dedup();
                format!("prefixes:{}", sorted.join("\n"))
            }
            Selection::KeysAndPrefixes { keys, prefixes } => {
                let mut keys = keys.clone();
                keys.sort();
                keys.dedup();
                let mut prefixes = prefixes.clone();
                prefixes.sort();
                prefixes.dedup();
                format!("keys:{}|prefixes:{}", keys.join("\n"), prefixes.join("\n"))
            }
        }
    }

    /// The consumer filter subjects for this selection in a bucket whose subjects start with
    /// `subject_prefix` (e.g. `$KV.config.`), without overlaps.
    pub(crate) fn filter_subjects(&self, subject_prefix: &str) -> Result<Vec<String>, KvError> {
        let (keys, prefixes) = match self {
            Selection::WholeBucket => return Ok(vec![format!("{subject_prefix}>")]),
            Selection::Prefixes(prefixes) => (&[][..], prefixes),
            Selection::KeysAndPrefixes { keys, prefixes } => (&keys[..], prefixes),
        };
        let mut token_prefixes = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            validate_prefix(prefix)?;
            token_prefixes.push(complete_tokens(prefix));
        }
        let token_prefixes = without_covered(token_prefixes);
        let mut filters: Vec<String> = token_prefixes
            .iter()
            .map(|tokens| format!("{subject_prefix}{tokens}>"))
            .collect();
        // An exact key inside a token filter already sent is dropped: the broker rejects
        // overlapping filters on one consumer.
        let mut exact: Vec<&String> = keys
            .iter()
            .filter(|key| {
                !token_prefixes
                    .iter()
                    .any(|tokens| key.starts_with(tokens.as_str()))
            })
            .collect();
        exact.sort();
        exact.dedup();
        for key in exact {
            validate_key(key)?;
            filters.push(format!("{subject_prefix}{key}"));
        }
        Ok(filters)
    }
}

/// Checks a key the way the broker will (valid characters, no empty token).
pub fn validate_key(key: &str) -> Result<(), KvError> {
    let valid = !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key.bytes().all(is_key_byte);
    if valid {
        Ok(())
    } else {
        Err(KvError::InvalidKey(key.to_string()))
    }
}

/// Checks a prefix: key characters only and no empty token before the last one.
/// The empty prefix is valid and covers the whole bucket.
pub fn validate_prefix(prefix: &str) -> Result<(), KvError> {
    let valid =
        !prefix.starts_with('.') && !prefix.contains("..") && prefix.bytes().all(is_key_byte);
    if valid {
        Ok(())
    } else {
        Err(KvError::InvalidKey(prefix.to_string()))
    }
}

fn is_key_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'/' | b'_' | b'=' | b'.')
}

/// The prefix cut after its last dot: "agents.web" gives "agents.", "agents." stays.
fn complete_tokens(prefix: &str) -> String {
    match prefix.rfind('.') {
        Some(dot) => prefix[..=dot].to_string(),
        None => String::new(),
    }
}

/// Drops duplicates and every token prefix that a shorter one already covers.
fn without_covered(mut token_prefixes: Vec<String>) -> Vec<String> {
    token_prefixes.sort();
    token_prefixes.dedup();
    let mut kept: Vec<String> = Vec::with_capacity(token_prefixes.len());
    for candidate in token_prefixes {
        // Sorted order puts a covering prefix directly before what it covers.
        let covered = kept
            .last()
            .is_some_and(|previous| candidate.starts_with(previous.as_str()));
        if !covered {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keys_become_exact_filters_unless_a_prefix_covers_them() {
        let selection =
            Selection::keys_and_prefixes(["global", "agent.web-01", "group.a"], ["group."])
                .unwrap();
        let filters = selection.filter_subjects("$KV.b.").unwrap();
        assert_eq!(
            filters,
            ["$KV.b.group.>", "$KV.b.agent.web-01", "$KV.b.global"]
        );
        assert!(selection.matches("agent.web-01") && selection.matches("group.x"));
        assert!(!selection.matches("agent.web-01x") && !selection.matches("agent.db"));
        assert!(Selection::keys_and_prefixes(["bad..key"], Vec::<String>::new()).is_err());
    }

    fn filters(prefixes: &[&str]) -> Vec<String> {
        Selection::prefixes(prefixes.iter().copied())
            .and_then(|s| s.filter_subjects("$KV.b."))
            .unwrap()
    }

    #[test]
    fn partial_tokens_widen_to_the_complete_tokens() {
        assert_eq!(filters(&["agents.web"]), ["$KV.b.agents.>"]);
        assert_eq!(filters(&["agents.web."]), ["$KV.b.agents.web.>"]);
        assert_eq!(filters(&["ag"]), ["$KV.b.>"]);
    }

    #[test]
    fn covered_and_duplicate_filters_are_dropped() {
        assert_eq!(filters(&["a.b.", "a.", "a.b.c", "a."]), ["$KV.b.a.>"]);
        assert_eq!(
            filters(&["group.x.", "agent.y."]),
            ["$KV.b.agent.y.>", "$KV.b.group.x.>"]
        );
    }

    #[test]
    fn empty_list_selects_nothing() {
        let selection = Selection::prefixes(Vec::<String>::new()).unwrap();
        assert!(selection.is_empty());
        assert!(!selection.matches("anything"));
        assert!(filters(&[]).is_empty());
    }

    #[test]
    fn wildcards_and_empty_tokens_are_rejected() {
        for bad in ["a.*", "a.>", "a..b", ".a", "a b"] {
            assert!(Selection::prefixes([bad]).is_err(), "{bad}");
        }
        for bad in ["", "a.", ".a", "a..b", "a.*"] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn string_prefix_semantics() {
        let selection = Selection::prefixes(["agents.web"]).unwrap();
        assert!(selection.matches("agents.web-1.os"));
        assert!(!selection.matches("agents.db.os"));
    }
}
