//! Deterministic byte-level mutations of fuzz seeds, for the fuzz smoke of
//! the test command: what libFuzzer's mutators do (bit flips, interesting
//! bytes, insertions, deletions, truncations, repeated chunks), the same on
//! every run, without the fuzzer's nightly build.

/// Bytes the parsers care about: JSON and HTTP punctuation, separators,
/// percent signs, digits, MQTT's common lengths, the first byte of a
/// multi-byte UTF-8 character, an invalid UTF-8 byte.
const INTERESTING: &[u8] = b"{}[]\":,\\\0/?&=%+ \r\n0123456789-.*$#\x7f\x80\xc3\xff";

/// The fuzz seeds in `dir`, as `(file name, bytes)`, sorted by name; at least
/// three, or the test is pointless.
///
/// # Panics
///
/// If the directory or a seed cannot be read, or it holds fewer than three.
pub fn read_seeds(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a readable directory").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, std::fs::read(&path).expect("a readable seed"))
        })
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 3,
        "only {} seeds in {}",
        seeds.len(),
        dir.display()
    );
    seeds
}

/// Mutates seeds deterministically (xorshift64* from a fixed state).
///
/// ```
/// let mut mutator = iotcore_test_support::Mutator::new();
/// let seed = br#"{"state":{"reported":{"on":true}}}"#;
/// let mutant = mutator.mutate(seed);
/// assert_eq!(mutant, iotcore_test_support::Mutator::new().mutate(seed));
/// ```
#[derive(Debug, Clone)]
pub struct Mutator(u64);

impl Default for Mutator {
    fn default() -> Self {
        Mutator::new()
    }
}

impl Mutator {
    /// A mutator that starts from the same state on every run.
    pub fn new() -> Self {
        Mutator(0x9e37_79b9_7f4a_7c15)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn interesting(&mut self) -> u8 {
        INTERESTING[self.below(INTERESTING.len())]
    }

    /// `seed` with one to four edits.
    pub fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(data.len() + 1);
            match self.below(6) {
                0 if at < data.len() => data[at] ^= 1 << self.below(8),
                1 if at < data.len() => data[at] = self.interesting(),
                2 => {
                    let byte = self.interesting();
                    data.insert(at, byte);
                }
                3 if at < data.len() => {
                    let end = (at + 1 + self.below(16)).min(data.len());
                    data.drain(at..end);
                }
                4 => data.truncate(at),
                _ => {
                    // Repeats a chunk: deeper nesting, longer lists.
                    let start = self.below(data.len());
                    let end = (start + 1 + self.below(32)).min(data.len());
                    let chunk = data.get(start..end).unwrap_or_default().to_vec();
                    data.splice(at..at, chunk);
                }
            }
        }
        data
    }
}
