//! Every listening socket of a server: the traffic listeners (one per service per worker) and
//! the admin listener, taken over from the process this one succeeds when it handed them down, bound
//! otherwise; and a copy of each, for handing them on to a successor.

use std::{io, net::TcpListener, os::fd::OwnedFd};

use super::{
    upgrade::{Inherited, Role},
    StartError,
};
use crate::{
    admin,
    config::{Service, Startup},
    listener,
};

/// The listeners of a starting server.
pub(super) struct Listeners {
    /// Per worker, one per service (in the order of the services). More workers than
    /// configured when a predecessor handed more listeners of a service down (each is served:
    /// closing one would reset the connections queued in it).
    pub(super) traffic: Vec<Vec<TcpListener>>,
    /// `None` with the admin API disabled.
    pub(super) admin: Option<TcpListener>,
    /// A copy of each, with its role, for a successor.
    pub(super) handover: Vec<(Role, OwnedFd)>,
}

/// Takes over what was handed down, binds the rest.
pub(super) fn open(startup: &Startup, services: &[Service]) -> Result<Listeners, StartError> {
    let mut inherited = Inherited::from_env().map_err(|source| StartError::Bind {
        addr: services[0].listen,
        source,
    })?;
    let handed: Vec<Vec<TcpListener>> = services
        .iter()
        .map(|s| inherited.take_service(&s.name, s.listen))
        .collect();
    // Every worker serves every service: as many workers as the service handed the most.
    let count = handed
        .iter()
        .map(Vec::len)
        .fold(startup.worker_count(), usize::max);
    let mut per_service = Vec::with_capacity(services.len());
    for (service, handed) in services.iter().zip(handed) {
        let bound = listener::open(service.listen, count, handed, startup.defer_accept).map_err(
            |source| StartError::Bind {
                addr: service.listen,
                source,
            },
        )?;
        per_service.push(bound);
    }
    let copy_error = |source| StartError::Bind {
        addr: services[0].listen,
        source,
    };
    let admin = match startup.admin.enabled {
        false => None,
        true => match inherited.take_admin(startup.admin.listen).pop() {
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
    let copies = (per_service.iter().zip(services))
        .flat_map(|(listeners, service)| {
            let role = Role::Listen(Some(service.name.clone()));
            listeners.iter().map(move |l| copy(role.clone(), l))
        })
        .chain(admin.iter().map(|l| copy(Role::Admin, l)))
        .collect::<io::Result<Vec<_>>>()
        .map_err(copy_error)?;
    Ok(Listeners {
        traffic: per_worker(per_service, count),
        admin,
        handover: copies,
    })
}

fn copy(role: Role, listener: &TcpListener) -> io::Result<(Role, OwnedFd)> {
    Ok((role, OwnedFd::from(listener.try_clone()?)))
}

/// `[service][worker]` → `[worker][service]`.
fn per_worker(per_service: Vec<Vec<TcpListener>>, workers: usize) -> Vec<Vec<TcpListener>> {
    let mut workers: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    for listeners in per_service {
        for (worker, listener) in workers.iter_mut().zip(listeners) {
            worker.push(listener);
        }
    }
    workers
}
