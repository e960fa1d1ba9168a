use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::Stream;

use crate::{AcquireError, BucketHandle, Granted};

type PendingGrant = BoxFuture<'static, Result<Granted, AcquireError>>;

/// A stream that lets each item of an inner stream through only once its cost is
/// acquired from a bucket, in order. Built by [`BucketHandle::throttle`].
///
/// It ends when the inner stream ends. An item whose acquire fails (a stopped bucket, an
/// invalid cost) comes out as `Err`, in its place, instead of the item: the stream never
/// hangs on a bucket that is gone.
///
/// ```
/// use std::time::Duration;
/// use actix::Actor;
/// use actix_leaky_bucket::{BucketActor, BucketConfig, BucketHandle};
/// use futures::StreamExt;
///
/// #[actix_rt::main]
/// async fn main() {
///     tokio::time::pause(); // this doctest runs on paused time: waits take no wall time
///     let start = tokio::time::Instant::now();
///     let config = BucketConfig::new(2.0, Duration::from_secs(1)).unwrap();
///     let bucket = BucketHandle::from(BucketActor::new(config).start());
///
///     let words = futures::stream::iter(["a", "bb", "c"]);
///     let paced: Vec<_> = bucket.throttle(words, |word| word.len() as f64).collect().await;
///     assert_eq!(paced, [Ok("a"), Ok("bb"), Ok("c")]);
///     assert_eq!(start.elapsed(), Duration::from_millis(1000)); // 1 + 2 + 1 = 4 units
/// }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Throttled<S: Stream, F> {
    inner: Pin<Box<S>>,
    bucket: BucketHandle,
    cost: F,
    /// The item waiting for its grant.
    pending: Option<(S::Item, PendingGrant)>,
    inner_ended: bool,
}

impl<S: Stream, F> Throttled<S, F> {
    /// Throttles `stream` through `bucket`, each item costing `cost(&item)`.
    pub fn new(stream: S, bucket: BucketHandle, cost: F) -> Self {
        Self {
            inner: Box::pin(stream),
            bucket,
            cost,
            pending: None,
            inner_ended: false,
        }
    }
}

// No field is structurally pinned: the inner stream is boxed and the rest is never pinned.
impl<S: Stream, F> Unpin for Throttled<S, F> {}

impl<S, F> Stream for Throttled<S, F>
where
    S: Stream,
    F: FnMut(&S::Item) -> f64,
{
    type Item = Result<S::Item, AcquireError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some((item, mut acquire)) = this.pending.take() {
                return match acquire.as_mut().poll(cx) {
                    Poll::Ready(granted) => Poll::Ready(Some(granted.map(|_| item))),
                    Poll::Pending => {
                        this.pending = Some((item, acquire));
                        Poll::Pending
                    }
                };
            }
            if this.inner_ended {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    let amount = (this.cost)(&item);
                    let bucket = this.bucket.clone();
                    let acquire = Box::pin(async move { bucket.acquire(amount).await });
                    this.pending = Some((item, acquire));
                }
                Poll::Ready(None) => this.inner_ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = usize::from(self.pending.is_some());
        let (low, high) = if self.inner_ended {
            (0, Some(0))
        } else {
            self.inner.size_hint()
        };
        (
            low.saturating_add(pending),
            high.and_then(|high| high.checked_add(pending)),
        )
    }
}

impl<S: Stream, F> std::fmt::Debug for Throttled<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttled")
            .field("bucket", &self.bucket)
            .field("pending", &self.pending.is_some())
            .field("inner_ended", &self.inner_ended)
            .finish_non_exhaustive()
    }
}
