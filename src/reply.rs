//! Replies that can be sent after the handler returns, by the actor itself.
//!
//! A handler returning `ResponseFuture` hands actix's reply sender to a separate task,
//! where a caller that gives up cannot be seen. Instead the bucket keeps that sender in
//! its own queue: the handler returns a [`Reply`] to come later, through an [`Inbox`];
//! actix delivers the sender into it synchronously, right after the handler and before
//! any other message, and the bucket moves it from there into a [`ReplySlot`] beside the
//! request.

use std::cell::Cell;
use std::rc::Rc;
use std::task::Context;

use actix::dev::{MessageResponse, OneshotSender};
use actix::{Actor, Message};

/// The reply sender of one request, once actix has delivered it: empty when nobody
/// listens (the request came through `do_send`) or once the reply is sent.
pub(crate) struct ReplySlot<T>(Cell<Option<OneshotSender<T>>>);

impl<T> ReplySlot<T> {
    pub(crate) fn empty() -> Self {
        Self(Cell::new(None))
    }

    /// Whether nobody waits for this reply any more: the caller dropped its request, or
    /// sent it with `do_send`.
    pub(crate) fn is_abandoned(&self) -> bool {
        let sender = self.0.take();
        let abandoned = sender.as_ref().map_or(true, OneshotSender::is_closed);
        self.0.set(sender);
        abandoned
    }

    /// Registers `cx` to be woken when the caller gives up; true if it already has.
    pub(crate) fn poll_abandoned(&self, cx: &mut Context<'_>) -> bool {
        let mut sender = self.0.take();
        let abandoned = sender
            .as_mut()
            .map_or(true, |sender| sender.poll_closed(cx).is_ready());
        self.0.set(sender);
        abandoned
    }

    /// Sends the reply; gives it back if nobody is listening.
    pub(crate) fn send(&self, value: T) -> Result<(), T> {
        match self.0.take() {
            Some(sender) => sender.send(value),
            None => Err(value),
        }
    }
}

/// Where actix delivers the reply sender of a request whose [`Reply`] comes later.
///
/// One inbox serves any number of requests in turn, as long as each delivery is
/// collected before the next request is handled: the wait queue keeps one for all its
/// waiters, so that a waiter costs no allocation of its own.
pub(crate) struct Inbox<T>(Rc<Cell<Delivery<T>>>);

/// `None` until actix delivers; then the sender, if anyone listens.
type Delivery<T> = Option<Option<OneshotSender<T>>>;

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Self(Rc::new(Cell::new(None)))
    }
}

impl<T> Inbox<T> {
    /// The answer that has actix deliver the request's sender here.
    pub(crate) fn reply(&self) -> Reply<T> {
        Reply(Answer::Later(Rc::clone(&self.0)))
    }

    /// Moves the sender delivered since the last collection into `slot`; false if actix
    /// has delivered none yet.
    pub(crate) fn collect_into(&self, slot: &ReplySlot<T>) -> bool {
        match self.0.take() {
            Some(sender) => {
                slot.0.set(sender);
                true
            }
            None => false,
        }
    }

    /// Sends the reply through the sender delivered here, if anyone listens.
    pub(crate) fn send(self, value: T) {
        if let Some(Some(sender)) = self.0.take() {
            // An error means the caller already left: nothing to do.
            let _ = sender.send(value);
        }
    }
}

/// How the bucket answers a message: now, or later, through a slot it keeps.
///
/// Actix delivers it to the caller as the message's `Result`; callers never see this type.
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
            Answer::Now(_) => "Reply::Now",
            Answer::Later(_) => "Reply::Later",
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
