//! Runtime overrides of targets, set through the admin's runtime API: a target's state
//! (`ready`, `drain`, `maint`) and its weight, without editing the file.
//!
//! Owns the overrides in force and their rules, as plain data the health checker applies (it is
//! the only writer of the balancer): what weight a target's backends get, which targets are out
//! of rotation and not probed, and which overrides survive a reload or an upgrade. An override
//! remembers the target's entry it was set against ([`crate::config::Target::to_toml`]); it
//! lasts until an explicit reload changes (or removes) that entry, and nothing else clears it
//! but the API itself. Serialisable, so a binary upgrade can hand the overrides of the old
//! process to the new one ([`Overrides::restore`]). Never does I/O, never touches the balancer.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A target's administrative state, set through the runtime API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// In rotation as the file and the probes say (the default).
    #[default]
    Ready,
    /// No new connection; open ones run to their end; still probed (as `weight = 0`).
    Drain,
    /// Out of rotation and not probed; its endpoints show `maint`. Back to `ready`, they are
    /// judged afresh: each enters on its first passed probe.
    Maint,
}

impl AdminState {
    /// Every state, in the order messages list them.
    pub const ALL: [AdminState; 3] = [Self::Ready, Self::Drain, Self::Maint];

    /// The spelling in the API, `/status` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Drain => "drain",
            Self::Maint => "maint",
        }
    }
}

impl fmt::Display for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an [`AdminState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a state; expected ready, drain or maint")]
pub struct UnknownState(pub String);

impl FromStr for AdminState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// What the runtime API asks of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Put the target in this state; its weight override, if any, stays.
    State(AdminState),
    /// Give the target this weight instead of the file's, or (`None`) the file's again; its
    /// state stays.
    Weight(Option<u32>),
}

/// The overrides of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetOverride {
    /// Its state.
    #[serde(default)]
    pub state: AdminState,
    /// Its weight instead of the file's, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The target's entry when the override was set, as `--check` would print it
    /// ([`crate::config::Target::to_toml`], the top-level `send_proxy` it inherits resolved):
    /// the override holds while the running entry is the same.
    pub entry: String,
}

impl TargetOverride {
    /// Whether this overrides nothing (ready, the file's weight).
    fn is_empty(&self) -> bool {
        self.state == AdminState::Ready && self.weight.is_none()
    }
}

/// Every override in force, by target name (`host:port` as configured).
///
/// Serialise it (JSON, or any serde format) to hand it to another process; the receiving
/// process applies it with [`Overrides::restore`] against its own configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    /// The overridden targets; a target without an override is absent.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetOverride>,
}

/// What became of the overrides a reload or a restore met.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    /// Targets whose overrides hold (their entry is unchanged).
    pub kept: Vec<String>,
    /// Targets whose overrides were dropped: the entry changed or the target is gone.
    pub cleared: Vec<String>,
}

impl Overrides {
    /// No override at all.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// `target`'s overrides, if any.
    pub fn get(&self, target: &str) -> Option<&TargetOverride> {
        self.targets.get(target)
    }

    /// `target`'s state (`ready` unless overridden).
    pub fn state(&self, target: &str) -> AdminState {
        self.get(target).map_or(AdminState::Ready, |o| o.state)
    }

    /// `target`'s weight override, if any.
    pub fn weight_override(&self, target: &str) -> Option<u32> {
        self.get(target).and_then(|o| o.weight)
    }

    /// The weight `target`'s backends get, whose file says `configured`: 0 while it drains or
    /// is in maintenance, else its override or `configured`.
    pub fn weight(&self, target: &str, configured: u32) -> u32 {
        match self.get(target) {
            None => configured,
            Some(o) if o.state != AdminState::Ready => 0,
            Some(o) => o.weight.unwrap_or(configured),
        }
    }

    /// Applies `change` to `target`, whose running entry is `entry`. An override that ends up
    /// overriding nothing (ready, the file's weight) is removed.
    pub fn set(&mut self, target: &str, entry: &str, change: Change) {
        let mut current = match self.targets.remove(target) {
            Some(o) if o.entry == entry => o,
            _ => TargetOverride {
                state: AdminState::Ready,
                weight: None,
                entry: entry.to_owned(),
            },
        };
        match change {
            Change::State(state) => current.state = state,
            Change::Weight(weight) => current.weight = weight,
        }
        if !current.is_empty() {
            self.targets.insert(target.to_owned(), current);
        }
    }

    /// The reload rule: keeps the overrides of targets whose running entry (`entry_of(name)`,
    /// `None` for a target no longer configured) is the one they were set against, and drops
    /// the others.
    pub fn retain_unchanged<'a>(&mut self, entry_of: impl Fn(&str) -> Option<&'a str>) -> Kept {
        let mut kept = Kept::default();
        self.targets.retain(|name, o| {
            let holds = entry_of(name) == Some(o.entry.as_str());
            let list = if holds {
                &mut kept.kept
            } else {
                &mut kept.cleared
            };
            list.push(name.clone());
            holds
        });
        kept
    }

    /// The upgrade rule: takes over `handed` (another process's overrides, say the old binary's)
    /// where this process runs the same entry for the target, under the same rule as a reload;
    /// the others are dropped. What this process overrode already is replaced target by target.
    pub fn restore<'a>(
        &mut self,
        mut handed: Overrides,
        entry_of: impl Fn(&str) -> Option<&'a str>,
    ) -> Kept {
        let kept = handed.retain_unchanged(entry_of);
        self.targets.append(&mut handed.targets);
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "address = \"a:80\"\nweight = 1\n";
    const B: &str = "address = \"b:80\"\nweight = 2\n";

    #[test]
    fn states_are_spelled_once() {
        for state in AdminState::ALL {
            assert_eq!(state.as_str().parse::<AdminState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
        }
        let err = "Drain".parse::<AdminState>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"Drain\" is not a state; expected ready, drain or maint"
        );
    }

    #[test]
    fn weights_follow_state_then_override_then_file() {
        let mut o = Overrides::default();
        assert_eq!(o.weight("a:80", 1), 1);
        o.set("a:80", A, Change::Weight(Some(5)));
        assert_eq!(o.weight("a:80", 1), 5);
        o.set("a:80", A, Change::State(AdminState::Drain));
        assert_eq!(o.weight("a:80", 1), 0, "drain is weight 0");
        assert_eq!(o.weight_override("a:80"), Some(5), "the override is kept");
        o.set("a:80", A, Change::State(AdminState::Maint));
        assert_eq!(o.weight("a:80", 1), 0);
        o.set("a:80", A, Change::State(AdminState::Ready));
        assert_eq!(o.weight("a:80", 1), 5, "ready: back to the override");
        o.set("a:80", A, Change::Weight(None));
        assert_eq!(o.weight("a:80", 1), 1, "and back to the file");
        assert!(o.is_empty(), "nothing overridden, nothing kept");
        assert_eq!(o.weight("b:80", 2), 2, "others untouched");
    }

    #[test]
    fn a_reload_clears_only_the_targets_it_changed_or_removed() {
        let mut o = Overrides::default();
        o.set("a:80", A, Change::State(AdminState::Drain));
        o.set("b:80", B, Change::Weight(Some(7)));
        o.set(
            "c:80",
            "address = \"c:80\"\n",
            Change::State(AdminState::Maint),
        );
        let running = |name: &str| match name {
            "a:80" => Some(A),
            "b:80" => Some("address = \"b:80\"\nweight = 3\n"),
            _ => None,
        };
        let kept = o.retain_unchanged(running);
        assert_eq!(kept.kept, ["a:80"]);
        assert_eq!(kept.cleared, ["b:80", "c:80"]);
        assert_eq!(o.state("a:80"), AdminState::Drain);
        assert_eq!(o.weight_override("b:80"), None);
        assert_eq!(o.state("c:80"), AdminState::Ready);
    }

    #[test]
    fn an_override_set_against_an_old_entry_starts_afresh() {
        let mut o = Overrides::default();
        o.set(
            "a:80",
            "address = \"a:80\"\nweight = 9\n",
            Change::Weight(Some(4)),
        );
        o.set("a:80", A, Change::State(AdminState::Drain));
        let a = o.get("a:80").unwrap();
        assert_eq!(
            (a.state, a.weight, a.entry.as_str()),
            (AdminState::Drain, None, A)
        );
    }

    #[test]
    fn overrides_survive_a_round_trip_and_restore_where_the_entry_is_the_same() {
        let mut old = Overrides::default();
        old.set("a:80", A, Change::State(AdminState::Maint));
        old.set("b:80", B, Change::Weight(Some(3)));
        let json = serde_json::to_string(&old).unwrap();
        let handed: Overrides = serde_json::from_str(&json).unwrap();
        assert_eq!(handed, old);
        // The new process runs a:80 unchanged and b:80 with another weight.
        let mut new = Overrides::default();
        new.set(
            "b:80",
            "address = \"b:80\"\nweight = 5\n",
            Change::State(AdminState::Drain),
        );
        let running = |name: &str| match name {
            "a:80" => Some(A),
            "b:80" => Some("address = \"b:80\"\nweight = 5\n"),
            _ => None,
        };
        let kept = new.restore(handed, running);
        assert_eq!(kept.kept, ["a:80"]);
        assert_eq!(kept.cleared, ["b:80"]);
        assert_eq!(new.state("a:80"), AdminState::Maint);
        assert_eq!(
            new.state("b:80"),
            AdminState::Drain,
            "its own override stays"
        );
        // What an old process without a field wrote still reads.
        let minimal: Overrides =
            serde_json::from_str(r#"{"targets":{"a:80":{"entry":"x"}}}"#).unwrap();
        assert_eq!(minimal.state("a:80"), AdminState::Ready);
    }
}
