//! Kong versions: three parts for open source (`3.9.1`), four for Enterprise (`3.4.3.12`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A Kong version. Compares on (major, minor, patch, build) with a missing build as 0,
/// but remembers how many parts it was written with so it prints back the same way.
#[derive(Debug, Clone, Copy)]
pub struct KongVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    pub build: Option<u32>,
}

impl KongVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KongVersion {
            major,
            minor,
            patch,
            build: None,
        }
    }

    pub const fn enterprise(major: u32, minor: u32, patch: u32, build: u32) -> Self {
        KongVersion {
            major,
            minor,
            patch,
            build: Some(build),
        }
    }

    fn key(&self) -> (u32, u32, u32, u32) {
        (self.major, self.minor, self.patch, self.build.unwrap_or(0))
    }

    /// The `major.minor` line this version belongs to.
    pub fn minor_line(&self) -> (u32, u32) {
        (self.major, self.minor)
    }

    pub fn is_enterprise_form(&self) -> bool {
        self.build.is_some()
    }
}

impl PartialEq for KongVersion {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for KongVersion {}

impl std::hash::Hash for KongVersion {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl PartialOrd for KongVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KongVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Display for KongVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(build) = self.build {
            write!(f, ".{build}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{input}' is not a Kong version: {reason} (write MAJOR.MINOR.PATCH, or MAJOR.MINOR.PATCH.BUILD for Enterprise, e.g. 3.4.3.12)"
)]
pub struct VersionError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for KongVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| VersionError {
            input: s.to_string(),
            reason,
        };
        let parts: Vec<&str> = s.trim().split('.').collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(fail("it needs three or four numeric parts"));
        }
        let mut numbers = [0u32; 4];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail("every part must be a number"));
            }
            *slot = part.parse().map_err(|_| fail("a part is too large"))?;
        }
        Ok(KongVersion {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            build: (parts.len() == 4).then_some(numbers[3]),
        })
    }
}

impl serde::Serialize for KongVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_and_four_parts() {
        let oss: KongVersion = "3.9.1".parse().unwrap();
        assert_eq!(
            (oss.major, oss.minor, oss.patch, oss.build),
            (3, 9, 1, None)
        );
        let ee: KongVersion = "3.4.3.12".parse().unwrap();
        assert_eq!(ee.build, Some(12));
        assert_eq!(ee.to_string(), "3.4.3.12");
        assert_eq!(oss.to_string(), "3.9.1");
    }

    #[test]
    fn missing_build_compares_as_zero() {
        let a: KongVersion = "3.4.0".parse().unwrap();
        let b: KongVersion = "3.4.0.0".parse().unwrap();
        assert_eq!(a, b);
        assert!("3.4.0.1".parse::<KongVersion>().unwrap() > a);
        assert!("3.10.0".parse::<KongVersion>().unwrap() > "3.9.9".parse().unwrap());
    }

    #[test]
    fn rejects_malformed_versions() {
        for bad in ["3.4", "3.4.x", "v3.4.0", "3.4.0.1.2", "", "3..1"] {
            assert!(bad.parse::<KongVersion>().is_err(), "{bad} parsed");
        }
    }
}
