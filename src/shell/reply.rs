//! Replies that can be sent after the handler returns, by the actor itself.
//!
//! A handler returning `ResponseFuture` hands actix's reply sender to a separate task,
//! where a caller that gives up cannot be seen. Instead the bucket keeps that sender in
//! its own queue: the handler returns a [`Reply`] to come later, through an [`Inbox`];
//! actix delivers the sender into it synchronously, right after the handler and before
//! any other message, and the bucket moves it from there into the queue, beside the
//! request.

use std::cell::Cell;
use std::rc::Rc;

use actix::dev::{MessageResponse, OneshotSender};
use actix::{Actor, Message};
use actix_rt::time::Instant;
use log::debug;

use crate::core::{Grant, Refusal, Replies};
use crate::wake::Clock;
use crate::{AcquireError, BucketConfig, Granted};

/// The answer to an [`Acquire`](crate::Acquire).
pub(crate) type AcquireResult = Result<Granted, AcquireError>;

/// The reply sender of a caller who waits; `None` once answered.
pub(crate) type Waiting = Option<OneshotSender<AcquireResult>>;

/// Answers waiting callers through their reply senders, with grant instants on tokio's
/// clock and the bucket's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Courier {
    pub(crate) clock: Clock,
    pub(crate) config: BucketConfig,
}

impl Courier {
    /// `grant`, made at `at` on tokio's clock, as its caller sees it.
    pub(crate) fn granted(&self, grant: &Grant, at: Instant) -> Granted {
        Granted {
            amount: grant.amount,
            waited: grant.waited,
            granted_at: at,
            backlog: grant.backlog,
            capacity: self.config.capacity(),
            leak_rate: self.config.leak_rate(),
        }
    }
}

impl Replies for Courier {
    type Caller = Waiting;

    fn is_gone(&self, caller: &Waiting) -> bool {
        caller.as_ref().is_none_or(OneshotSender::is_closed)
    }

    fn send(&self, caller: &mut Waiting, answer: Result<Grant, Refusal>) -> bool {
        let answer = answer
            .map(|grant| self.granted(&grant, self.clock.instant(grant.at)))
            .map_err(AcquireError::from);
        match &answer {
            Ok(granted) => debug!("granted {} after {:?}", granted.amount, granted.waited),
            Err(error) => debug!("{error}"),
        }
        let heard = caller
            .take()
            .is_some_and(|sender| sender.send(answer).is_ok());
        if !heard {
            debug!("nobody heard that answer: its caller had given up");
        }
        heard
    }
}

/// Where actix delivers the reply sender of a request whose [`Reply`] comes later.
///
/// One inbox serves any number of requests in turn, as long as each delivery is
/// collected before the next request is handled: a bucket keeps one for all its waiters,
/// so that a waiter costs no allocation of its own.
pub(crate) struct Inbox<T>(Rc<Cell<Delivery<T>>>);

/// What actix has delivered into an [`Inbox`].
#[derive(Default)]
pub(crate) enum Delivery<T> {
    /// Nothing yet.
    #[default]
    Pending,
    /// The request came through `do_send`: nobody listens for its answer.
    Unheard,
    /// The sender of the answer.
    Sender(OneshotSender<T>),
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Self(Rc::new(Cell::new(Delivery::Pending)))
    }
}

impl<T> std::fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

impl<T> Inbox<T> {
    /// The answer that has actix deliver the request's sender here.
    pub(crate) fn reply(&self) -> Reply<T> {
        Reply(Answer::Later(Rc::clone(&self.0)))
    }

    /// What actix delivered since the last call.
    pub(crate) fn take(&self) -> Delivery<T> {
        self.0.take()
    }

    /// Sends the reply through the sender delivered here, if anyone listens.
    pub(crate) fn send(self, value: T) {
        if let Delivery::Sender(sender) = self.0.take() {
            // An error means the caller already left: nothing to do.
            let _ = sender.send(value);
        }
    }
}

/// How the bucket answers a message: now, or later, through a sender it keeps.
///
/// Actix delivers it to the caller as the message's `Result`; callers never see this
/// type.
pub struct Reply<T>(Answer<T>);

enum Answer<T> {
    Now(T),
    Later(Rc<Cell<Delivery<T>>>),
}

impl<T> Reply<T> {
    pub(crate) fn now(value: T) -> Self {
        Self(Answer::Now(value))
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Answer::Now(_) => "Reply(now)",
            Answer::Later(_) => "Reply(later)",
        })
    }
}

impl<A, M, T> MessageResponse<A, M> for Reply<T>
where
    A: Actor,
    M: Message<Result = T>,
    T: 'static,
{
    fn handle(self, _: &mut A::Context, tx: Option<OneshotSender<T>>) {
        match (self.0, tx) {
            (Answer::Now(value), Some(tx)) => {
                // An error means the caller already left: nothing to do.
                let _ = tx.send(value);
            }
            (Answer::Now(_), None) => {}
            (Answer::Later(inbox), Some(tx)) => inbox.set(Delivery::Sender(tx)),
            (Answer::Later(inbox), None) => inbox.set(Delivery::Unheard),
        }
    }
}
