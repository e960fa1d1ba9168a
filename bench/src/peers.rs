//! The trivial actix actor that is the round-trip reference: what any actor pays for a
//! message and its answer.

use actix::{Actor, Context, Handler, Message};

/// A message that carries nothing and is answered with a number, inline.
#[derive(Debug, Clone, Copy)]
pub struct Ping;

impl Message for Ping {
    type Result = u64;
}

/// The trivial actor: answers every [`Ping`] at once. Its mailbox is unbounded, as the
/// bucket's is, so both pay the same mailbox.
#[derive(Debug, Default)]
pub struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(0);
    }
}

impl Handler<Ping> for Echo {
    type Result = u64;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        1
    }
}
