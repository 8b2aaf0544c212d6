//! Identifiers that appear in events: programme names and pseudonyms.
//!
//! Both become NATS subject tokens, so their character sets are kept narrow
//! (no dots, no wildcards, no whitespace).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

const PROGRAM_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,63}$";
const PSEUDONYM_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$";

fn is_program(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_pseudonym(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $check:ident, $pattern:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, String> {
                let s = s.into();
                if $check(&s) {
                    Ok(Self(s))
                } else {
                    Err(format!("{:?} is not a valid {} (must match {})", s, $what, $pattern))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern })
            }
        }
    };
}

checked_name!(
    /// A programme's short name, e.g. `optimist`.
    ProgramName, is_program, PROGRAM_PATTERN, "programme name"
);
checked_name!(
    /// A pseudonym for a participant or staff member, e.g. `P07` or `ac-1`.
    /// Never a real name or national identity number.
    Pseudonym, is_pseudonym, PSEUDONYM_PATTERN, "pseudonym"
);

/// An open code (`referral_source`, `target_groups`, `income_source`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Code(String);

impl Code {
    pub fn new(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(format!("{s:?} is not a valid code (must match ^[a-z0-9_]{{1,64}}$)"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Code {
    fn schema_name() -> Cow<'static, str> {
        "Code".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[a-z0-9_]{1,64}$" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programme_names_follow_the_pattern() {
        assert!(ProgramName::new("sja-meg").is_ok());
        assert!(ProgramName::new("-x").is_err());
        assert!(ProgramName::new("Optimist").is_err());
        assert!(ProgramName::new("a.b").is_err());
        assert!(ProgramName::new("a".repeat(65)).is_err());
    }

    #[test]
    fn pseudonyms_follow_the_pattern() {
        assert!(Pseudonym::new("P07").is_ok());
        assert!(Pseudonym::new("ac_1-x").is_ok());
        assert!(Pseudonym::new("_P").is_err());
        assert!(Pseudonym::new("P 7").is_err());
        assert!(Pseudonym::new("").is_err());
    }
}
