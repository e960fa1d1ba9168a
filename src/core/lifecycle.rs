//! Open, draining after a graceful shutdown, or closed.

/// Where a bucket is in its life. `D` is whatever waits for the end of a graceful
/// shutdown (the front end's reply to each `Shutdown` message).
#[derive(Debug)]
pub(crate) enum Lifecycle<D> {
    /// Grants.
    Open,
    /// Serves the waiters it holds, refuses new requests, and then closes; `D` wait for
    /// that.
    Draining(Vec<D>),
    /// Grants nothing more.
    Closed,
}

/// What to do about a shutdown.
#[derive(Debug)]
pub(crate) enum ShutdownStep<D> {
    /// Nothing more to do: answer the shutdown now.
    Done(D),
    /// Answer every waiter, then [`Lifecycle::close`], then answer the shutdown now.
    CloseNow(D),
    /// The shutdown is answered when the drain ends.
    Draining,
}

impl<D> Lifecycle<D> {
    pub(crate) fn is_open(&self) -> bool {
        matches!(self, Self::Open)
    }

    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    /// A shutdown arrives, answered through `reply`; `nobody_waits` says whether the
    /// bucket's queues are empty (after serving what is due).
    pub(crate) fn shutdown(
        &mut self,
        graceful: bool,
        nobody_waits: bool,
        reply: D,
    ) -> ShutdownStep<D> {
        match self {
            // Stopping again would only make a supervisor restart the closed bucket again.
            Self::Closed => ShutdownStep::Done(reply),
            _ if !graceful || nobody_waits => ShutdownStep::CloseNow(reply),
            Self::Draining(waiting) => {
                waiting.push(reply);
                ShutdownStep::Draining
            }
            Self::Open => {
                *self = Self::Draining(vec![reply]);
                ShutdownStep::Draining
            }
        }
    }

    /// Whether a drain has just ended: it is draining and `nobody_waits`.
    pub(crate) fn drained(&self, nobody_waits: bool) -> bool {
        nobody_waits && matches!(self, Self::Draining(_))
    }

    /// Closes for good; returns the shutdowns that waited for a drain, to be answered.
    pub(crate) fn close(&mut self) -> Vec<D> {
        match std::mem::replace(self, Self::Closed) {
            Self::Draining(waiting) => waiting,
            Self::Open | Self::Closed => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graceful_shutdown_drains_then_answers_everyone_who_waited() {
        let mut life = Lifecycle::Open;
        assert!(matches!(
            life.shutdown(true, false, 1),
            ShutdownStep::Draining
        ));
        assert!(matches!(
            life.shutdown(true, false, 2),
            ShutdownStep::Draining
        ));
        assert!(!life.is_open() && !life.drained(false));
        assert!(life.drained(true));
        assert_eq!(life.close(), [1, 2]);
        assert!(life.is_closed());
        assert!(matches!(
            life.shutdown(false, true, 3),
            ShutdownStep::Done(3)
        ));
    }

    #[test]
    fn an_immediate_shutdown_or_an_empty_bucket_closes_at_once() {
        let mut draining = Lifecycle::Draining(vec![1]);
        assert!(matches!(
            draining.shutdown(false, false, 2),
            ShutdownStep::CloseNow(2)
        ));
        assert_eq!(draining.close(), [1]);
        let mut idle: Lifecycle<u8> = Lifecycle::Open;
        assert!(matches!(
            idle.shutdown(true, true, 3),
            ShutdownStep::CloseNow(3)
        ));
    }
}
