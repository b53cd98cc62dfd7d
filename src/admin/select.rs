//! Which pool a runtime API request means: the one its `?pool=<name>` names, or, without one,
//! the only pool that holds the target.
//!
//! Owns the `?pool=` query and the rule for an omitted pool, read from every pool's latest
//! health report: one pool holds the name, it is that one; two or more, the request is
//! ambiguous (409, the pools listed); none, every pool is asked in order and the first whose
//! checker knows the target takes the change (a reload may have added it since the last
//! report; each checker answers `UnknownTarget` for a name it does not hold). Never applies a
//! change itself and never waits for a checker.

use crate::health::PoolHandle;

/// The pools a change goes to.
#[derive(Debug)]
pub(super) enum Selected<'p> {
    /// This pool, and only it.
    One(&'p PoolHandle),
    /// No report holds the target: these pools, in order, until one knows it.
    InOrder(&'p [PoolHandle]),
}

/// Why no pool was selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Unselected {
    /// `?pool=` names no pool.
    #[error("no pool {name:?} in the running configuration; the pools are {}", list(.known))]
    UnknownPool {
        /// The name asked for.
        name: String,
        /// Every pool's name.
        known: Vec<String>,
    },
    /// No `?pool=`, and several pools hold the target.
    #[error("target {target:?} is in pools {}: name one with ?pool=<name>", list(.pools))]
    Ambiguous {
        /// The target.
        target: String,
        /// The pools that hold it.
        pools: Vec<String>,
    },
}

impl Unselected {
    /// The HTTP status of the refusal.
    pub(super) fn status(&self) -> u16 {
        match self {
            Unselected::UnknownPool { .. } => 404,
            Unselected::Ambiguous { .. } => 409,
        }
    }
}

fn list(names: &[String]) -> String {
    names.join(", ")
}

/// The pools a change to `target` goes to, `pool` being the `?pool=` given, if any.
pub(super) fn select<'p>(
    pools: &'p [PoolHandle],
    pool: Option<&str>,
    target: &str,
) -> Result<Selected<'p>, Unselected> {
    if let Some(name) = pool {
        return match pools.iter().find(|p| p.name == name) {
            Some(pool) => Ok(Selected::One(pool)),
            None => Err(Unselected::UnknownPool {
                name: name.to_owned(),
                known: pools.iter().map(|p| p.name.clone()).collect(),
            }),
        };
    }
    let holds = |p: &&PoolHandle| p.status.report().targets.iter().any(|t| t.name == target);
    let holders: Vec<&PoolHandle> = pools.iter().filter(holds).collect();
    match holders.as_slice() {
        [] => Ok(Selected::InOrder(pools)),
        [one] => Ok(Selected::One(one)),
        several => Err(Unselected::Ambiguous {
            target: target.to_owned(),
            pools: several.iter().map(|p| p.name.clone()).collect(),
        }),
    }
}

/// The `pool` of a query string (`pool=<percent-encoded name>`): `Ok(None)` without one; an
/// error for any other parameter, a repeated or empty `pool`, or a bad escape, so a typo never
/// silently changes the target of another pool.
pub(super) fn pool_param(query: &str) -> Result<Option<String>, String> {
    let mut pool = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "pool" {
            return Err(format!(
                "unknown query parameter {key:?}; the only one is pool=<name>"
            ));
        }
        let name = super::api::decode(value)
            .ok_or_else(|| "the pool name is not valid percent-encoded UTF-8".to_owned())?;
        if name.is_empty() {
            return Err("pool= needs a name, as GET /status lists the pools".to_owned());
        }
        if pool.replace(name).is_some() {
            return Err("pool= given twice".to_owned());
        }
    }
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        health::{AdminState, StatusReport, TargetStatus},
        metrics::test_pool,
    };

    /// A pool named `name` whose report holds `targets`.
    fn pool(name: &str, targets: &[&str]) -> PoolHandle {
        let handle = test_pool(name);
        let target = |name: &&str| TargetStatus {
            name: (*name).to_owned(),
            resolve_error: None,
            state: AdminState::Ready,
            weight: 1,
            weight_override: None,
            endpoints: Vec::new(),
        };
        handle.status.store(StatusReport {
            round: 1,
            targets: targets.iter().map(target).collect(),
        });
        handle
    }

    fn name(selected: Result<Selected<'_>, Unselected>) -> Result<String, Unselected> {
        selected.map(|s| match s {
            Selected::One(p) => p.name.clone(),
            Selected::InOrder(pools) => format!("in order of {}", pools.len()),
        })
    }

    #[test]
    fn a_target_in_one_pool_needs_no_pool_and_one_in_two_does() {
        let pools = [
            pool("web", &["a:80", "b:80"]),
            pool("db", &["b:80", "c:80"]),
        ];
        assert_eq!(name(select(&pools, None, "a:80")), Ok("web".into()));
        assert_eq!(name(select(&pools, None, "c:80")), Ok("db".into()));
        let ambiguous = select(&pools, None, "b:80").unwrap_err();
        assert_eq!(ambiguous.status(), 409);
        assert_eq!(
            ambiguous.to_string(),
            "target \"b:80\" is in pools web, db: name one with ?pool=<name>"
        );
        assert_eq!(name(select(&pools, Some("db"), "b:80")), Ok("db".into()));
        assert_eq!(
            name(select(&pools, Some("db"), "a:80")),
            Ok("db".into()),
            "the named pool's checker answers for a name it does not hold"
        );
        assert_eq!(
            name(select(&pools, None, "new:80")),
            Ok("in order of 2".into())
        );
    }

    #[test]
    fn an_unknown_pool_is_refused_with_the_known_ones() {
        let pools = [pool("web", &["a:80"]), pool("db", &[])];
        let unknown = select(&pools, Some("cache"), "a:80").unwrap_err();
        assert_eq!(unknown.status(), 404);
        assert_eq!(
            unknown.to_string(),
            "no pool \"cache\" in the running configuration; the pools are web, db"
        );
    }

    #[test]
    fn the_query_names_at_most_one_pool() {
        assert_eq!(pool_param(""), Ok(None));
        assert_eq!(pool_param("pool=web"), Ok(Some("web".into())));
        assert_eq!(pool_param("&pool=we%62&"), Ok(Some("web".into())));
        for bad in ["pool=", "pool", "pool=a&pool=b", "pol=web", "pool=%zz"] {
            assert!(pool_param(bad).is_err(), "{bad}");
        }
    }
}
