//! The keys whose value is one of a few names (`relay`, `io_backend`, `balance`,
//! `on_no_backend`, `send_proxy`, a target's `health_check`, `[access_log] format`): read and written through
//! `#[serde(with = "named")]` (or `named::option`).
//!
//! Owns the message for a name that is not one of them, which lists every accepted spelling.
//! The spellings themselves belong to each type (`as_str`); this module never invents one.

use serde::{Deserializer, Serializer};

use super::{
    de::{read, string, Found},
    HealthCheckKind, IoBackend, LogFormat, OnNoBackend, RelayMode, SendProxy, Strategy,
};

/// A type whose values are spelled as one of a few names in the file.
pub(super) trait Named: Copy + 'static {
    /// Every value, in the order messages list them.
    const ALL: &'static [Self];
    /// What one value is, for messages: `a relay mode`.
    const WHAT: &'static str;
    /// The spelling in the file.
    fn name(self) -> &'static str;
}

macro_rules! named {
    ($($t:ty: $what:literal),* $(,)?) => {$(
        impl Named for $t {
            const ALL: &'static [Self] = &<$t>::ALL;
            const WHAT: &'static str = $what;
            fn name(self) -> &'static str {
                self.as_str()
            }
        }
    )*};
}

named!(
    RelayMode: "a relay mode",
    IoBackend: "an I/O backend",
    Strategy: "a balancing strategy",
    OnNoBackend: "an answer to a client without a backend",
    SendProxy: "a PROXY protocol setting",
    HealthCheckKind: "a health check kind",
    LogFormat: "an access-log format",
);

/// The value spelled as `found`, or a message listing every spelling.
fn choose<T: Named>(found: Found<'_>) -> Result<T, String> {
    let names: Vec<String> = T::ALL.iter().map(|v| format!("{:?}", v.name())).collect();
    let expected = format!("one of {}", names.join(", "));
    let text = string(found, &expected)?;
    T::ALL
        .iter()
        .copied()
        .find(|v| v.name() == text)
        .ok_or_else(|| format!("{text:?} is not {}; expected {expected}", T::WHAT))
}

pub(super) fn deserialize<'de, D: Deserializer<'de>, T: Named>(
    deserializer: D,
) -> Result<T, D::Error> {
    read(deserializer, choose::<T>)
}

pub(super) fn serialize<S: Serializer, T: Named>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.name())
}

/// An optional key of such a type: absent is `None` (with `#[serde(default)]`).
pub(super) mod option {
    use serde::{Deserializer, Serializer};

    use super::{choose, read, Named};

    pub(in super::super) fn deserialize<'de, D: Deserializer<'de>, T: Named>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        read(deserializer, |found| choose::<T>(found).map(Some))
    }

    pub(in super::super) fn serialize<S: Serializer, T: Named>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_str(value.name()),
            None => serializer.serialize_none(),
        }
    }
}
