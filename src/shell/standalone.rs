//! An actor on a thread of its own, for callers that are not in an actix system.

use actix::dev::channel;
use actix::{Actor, Addr, Context};

/// Starts the actor that `make` builds on a new thread named `name`, in an actix
/// `System` of its own, and returns its address at once.
///
/// The address works from any async runtime, or none. The thread ends when the actor
/// stops: after a shutdown, or once the last address is dropped and every waiter has
/// been answered.
///
/// # Panics
///
/// If the operating system cannot create a thread.
pub(crate) fn spawn<A, F>(name: &str, make: F) -> Addr<A>
where
    A: Actor<Context = Context<A>>,
    F: FnOnce() -> A + Send + 'static,
{
    // The mailbox exists before the thread does, so the address is ready at once.
    let (sender, receiver) = channel::channel(16);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            actix::System::new().block_on(async move {
                Context::with_receiver(receiver).into_future(make()).await;
            });
        })
        .expect("the operating system could not create a thread for the bucket");
    Addr::new(sender)
}
