//! A precise sleep for the open-loop schedule: a `timerfd` polled by tokio's reactor.
//!
//! Owns waking a load connection at its intended send time. tokio's own timer rounds every
//! deadline up to the next millisecond, which would charge up to 1 ms of the generator's own
//! lateness to the server under test (latency is measured from the *intended* send time). A
//! timerfd has nanosecond resolution (plus the thread's timer slack, which the load runtime
//! lowers to 1 µs), and wakes the very thread that owns the connection. Never busy-waits.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
    time::Instant,
};

use nix::{
    errno::Errno,
    sys::{
        time::TimeSpec,
        timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
    },
};
use tokio::io::{unix::AsyncFd, Interest};

/// A `TimerFd` that tokio can register.
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One connection's precise timer.
pub struct Pacer {
    fd: AsyncFd<Timer>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pacer")
    }
}

impl Pacer {
    /// Creates the timer; must be called inside a tokio runtime.
    pub fn new() -> io::Result<Pacer> {
        let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
        let timer = Timer(TimerFd::new(ClockId::CLOCK_MONOTONIC, flags)?);
        // SAFETY: `Timer` owns the timerfd (an `OwnedFd` inside `TimerFd`) for as long as the
        // `AsyncFd` holds it, and `as_raw_fd` always returns that same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE)? };
        Ok(Pacer { fd })
    }

    /// Returns at `deadline` (at once if it has passed).
    pub async fn sleep_until(&mut self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let expiration = Expiration::OneShot(TimeSpec::from_duration(left));
        self.fd
            .get_ref()
            .0
            .set(expiration, TimerSetTimeFlags::empty())?;
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| match fd.get_ref().0.wait() {
                Ok(()) => Ok(()),
                Err(Errno::EAGAIN) => Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => Err(e.into()),
            }) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Lowers the calling thread's timer slack to 1 µs (the default, 50 µs, would add up to 50 µs
/// to every wake-up). Best effort: on failure the default slack stays.
pub fn tighten_timer_slack() {
    let _ = nix::sys::prctl::set_timerslack(1_000);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn median(mut late: Vec<Duration>) -> Duration {
        late.sort();
        late[late.len() / 2]
    }

    /// Compared with tokio's own timer in the same run (which rounds up to the next
    /// millisecond), not with an absolute bound, so a loaded machine cannot fail it.
    #[tokio::test]
    async fn wakes_at_the_deadline_not_a_millisecond_later() {
        tighten_timer_slack();
        let mut pacer = Pacer::new().unwrap();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..21 {
            let deadline = Instant::now() + Duration::from_micros(300);
            pacer.sleep_until(deadline).await.unwrap();
            assert!(Instant::now() >= deadline, "woke before the deadline");
            ours.push(Instant::now().saturating_duration_since(deadline));
            let deadline = Instant::now() + Duration::from_micros(300);
            tokio::time::sleep_until(deadline.into()).await;
            theirs.push(Instant::now().saturating_duration_since(deadline));
        }
        let (ours, theirs) = (median(ours), median(theirs));
        assert!(
            ours < theirs,
            "pacer median lateness {ours:?} is not below tokio's {theirs:?}"
        );
    }

    #[tokio::test]
    async fn a_past_deadline_returns_at_once() {
        let mut pacer = Pacer::new().unwrap();
        let start = Instant::now();
        pacer
            .sleep_until(start - Duration::from_millis(1))
            .await
            .unwrap();
        assert!(start.elapsed() < Duration::from_millis(1));
    }
}
