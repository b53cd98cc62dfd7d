//! The names of the selection strategies, as written in the configuration (`balance = "…"`).
//!
//! Owns parsing and printing those names only; never holds state and never picks.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// How the balancer chooses a backend for each new connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Smooth weighted round robin (`round_robin`, the default): with equal weights a strict
    /// rotation; with weights spread evenly (3:1 gives a a b a, never a burst).
    #[default]
    RoundRobin,
    /// The backend with the fewest active connections relative to its weight
    /// (`least_connections`); ties rotate.
    LeastConnections,
    /// Two distinct backends drawn at random by weight, the less loaded one wins
    /// (`power_of_two`).
    PowerOfTwo,
    /// Maglev consistent hashing of the client IP (`source_hash`): a client keeps its backend.
    SourceHash,
}

impl Strategy {
    /// Every strategy, in documentation order.
    pub const ALL: [Strategy; 4] = [
        Strategy::RoundRobin,
        Strategy::LeastConnections,
        Strategy::PowerOfTwo,
        Strategy::SourceHash,
    ];

    /// The configuration name, e.g. `"least_connections"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::LeastConnections => "least_connections",
            Strategy::PowerOfTwo => "power_of_two",
            Strategy::SourceHash => "source_hash",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `balance` value that names no strategy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown balance strategy {0:?}: expected round_robin, least_connections, power_of_two or \
     source_hash"
)]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == s)
            .ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_and_from_str() {
        for strategy in Strategy::ALL {
            assert_eq!(strategy.to_string().parse::<Strategy>(), Ok(strategy));
        }
        assert_eq!(Strategy::default(), Strategy::RoundRobin);
    }

    #[test]
    fn serde_uses_the_config_names() {
        #[derive(Deserialize)]
        struct File {
            balance: Strategy,
        }
        for strategy in Strategy::ALL {
            let text = format!("balance = \"{strategy}\"");
            let file: File = toml::from_str(&text).unwrap();
            assert_eq!(file.balance, strategy);
        }
        assert!(toml::from_str::<File>("balance = \"random\"").is_err());
    }

    #[test]
    fn unknown_name_is_reported_with_the_choices() {
        let err = "leastconn".parse::<Strategy>().unwrap_err();
        assert_eq!(err, UnknownStrategy("leastconn".into()));
        assert!(err.to_string().contains("least_connections"));
    }
}
