//! The spell book: one replica's in-memory list of spells and its cached JSON form.
//!
//! Owns the data and its serialisation. Never does I/O; the JSON of `GET /spells` is rendered
//! once per change, not once per request, so the replica stays cheap next to the proxy it feeds.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// One spell, as listed by `GET /spells`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spell {
    /// Identifier, unique within one replica, assigned in order of creation.
    pub id: u64,
    /// The spell's name.
    pub name: String,
    /// School of magic.
    pub school: String,
    /// Spell level, 0 (cantrip) to 9.
    pub level: u8,
}

/// The body of `POST /spells`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSpell {
    /// The spell's name (required, not blank).
    pub name: String,
    /// School of magic (optional).
    #[serde(default)]
    pub school: String,
    /// Spell level, 0 to 9 (optional, 0 by default).
    #[serde(default)]
    pub level: u8,
}

/// Why a `POST /spells` body was rejected.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

/// A replica's spells, shared by its connections.
#[derive(Debug)]
pub struct SpellBook {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    spells: Vec<Spell>,
    json: Arc<Vec<u8>>,
}

impl SpellBook {
    /// A book holding the starter spells every replica begins with.
    pub fn seeded() -> SpellBook {
        let seed = [
            ("Fireball", "evocation", 3),
            ("Mage Hand", "conjuration", 0),
            ("Shield", "abjuration", 1),
            ("Invisibility", "illusion", 2),
            ("Counterspell", "abjuration", 3),
        ];
        let spells: Vec<Spell> = seed
            .iter()
            .zip(1..)
            .map(|(&(name, school, level), id)| Spell {
                id,
                name: name.into(),
                school: school.into(),
                level,
            })
            .collect();
        let json = Arc::new(render(&spells));
        SpellBook {
            inner: Mutex::new(Inner { spells, json }),
        }
    }

    /// The JSON list of all spells (cheap: a shared, pre-rendered buffer).
    pub fn json(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.lock().json)
    }

    /// Parses a `POST /spells` body, appends the spell and returns it as stored.
    pub fn add(&self, body: &[u8]) -> Result<Spell, Invalid> {
        let new: NewSpell =
            serde_json::from_slice(body).map_err(|e| Invalid(format!("bad JSON: {e}")))?;
        if new.name.trim().is_empty() {
            return Err(Invalid("name must not be blank".into()));
        }
        if new.level > 9 {
            return Err(Invalid(format!("level must be 0..=9, got {}", new.level)));
        }
        let mut inner = self.lock();
        let spell = Spell {
            id: inner.spells.last().map_or(1, |s| s.id + 1),
            name: new.name,
            school: new.school,
            level: new.level,
        };
        inner.spells.push(spell.clone());
        inner.json = Arc::new(render(&inner.spells));
        Ok(spell)
    }

    /// How many spells the book holds.
    pub fn len(&self) -> usize {
        self.lock().spells.len()
    }

    /// True when the book holds no spell (never, for a seeded book).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated (the JSON is swapped in
        // one assignment), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn render(spells: &[Spell]) -> Vec<u8> {
    serde_json::to_vec(spells).unwrap_or_else(|_| b"[]".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_book_lists_its_spells_as_json() {
        let book = SpellBook::seeded();
        let list: Vec<Spell> = serde_json::from_slice(&book.json()).unwrap();
        assert_eq!(list.len(), book.len());
        assert_eq!(list[0].name, "Fireball");
    }

    #[test]
    fn add_appends_with_the_next_id_and_refreshes_the_json() {
        let book = SpellBook::seeded();
        let before = book.len();
        let spell = book
            .add(br#"{"name":"Blink","school":"transmutation","level":3}"#)
            .unwrap();
        assert_eq!(spell.id, before as u64 + 1);
        let list: Vec<Spell> = serde_json::from_slice(&book.json()).unwrap();
        assert_eq!(list.last(), Some(&spell));
    }

    #[test]
    fn add_rejects_bad_bodies() {
        let book = SpellBook::seeded();
        assert!(book.add(b"not json").is_err());
        assert!(book.add(br#"{"name":"  "}"#).is_err());
        assert!(book.add(br#"{"name":"Wish","level":10}"#).is_err());
        assert!(book.add(br#"{"name":"Wish","colour":"red"}"#).is_err());
    }
}
