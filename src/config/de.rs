//! Reading single values of the file with serde: what a value was when it is not what a key
//! wants, and the checks every key shares (integers in a range, booleans, durations, IP
//! addresses, arrays).
//!
//! Owns the wording "`<what was found>` is not `<what>`; expected `<hint>`" of every message
//! about one value; the key is added by the caller's path (`serde_path_to_error`), the file by
//! [`super::ConfigError`]. Never resolves names and never panics on input.

use std::{borrow::Cow, fmt, marker::PhantomData, net::SocketAddr};

use serde::de::{self, Deserialize, Deserializer, MapAccess};

/// A value as the file holds it, enough to check it or to say what it was.
pub(super) enum Found<'de> {
    /// A string.
    Str(Cow<'de, str>),
    /// An integer, of any size TOML allows.
    Int(i128),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A date, time or date-time, as written.
    DateTime(String),
    /// An array.
    Array,
    /// A table.
    Table,
}

impl fmt::Display for Found<'_> {
    /// A short description for messages, e.g. `the integer 5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Str(s) => write!(f, "the string {s:?}"),
            Found::Int(i) => write!(f, "the integer {i}"),
            Found::Float(x) => write!(f, "the float {x}"),
            Found::Bool(b) => write!(f, "the boolean {b}"),
            Found::DateTime(d) => write!(f, "the date-time {d}"),
            Found::Array => f.write_str("an array"),
            Found::Table => f.write_str("a table"),
        }
    }
}

impl Found<'_> {
    /// The message for a value of the wrong type: "`<found>` is not `<what>`; expected ...".
    pub(super) fn is_not(&self, what: &str, expected: &str) -> String {
        format!("{self} is not {what}; expected {expected}")
    }
}

/// The key toml's deserializer gives the single entry of the map it presents a date-time as
/// (`toml_datetime`'s private field name: a date-time has no visitor method of its own).
pub(super) const DATETIME_KEY: &str = "$__toml_private_datetime";

/// What a map is: a date-time (see [`DATETIME_KEY`]) or a table. Only for maps that are an
/// error anyway: it reads the first entry.
pub(super) fn found_in_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Found<'de>, A::Error> {
    match map.next_key::<String>()? {
        Some(key) if key == DATETIME_KEY => Ok(Found::DateTime(map.next_value()?)),
        _ => Ok(Found::Table),
    }
}

/// The visitor methods of every value that is neither an array nor a table, each handing what
/// it found to the visitor's own `found` method (`Found`, `Cow` and `serde::de` in scope).
macro_rules! visit_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            self.found(Found::Bool(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.found(Found::Int(v.into()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.found(Found::Int(v.into()))
        }

        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
            self.found(Found::Int(v))
        }

        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
            self.found(Found::Int(i128::try_from(v).unwrap_or(i128::MAX)))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            self.found(Found::Float(v))
        }

        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            self.found(Found::Str(Cow::Borrowed(v)))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            self.found(Found::Str(Cow::Owned(v.to_owned())))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            self.found(Found::Str(Cow::Owned(v)))
        }
    };
}
pub(super) use visit_scalars;

/// Reads any value and hands it to `check`; an `Err` from `check` is the message of the key's
/// error.
pub(super) fn read<'de, D, T, F>(deserializer: D, check: F) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(Found<'de>) -> Result<T, String>,
{
    deserializer.deserialize_any(Checked(check, PhantomData))
}

/// The visitor of [`read`].
struct Checked<F, T>(F, PhantomData<T>);

impl<'de, F, T> Checked<F, T>
where
    F: FnOnce(Found<'de>) -> Result<T, String>,
{
    fn found<E: de::Error>(self, found: Found<'de>) -> Result<T, E> {
        (self.0)(found).map_err(E::custom)
    }
}

impl<'de, F, T> de::Visitor<'de> for Checked<F, T>
where
    F: FnOnce(Found<'de>) -> Result<T, String>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    visit_scalars!();

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<T, A::Error> {
        self.found(Found::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let found = found_in_map(map)?;
        self.found(found)
    }
}

/// An array whose elements are read as `T`; anything else is named in the message `not_array`
/// makes of it.
pub(super) fn array<'de, D, T>(
    deserializer: D,
    not_array: fn(Found<'_>) -> String,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_any(ArrayVisitor(not_array, PhantomData))
}

/// The visitor of [`array`].
struct ArrayVisitor<T>(fn(Found<'_>) -> String, PhantomData<T>);

impl<T> ArrayVisitor<T> {
    fn found<E: de::Error>(self, found: Found<'_>) -> Result<Vec<T>, E> {
        Err(E::custom((self.0)(found)))
    }
}

impl<'de, T: Deserialize<'de>> de::Visitor<'de> for ArrayVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    visit_scalars!();

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(element) = seq.next_element()? {
            elements.push(element);
        }
        Ok(elements)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
        let found = found_in_map(map)?;
        self.found(found)
    }
}

/// A string, or the message naming what was found instead.
pub(super) fn string<'de>(found: Found<'de>, expected: &str) -> Result<Cow<'de, str>, String> {
    match found {
        Found::Str(s) => Ok(s),
        other => Err(other.is_not("a string", expected)),
    }
}

/// `true` or `false`.
pub(super) fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    read(deserializer, |found| match found {
        Found::Bool(b) => Ok(b),
        other => Err(other.is_not("a boolean", "true or false")),
    })
}

/// An integer from `min` to `max` that fits `T`; `expected` says what the key counts.
pub(super) fn integer<'de, D, T>(
    deserializer: D,
    min: i128,
    max: i128,
    expected: &str,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    read(deserializer, |found| {
        let n = match found {
            Found::Int(n) => n,
            other => return Err(other.is_not("an integer", expected)),
        };
        let fits = (min..=max)
            .contains(&n)
            .then(|| T::try_from(n).ok())
            .flatten();
        let problem = if n < min { "too small" } else { "too large" };
        fits.ok_or_else(|| format!("{n} is {problem}; expected {expected}"))
    })
}

/// An integer of at least `min` that fits `T`.
pub(super) fn at_least<'de, D, T>(deserializer: D, min: i128, expected: &str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    integer(deserializer, min, i128::MAX, expected)
}

/// An IP address and port (never a name: nothing is resolved); `expected` gives examples.
pub(super) fn socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
    expected: &str,
) -> Result<SocketAddr, D::Error> {
    read(deserializer, |found| {
        let text = string(found, expected)?;
        text.parse()
            .map_err(|_| format!("{text:?} is not an IP address and port; expected {expected}"))
    })
}

/// Durations: a human string such as `"5s"` in the file, above zero and at most one day.
pub(super) mod duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    use super::{read, string};

    const EXPECTED: &str =
        "a duration above zero and at most one day, such as \"250ms\", \"5s\" or \"1m\"";
    /// The longest accepted duration: far beyond any useful probe interval, far below the
    /// point where timer arithmetic overflows.
    pub(in super::super) const MAX: Duration = Duration::from_secs(24 * 60 * 60);

    pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        read(deserializer, |found| {
            let text = string(found, EXPECTED)?;
            match humantime::parse_duration(&text) {
                Ok(d) if d.is_zero() => Err(format!("{text:?} is zero; expected {EXPECTED}")),
                Ok(d) if d > MAX => Err(format!(
                    "{text:?} is longer than one day; expected {EXPECTED}"
                )),
                Ok(d) => Ok(d),
                Err(e) => Err(format!(
                    "{text:?} is not a duration ({e}); expected {EXPECTED}"
                )),
            }
        })
    }

    /// As `humantime` prints it (`"1m 30s"`), which it parses back to the same value.
    pub(in super::super) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*duration))
    }

    /// An optional duration key (a pool's or a service's, absent when it inherits the
    /// top-level value): the same spelling and limits.
    pub(in super::super) mod option {
        use std::time::Duration;

        use serde::{Deserializer, Serializer};

        pub(in super::super::super) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            super::deserialize(deserializer).map(Some)
        }

        pub(in super::super::super) fn serialize<S: Serializer>(
            duration: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match duration {
                Some(duration) => super::serialize(duration, serializer),
                None => serializer.serialize_none(),
            }
        }
    }
}
