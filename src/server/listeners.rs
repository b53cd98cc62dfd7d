//! Every listening socket of a server: the traffic listeners (one per worker) and the admin
//! listener, taken over from the process this one succeeds when it handed them down, bound
//! otherwise; and a copy of each, for handing them on to a successor.

use std::{io, net::TcpListener, os::fd::OwnedFd};

use super::{
    upgrade::{Inherited, Role},
    StartError,
};
use crate::{admin, config::Startup, listener};

/// The listeners of a starting server.
pub(super) struct Listeners {
    /// One per worker; more than configured when a predecessor handed more down (each is
    /// served: closing one would reset the connections queued in it).
    pub(super) traffic: Vec<TcpListener>,
    /// `None` with the admin API disabled.
    pub(super) admin: Option<TcpListener>,
    /// A copy of each, with its role, for a successor.
    pub(super) handover: Vec<(Role, OwnedFd)>,
}

/// Takes over what was handed down, binds the rest.
pub(super) fn open(startup: &Startup) -> Result<Listeners, StartError> {
    let bind_error = |source| StartError::Bind {
        addr: startup.listen,
        source,
    };
    let mut inherited = Inherited::from_env().map_err(bind_error)?;
    let traffic = listener::open(
        startup.listen,
        startup.worker_count(),
        inherited.take(Role::Listen, startup.listen),
        startup.defer_accept,
    )
    .map_err(bind_error)?;
    let admin = match startup.admin.enabled {
        false => None,
        true => match inherited.take(Role::Admin, startup.admin.listen).pop() {
            Some(listener) => Some(listener),
            None => {
                Some(
                    admin::bind(startup.admin.listen).map_err(|source| StartError::Admin {
                        addr: startup.admin.listen,
                        source,
                    })?,
                )
            }
        },
    };
    if inherited.leftover() > 0 {
        tracing::info!(
            listeners = inherited.leftover(),
            "inherited listeners of an address no longer configured are closed; the previous \
             process drains its connections"
        );
    }
    let copies = traffic
        .iter()
        .map(|l| copy(Role::Listen, l))
        .chain(admin.iter().map(|l| copy(Role::Admin, l)))
        .collect::<io::Result<Vec<_>>>()
        .map_err(bind_error)?;
    Ok(Listeners {
        traffic,
        admin,
        handover: copies,
    })
}

fn copy(role: Role, listener: &TcpListener) -> io::Result<(Role, OwnedFd)> {
    Ok((role, OwnedFd::from(listener.try_clone()?)))
}
