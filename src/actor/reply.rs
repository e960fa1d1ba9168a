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
use std::sync::Arc;
use std::task::{Context, Waker};

use actix::dev::{MessageResponse, OneshotSender};
use actix::{Actor, Message};
use log::debug;

use crate::core::{Departures, Grant, Replies};
use crate::wake::Clock;
use crate::{AcquireError, Granted};

/// The answer to an [`Acquire`](crate::Acquire).
pub(crate) type AcquireResult = Result<Granted, AcquireError>;

/// The reply sender of a caller who waits; `None` once answered.
pub(crate) type Waiting = Option<OneshotSender<AcquireResult>>;

/// Answers waiting callers through their reply senders, with grant instants on tokio's
/// clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Courier {
    pub(crate) clock: Clock,
}

impl Replies for Courier {
    type Caller = Waiting;

    fn is_gone(&self, caller: &Waiting) -> bool {
        caller.as_ref().is_none_or(OneshotSender::is_closed)
    }

    fn send(&self, caller: &mut Waiting, answer: Result<Grant, AcquireError>) -> bool {
        match &answer {
            Ok(grant) => debug!("granted {} after {:?}", grant.amount, grant.waited),
            Err(error) => debug!("{error}"),
        }
        let answer = answer.map(|grant| Granted {
            amount: grant.amount,
            waited: grant.waited,
            granted_at: self.clock.instant(grant.at),
        });
        let heard = caller
            .take()
            .is_some_and(|sender| sender.send(answer).is_ok());
        if !heard {
            debug!("nobody heard that answer: its caller had given up");
        }
        heard
    }

    fn watch(&self, caller: &mut Waiting, departures: &Arc<Departures>) {
        let Some(sender) = caller else {
            return;
        };
        let waker = Waker::from(Arc::clone(departures));
        if sender
            .poll_closed(&mut Context::from_waker(&waker))
            .is_ready()
        {
            waker.wake(); // it has already left
        }
    }
}

/// Registers `task` to be woken when the caller behind `caller` gives up; true if it has.
pub(crate) fn poll_gone(caller: &mut Waiting, task: &mut Context<'_>) -> bool {
    caller
        .as_mut()
        .is_none_or(|sender| sender.poll_closed(task).is_ready())
}

/// Where actix delivers the reply sender of a request whose [`Reply`] comes later.
///
/// One inbox serves any number of requests in turn, as long as each delivery is
/// collected before the next request is handled: a bucket keeps one for all its waiters,
/// so that a waiter costs no allocation of its own.
pub(crate) struct Inbox<T>(Rc<Cell<Delivery<T>>>);

/// `None` until actix delivers; then the sender, or `None` if nobody listens (the
/// request came through `do_send`).
pub(crate) type Delivery<T> = Option<Option<OneshotSender<T>>>;

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Self(Rc::new(Cell::new(None)))
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
        if let Some(Some(sender)) = self.0.take() {
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
            (Answer::Later(inbox), tx) => inbox.set(Some(tx)),
        }
    }
}
