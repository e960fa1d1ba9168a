//! Replies that can be sent after the handler returns, by the actor itself.
//!
//! A handler returning `ResponseFuture` hands actix's reply sender to a separate task,
//! where a caller that gives up cannot be seen. Instead the bucket keeps that sender in
//! its own queue: the handler returns [`Reply::Later`] with an empty [`ReplySlot`], and
//! actix fills the slot synchronously, right after the handler, before any other message.

use std::cell::Cell;
use std::rc::Rc;
use std::task::Context;

use actix::dev::{MessageResponse, OneshotSender};
use actix::{Actor, Message};

/// Where the reply to one request goes, once actix has handed over its sender.
pub(crate) struct ReplySlot<T>(Rc<Cell<Option<OneshotSender<T>>>>);

impl<T> Clone for ReplySlot<T> {
    fn clone(&self) -> Self {
        Self(Rc::clone(&self.0))
    }
}

impl<T> ReplySlot<T> {
    pub(crate) fn empty() -> Self {
        Self(Rc::new(Cell::new(None)))
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

/// How the bucket answers a message: now, or later through a slot it keeps in its queue.
///
/// Actix delivers it to the caller as the message's `Result`; callers never see this type.
pub struct Reply<T>(Answer<T>);

enum Answer<T> {
    Now(T),
    Later(ReplySlot<T>),
}

impl<T> Reply<T> {
    pub(crate) fn now(value: T) -> Self {
        Self(Answer::Now(value))
    }

    pub(crate) fn later(slot: &ReplySlot<T>) -> Self {
        Self(Answer::Later(slot.clone()))
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
            (Answer::Later(slot), tx) => slot.0.set(tx),
        }
    }
}
