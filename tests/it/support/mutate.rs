//! Seeded mutation of valid inputs, for the loops that check a reader never panics on
//! what it is given (plans, expositions, journals). Reproducible: the same seed gives the
//! same inputs. `KONGUP_FUZZ_CASES` sets how many inputs each loop tries (10 000 unless
//! told; `scripts/fuzz.sh` runs 1 000 000), `KONGUP_FUZZ_SEED` the seed.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Pieces that mean something to YAML, Prometheus text or JSON, spliced into inputs so
/// mutations reach past the first syntax check.
const TOKENS: &[&str] = &[
    "\n",
    " ",
    "  ",
    "\t",
    ":",
    ": ",
    "- ",
    "#",
    "\"",
    "'",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "!!str ",
    "? ",
    "|",
    ">",
    "---\n",
    "...\n",
    "~",
    "null",
    "true",
    "-1",
    "0",
    "1e309",
    "NaN",
    "+Inf",
    "-Inf",
    "le=\"-5\"",
    "le=\"+Inf\"",
    "=",
    "{le=\"1\"}",
    "# TYPE x histogram\n",
    "# HELP ",
    "\u{0}",
    "\u{feff}",
    "é",
    "\u{10ffff}",
    "\r\n",
    "\"seq\":",
    "\"prev\":",
    "\"event\":",
    "\"step-confirmed\"",
    "\"run-created\"",
    "99999999999999999999",
];

pub struct Mutator {
    rng: fastrand::Rng,
}

impl Mutator {
    pub fn new(seed: u64) -> Mutator {
        Mutator {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// One to eight mutations of `seed`: bytes flipped, inserted, removed; tokens spliced
    /// in; a range copied elsewhere or cut off; lines swapped or repeated.
    pub fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut bytes = seed.to_vec();
        for _ in 0..self.rng.usize(1..=8) {
            let len = bytes.len();
            let at = self.rng.usize(0..=len);
            match self.rng.u8(0..8) {
                0 if len > 0 => {
                    let i = self.rng.usize(0..len);
                    bytes[i] ^= 1 << self.rng.u8(0..8);
                }
                1 => bytes.insert(at, self.rng.u8(..)),
                2 if len > 0 => {
                    let end = (at + self.rng.usize(1..=16)).min(len);
                    bytes.drain(at.min(len)..end);
                }
                3 | 4 => {
                    let token = TOKENS[self.rng.usize(0..TOKENS.len())];
                    bytes.splice(at..at, token.bytes());
                }
                5 if len > 0 => {
                    let from = self.rng.usize(0..len);
                    let end = (from + self.rng.usize(1..=64)).min(len);
                    let chunk = bytes[from..end].to_vec();
                    let to = self.rng.usize(0..=len);
                    bytes.splice(to..to, chunk);
                }
                6 => bytes.truncate(at),
                _ => self.shuffle_lines(&mut bytes),
            }
        }
        bytes
    }

    /// Swaps two lines, or repeats one.
    fn shuffle_lines(&mut self, bytes: &mut Vec<u8>) {
        let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        let n = lines.len();
        let (a, b) = (self.rng.usize(0..n), self.rng.usize(0..n));
        if self.rng.bool() {
            lines.swap(a, b);
        } else {
            let line = lines[a].clone();
            lines.insert(b, line);
        }
        *bytes = lines.join(&b'\n');
    }
}

/// How many inputs a loop tries, and from which seed.
pub fn cases_and_seed() -> (usize, u64) {
    let number = |name: &str, default: u64| {
        std::env::var(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
    };
    (
        number("KONGUP_FUZZ_CASES", 10_000) as usize,
        number("KONGUP_FUZZ_SEED", 0x6b6f_6e67_7570),
    )
}

/// Runs `read` on `cases` mutations of `seeds` and fails, naming where they are saved,
/// if any panicked. Prints what it did (run with `--nocapture` to see it).
pub fn no_panics(what: &str, seeds: &[Vec<u8>], read: impl Fn(&[u8])) {
    assert!(!seeds.is_empty(), "{what}: no seed inputs");
    let (cases, seed) = cases_and_seed();
    let mut mutator = Mutator::new(seed);
    let started = std::time::Instant::now();
    let mut panicked: Vec<Vec<u8>> = Vec::new();
    let mut count = 0usize;
    for case in 0..cases {
        let input = mutator.mutate(&seeds[case % seeds.len()]);
        if catch_unwind(AssertUnwindSafe(|| read(&input))).is_err() {
            count += 1;
            if panicked.len() < 20 {
                panicked.push(input);
            }
        }
    }
    eprintln!(
        "fuzz {what}: {cases} inputs (seed {seed:#x}) in {:.1?}, {count} panicked",
        started.elapsed()
    );
    if count > 0 {
        let dir = std::env::temp_dir().join(format!("kongup-fuzz-{what}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in panicked.iter().enumerate() {
            std::fs::write(dir.join(format!("panic-{i}")), input).unwrap();
        }
        panic!(
            "{what}: {count} of {cases} inputs panicked (seed {seed:#x}); the first are in {}",
            dir.display()
        );
    }
}
