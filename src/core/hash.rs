//! A fast, unkeyed hasher for the maps a cycle builds and drops (models by name; for `wva-next`
//! also the previous state by key when out of order, alike notes): the standard library's
//! SipHash is a tenth of a `wva-next` cycle at
//! 10,000 variants (docs/performance.md#wva-next). Hashing only: nothing here is stored, so the
//! values may change between builds (unlike [`super::next::pod_id`], which the state keeps).
//!
//! Unkeyed means colliding keys can be crafted; the keys are object names an attacker needs RBAC
//! on VariantAutoscalings to choose, and a collision costs time, never a wrong decision.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A map with [`Fx`] hashing.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;
/// A set with [`Fx`] hashing.
pub type FastSet<T> = HashSet<T, BuildHasherDefault<Fx>>;

/// The Firefox/rustc multiply-rotate hash, eight bytes at a time.
#[derive(Clone, Copy, Default)]
pub struct Fx(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
        // The length tells a zero-padded tail from real zero bytes ("a" from "a\0").
        self.add(bytes.len() as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        // A multiply mixes the high bits best and the low ones least; the table picks its
        // bucket from the low bits: fold the high half into them.
        self.0 ^ (self.0 >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash(s: &str) -> u64 {
        BuildHasherDefault::<Fx>::default().hash_one(s)
    }

    #[test]
    fn names_that_differ_in_one_byte_hash_apart_and_a_map_finds_every_key() {
        let names: Vec<String> = (0..10_000)
            .map(|i| format!("ns-{:03}/variant-{i:05}", i % 200))
            .collect();
        let hashes: FastSet<u64> = names.iter().map(|n| hash(n)).collect();
        assert_eq!(
            hashes.len(),
            names.len(),
            "no collision among 10,000 fleet-like names"
        );
        // Lengths that are and are not multiples of eight, and a trailing zero byte.
        assert_ne!(hash("abcdefgh"), hash("abcdefgh\0"));
        assert_ne!(hash("a"), hash("a\0"));
        assert_ne!(hash(""), hash("\0"));
        let map: FastMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        assert!(names.iter().enumerate().all(|(i, n)| map[n.as_str()] == i));
    }
}
