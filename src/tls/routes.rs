//! The SNI route table: which route a server name selects, by exact name or one-label
//! wildcard, case-insensitively.
//!
//! Owns the pattern syntax and the match order. Built once (by the control plane, from the
//! configuration), then only read: a lookup never allocates and never takes a lock. Never sees
//! a connection; the caller passes the name [`super::parse`] found.

use std::collections::{hash_map::Entry, HashMap};

use thiserror::Error;

use super::name::{check_name, NameError, MAX_NAME_LEN};

/// Why one SNI pattern is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum PatternError {
    /// `*` alone would match every name: that is what the default pool is for.
    #[error("'*' alone matches everything; use the service's default pool")]
    BareWildcard,
    /// A `*` in a label other than the leftmost (`a.*.example.com`).
    #[error("'*' is only allowed as the whole leftmost label")]
    WildcardNotLeftmost,
    /// A `*` sharing the leftmost label with other characters (`a*.example.com`).
    #[error("'*' must be the whole leftmost label, as in '*.example.com'")]
    PartialWildcard,
    /// The name, or the part after `*.`, is not a DNS name.
    #[error("{0}")]
    Name(#[from] NameError),
}

/// Why a route table cannot be built. Routes are numbered from 0 in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteError {
    /// A route without any pattern.
    #[error("route {route}: no SNI pattern")]
    NoPatterns {
        /// The route's index.
        route: usize,
    },
    /// A pattern that is neither a DNS name nor `*.` and a DNS name.
    #[error("route {route}: SNI pattern {pattern:?}: {error}")]
    BadPattern {
        /// The route's index.
        route: usize,
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        error: PatternError,
    },
    /// A pattern given twice (ignoring case), in one route or two.
    #[error("route {route}: SNI pattern {pattern:?} is already used by route {first}")]
    Duplicate {
        /// The route giving it again.
        route: usize,
        /// The pattern as given the second time.
        pattern: String,
        /// The route that gave it first.
        first: usize,
    },
}

/// A pattern, checked: an exact name, or the suffix a one-label wildcard stands before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern<'a> {
    Exact(&'a str),
    Wildcard(&'a str),
}

impl<'a> Pattern<'a> {
    fn parse(pattern: &'a str) -> Result<Self, PatternError> {
        if pattern == "*" {
            return Err(PatternError::BareWildcard);
        }
        let (first, rest) = pattern.split_once('.').unwrap_or((pattern, ""));
        if rest.contains('*') {
            return Err(PatternError::WildcardNotLeftmost);
        }
        if first.contains('*') && first != "*" {
            return Err(PatternError::PartialWildcard);
        }
        if pattern.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong.into());
        }
        if first == "*" {
            check_name(rest.as_bytes())?;
            return Ok(Self::Wildcard(rest));
        }
        check_name(pattern.as_bytes())?;
        Ok(Self::Exact(pattern))
    }
}

/// Routes by server name: exact names, then one-label wildcards, each mapping to a route's
/// value. A name matches `*.internal.example.com` when it is one label followed by
/// `.internal.example.com`, so at most one wildcard can match any name and "the longest
/// wildcard" is simply that one.
#[derive(Debug, Clone)]
pub struct SniRoutes<T> {
    /// Lower-cased exact names → route index.
    exact: HashMap<Box<str>, usize>,
    /// Lower-cased wildcard suffixes (the pattern without `*.`) → route index.
    wildcards: HashMap<Box<str>, usize>,
    /// Each route's value, by index.
    values: Vec<T>,
}

impl<T> SniRoutes<T> {
    /// Builds the table from routes given as (patterns, value), checking every pattern.
    pub fn new<R, P, S>(routes: R) -> Result<Self, RouteError>
    where
        R: IntoIterator<Item = (P, T)>,
        P: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut table = Self {
            exact: HashMap::new(),
            wildcards: HashMap::new(),
            values: Vec::new(),
        };
        for (route, (patterns, value)) in routes.into_iter().enumerate() {
            let mut any = false;
            for pattern in patterns {
                table.add(route, pattern.as_ref())?;
                any = true;
            }
            if !any {
                return Err(RouteError::NoPatterns { route });
            }
            table.values.push(value);
        }
        Ok(table)
    }

    /// Adds one pattern of `route`.
    fn add(&mut self, route: usize, pattern: &str) -> Result<(), RouteError> {
        let checked = Pattern::parse(pattern).map_err(|error| RouteError::BadPattern {
            route,
            pattern: pattern.to_owned(),
            error,
        })?;
        let (map, key) = match checked {
            Pattern::Exact(name) => (&mut self.exact, name),
            Pattern::Wildcard(suffix) => (&mut self.wildcards, suffix),
        };
        match map.entry(key.to_ascii_lowercase().into_boxed_str()) {
            Entry::Occupied(entry) => Err(RouteError::Duplicate {
                route,
                pattern: pattern.to_owned(),
                first: *entry.get(),
            }),
            Entry::Vacant(entry) => {
                entry.insert(route);
                Ok(())
            }
        }
    }

    /// The value of the route `name` selects, if any. See [`SniRoutes::route_of`].
    pub fn lookup(&self, name: &str) -> Option<&T> {
        self.values.get(self.route_of(name)?)
    }

    /// The index of the route `name` selects: the route naming it exactly, else the one whose
    /// wildcard covers it, else none. Case-insensitive; a name that is not a DNS name (see
    /// [`check_name`]) selects none. Never allocates.
    pub fn route_of(&self, name: &str) -> Option<usize> {
        check_name(name.as_bytes()).ok()?;
        let mut buf = [0u8; MAX_NAME_LEN];
        let lower = lower_case(name, &mut buf)?;
        if let Some(&route) = self.exact.get(lower) {
            return Some(route);
        }
        let (_, suffix) = lower.split_once('.')?;
        self.wildcards.get(suffix).copied()
    }

    /// Each route's value, in the order given.
    pub fn values(&self) -> &[T] {
        &self.values
    }
}

/// `name` lower-cased: itself when it has no upper-case letter, else a copy in `buf`. `None`
/// if it does not fit (longer than a DNS name).
fn lower_case<'b>(name: &'b str, buf: &'b mut [u8; MAX_NAME_LEN]) -> Option<&'b str> {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(name);
    }
    let out = buf.get_mut(..name.len())?;
    out.copy_from_slice(name.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SniRoutes<&'static str> {
        SniRoutes::new([
            (vec!["api.example.com", "*.internal.example.com"], "api"),
            (vec!["*.example.com"], "web"),
            (vec!["Special.Internal.Example.com"], "special"),
        ])
        .unwrap()
    }

    #[test]
    fn exact_names_come_before_wildcards() {
        let routes = table();
        for (name, want) in [
            ("api.example.com", Some("api")),
            ("API.Example.COM", Some("api")),
            ("a.internal.example.com", Some("api")),
            ("special.internal.example.com", Some("special")),
            ("www.example.com", Some("web")),
            ("internal.example.com", Some("web")),
            ("a.b.internal.example.com", None),
            ("example.com", None),
            ("a.b.example.com", None),
            (".example.com", None),
            ("a_b.example.com", None),
            ("", None),
            ("other.org", None),
        ] {
            assert_eq!(routes.lookup(name).copied(), want, "{name}");
        }
        assert_eq!(routes.route_of("x.internal.example.com"), Some(0));
        assert_eq!(routes.values(), &["api", "web", "special"]);
    }

    #[test]
    fn bad_patterns_are_named() {
        let bad = |patterns: Vec<&str>| SniRoutes::new([(patterns, ())]).unwrap_err();
        let pattern_error = |pattern: &str| match bad(vec!["ok.example.com", pattern]) {
            RouteError::BadPattern {
                route: 0,
                pattern: p,
                error,
            } if p == pattern => error,
            other => panic!("{pattern}: {other:?}"),
        };
        assert_eq!(pattern_error(""), PatternError::Name(NameError::Empty));
        assert_eq!(pattern_error("*"), PatternError::BareWildcard);
        assert_eq!(pattern_error("a.*.com"), PatternError::WildcardNotLeftmost);
        assert_eq!(pattern_error("*.*.com"), PatternError::WildcardNotLeftmost);
        assert_eq!(pattern_error("a*.com"), PatternError::PartialWildcard);
        assert_eq!(pattern_error("*."), PatternError::Name(NameError::Empty));
        let bad_char = PatternError::Name(NameError::BadCharacter);
        assert_eq!(pattern_error("a b.com"), bad_char);
        assert_eq!(pattern_error("*.exa_mple.com"), bad_char);
        let trailing_dot = PatternError::Name(NameError::EmptyLabel);
        assert_eq!(pattern_error("example.com."), trailing_dot);
        assert_eq!(bad(vec![]), RouteError::NoPatterns { route: 0 });
        let err = bad(vec!["x.com", "X.COM"]);
        assert_eq!(
            err.to_string(),
            "route 0: SNI pattern \"X.COM\" is already used by route 0"
        );
    }

    #[test]
    fn duplicates_across_routes_are_refused() {
        let err = SniRoutes::new([(["*.a.com"], 1), (["b.com"], 2), (["*.A.com"], 3)]);
        let want = RouteError::Duplicate {
            route: 2,
            pattern: "*.A.com".into(),
            first: 0,
        };
        assert_eq!(err.unwrap_err(), want);
        // The same text as exact name and as wildcard suffix is no duplicate.
        assert!(SniRoutes::new([(["a.com"], 1), (["*.a.com"], 2)]).is_ok());
    }
}
