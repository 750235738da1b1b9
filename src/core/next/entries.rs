//! The `wva-next` state's entries (models by `namespace/modelID`, variants by `namespace/name`),
//! and how a cycle finds them. Entries stay in the order a cycle wrote them, which is the order
//! the next cycle reads them in: a [`Lookup`] finds each one where its cursor stands, comparing
//! one key, and hashes only when the set changed (a variant added or removed, a state read from a
//! file). Serialized as a JSON object sorted by key, so dumps do not depend on that order. No
//! policy here, and nothing about what an entry holds.

use std::collections::BTreeMap;
use std::ops::Index;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::hash::FastMap;
use crate::core::report::Text;

/// Keyed entries, unique by key, in the order they were written.
#[derive(Clone, Debug)]
pub struct Entries<V>(Vec<(Text, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> Entries<V> {
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// In the order written (not sorted).
    pub fn iter(&self) -> impl Iterator<Item = (&Text, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// By key, in a linear scan: for tests and tools (a cycle uses a [`Lookup`]).
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    /// Entries with unique keys (the caller's promise: a cycle writes each key once).
    pub(super) fn from_unique(entries: Vec<(Text, V)>) -> Self {
        Self(entries)
    }

    fn sorted(&self) -> Vec<&(Text, V)> {
        let mut sorted: Vec<_> = self.0.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sorted
    }
}

impl<V> Index<&str> for Entries<V> {
    type Output = V;

    fn index(&self, key: &str) -> &V {
        self.get(key)
            .unwrap_or_else(|| panic!("no state entry {key:?}"))
    }
}

/// The same keys with equal values, in any order.
impl<V: PartialEq> PartialEq for Entries<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.sorted() == other.sorted()
    }
}

impl<V: Serialize> Serialize for Entries<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.sorted().into_iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    /// As a map: a key given twice keeps its last value, as a `BTreeMap` does.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<Text, V>::deserialize(deserializer)?;
        Ok(Self(map.into_iter().collect()))
    }
}

/// Finds a cycle's entries in a previous state, in the order the cycle asks for them.
pub(super) struct Lookup<'a, V> {
    entries: &'a [(Text, V)],
    /// Where the next entry asked for is expected: after the last one found.
    cursor: usize,
    /// By the key's two parts, built at the first entry not at the cursor.
    index: Option<FastMap<(&'a str, &'a str), usize>>,
}

impl<'a, V> Lookup<'a, V> {
    pub(super) fn new(entries: &'a Entries<V>) -> Self {
        Self {
            entries: &entries.0,
            cursor: 0,
            index: None,
        }
    }

    /// The entry keyed `namespace/rest`, with its key (the next state shares it).
    pub(super) fn find(&mut self, namespace: &str, rest: &str) -> Option<&'a (Text, V)> {
        if let Some(entry) = self.entries.get(self.cursor)
            && is_key(&entry.0, namespace, rest)
        {
            self.cursor += 1;
            return Some(entry);
        }
        let entries = self.entries;
        let index = self.index.get_or_insert_with(|| {
            // `namespace/rest`: a namespace has no `/` (a model ID may).
            entries
                .iter()
                .enumerate()
                .map(|(i, (key, _))| (key.split_once('/').unwrap_or(("", key)), i))
                .collect()
        });
        let i = *index.get(&(namespace, rest))?;
        self.cursor = i + 1;
        Some(&entries[i])
    }
}

/// Whether `key` is `namespace/rest`, split at its first `/` as the index splits it.
fn is_key(key: &str, namespace: &str, rest: &str) -> bool {
    key.len() == namespace.len() + 1 + rest.len()
        && !namespace.as_bytes().contains(&b'/')
        && key.as_bytes()[namespace.len()] == b'/'
        && key.starts_with(namespace)
        && key.ends_with(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(keys: &[&str]) -> Entries<usize> {
        Entries::from_unique(
            keys.iter()
                .enumerate()
                .map(|(i, k)| (Text::from(*k), i))
                .collect(),
        )
    }

    #[test]
    fn found_in_order_and_out_of_order_alike() {
        let e = entries(&["a/x", "a/y", "b/org/m", "b/z"]);
        let mut lookup = Lookup::new(&e);
        let mut found = |ns, rest| lookup.find(ns, rest).map(|(k, v)| (k.to_string(), *v));
        // In the written order: each at the cursor.
        assert_eq!(found("a", "x"), Some(("a/x".into(), 0)));
        assert_eq!(found("a", "y"), Some(("a/y".into(), 1)));
        // A key not there, one skipped, one asked for again: by hash, the cursor follows.
        assert_eq!(found("a", "new"), None);
        assert_eq!(found("b", "z"), Some(("b/z".into(), 3)));
        assert_eq!(found("b", "org/m"), Some(("b/org/m".into(), 2)));
        assert_eq!(found("b", "z"), Some(("b/z".into(), 3)));
        // A namespace/rest split that is not the key's, at the cursor and by hash.
        assert_eq!(found("a", "y"), Some(("a/y".into(), 1)));
        assert_eq!(found("b/org", "m"), None);
        assert_eq!(found("", "a/x"), None);
    }

    #[test]
    fn written_in_any_order_they_serialize_and_compare_sorted() {
        let a = entries(&["b/z", "a/x"]);
        let b = Entries::from_unique(vec![(Text::from("a/x"), 1), (Text::from("b/z"), 0)]);
        assert_eq!(a, b);
        assert_ne!(a, entries(&["a/x", "b/z"]));
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"a/x":1,"b/z":0}"#);
        let back: Entries<usize> = serde_json::from_str(r#"{"b/z":0,"a/x":1}"#).unwrap();
        assert_eq!(back, a);
        assert_eq!(back["b/z"], 0);
        assert_eq!(back.get("c/q"), None);
    }
}
