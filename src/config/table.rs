//! Tables of the file (`[health_check]`, `[admin]`, each `[[targets]]` entry, the document
//! itself) read into their serde structs.
//!
//! Owns two things serde's derive does not say well: a value that is no table is named ("the
//! integer 5 is not a table; expected a [health_check] table"), and an unknown key is an error
//! of its table (`health_check: unknown field ...`, with the accepted keys), wherever it stands
//! in the table. Never checks a value itself; each field's own deserializer does.

use std::{borrow::Cow, fmt, marker::PhantomData};

use serde::de::{self, value::MapAccessDeserializer, Deserialize, Deserializer, MapAccess};

use super::de::{visit_scalars, Found, DATETIME_KEY};

/// A table of the file read into `T`, which says what it should look like.
pub(super) trait TableOf {
    /// The hint of the message when the value is not a table, e.g. `a [health_check] table`.
    const EXPECTED: &'static str;
}

/// A table read into `T` with the messages of this module.
pub(super) struct Table<T>(pub(super) T);

impl<'de, T: Deserialize<'de> + TableOf> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TableVisitor(PhantomData))
    }
}

/// A field of table type `T`, for `#[serde(deserialize_with = "...")]`.
pub(super) fn table<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + TableOf,
{
    Table::deserialize(deserializer).map(|Table(t)| t)
}

struct TableVisitor<T>(PhantomData<T>);

impl<T: TableOf> TableVisitor<T> {
    fn found<E: de::Error>(self, found: Found<'_>) -> Result<Table<T>, E> {
        Err(E::custom(found.is_not("a table", T::EXPECTED)))
    }
}

impl<'de, T: Deserialize<'de> + TableOf> de::Visitor<'de> for TableVisitor<T> {
    type Value = Table<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }

    visit_scalars!();

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Table<T>, A::Error> {
        self.found(Found::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Table<T>, A::Error> {
        let keys = Keys {
            map,
            expected: T::EXPECTED,
        };
        T::deserialize(MapAccessDeserializer::new(keys)).map(Table)
    }
}

/// The entries of a table as `T` reads them, each key read as a string first. An unknown key
/// then fails in `T`'s own key visitor, after the path tracker has seen the key succeed: the
/// error's path is the table's, as for every other key. A date-time (which toml presents as a
/// map) is named as such instead of being an unknown key.
struct Keys<A> {
    map: A,
    expected: &'static str,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Keys<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.map.next_key::<String>()? else {
            return Ok(None);
        };
        if key == DATETIME_KEY {
            let found = Found::DateTime(self.map.next_value()?);
            return Err(de::Error::custom(found.is_not("a table", self.expected)));
        }
        seed.deserialize(de::value::StringDeserializer::<A::Error>::new(key))
            .map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}
