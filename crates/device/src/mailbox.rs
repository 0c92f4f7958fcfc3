//! A bounded single-consumer buffer that never blocks its producer.
//!
//! The connection task pushes received messages into one mailbox per
//! stream. When a mailbox is full the **oldest** buffered item is discarded
//! to make room for the new one and a counter goes up: a consumer that falls
//! behind sees the freshest data and can tell how much it missed, while the
//! connection and every other stream carry on at full speed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_util::Stream;

struct State<T> {
    queue: VecDeque<T>,
    capacity: usize,
    dropped: u64,
    waker: Option<Waker>,
    sender_gone: bool,
    receiver_gone: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What happened to a pushed item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Buffered.
    Delivered,
    /// Buffered after discarding the oldest item.
    DisplacedOldest,
    /// The receiver was dropped; the item was discarded.
    ReceiverGone,
}

/// The producer side.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The consumer side, a [`Stream`] that ends after the sender is dropped
/// and the buffer is drained.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A mailbox holding at most `capacity` items (at least 1).
pub(crate) fn mailbox<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            waker: None,
            sender_gone: false,
            receiver_gone: false,
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Buffers `item`, discarding the oldest item when full.
    pub(crate) fn push(&self, item: T) -> Pushed {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Pushed::ReceiverGone;
        }
        let outcome = if state.queue.len() >= state.capacity {
            state.queue.pop_front();
            state.dropped += 1;
            Pushed::DisplacedOldest
        } else {
            Pushed::Delivered
        };
        state.queue.push_back(item);
        let waker = state.waker.take();
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
        outcome
    }

    /// True once the receiver has been dropped.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().receiver_gone
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.sender_gone = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// How many items were discarded because the buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// Takes the next item without waiting.
    #[cfg(test)]
    pub(crate) fn try_next(&self) -> Option<T> {
        self.shared.lock().queue.pop_front()
    }
}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.shared.lock();
        if let Some(item) = state.queue.pop_front() {
            // An idle client's streams keep no storage: most hold nothing
            // most of the time, and every client has several.
            if state.queue.is_empty() {
                state.queue = VecDeque::new();
            }
            return Poll::Ready(Some(item));
        }
        if state.sender_gone {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        state.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn items_arrive_in_order_and_the_stream_ends_when_the_sender_goes() {
        let (tx, mut rx) = mailbox(8);
        assert_eq!(tx.push(1), Pushed::Delivered);
        assert_eq!(tx.push(2), Pushed::Delivered);
        drop(tx);
        assert_eq!(rx.next().await, Some(1));
        assert_eq!(rx.next().await, Some(2));
        assert_eq!(
            rx.shared.lock().queue.capacity(),
            0,
            "emptied, it keeps no storage"
        );
        assert_eq!(rx.next().await, None);
    }

    #[test]
    fn a_full_mailbox_discards_the_oldest_item_and_counts_it() {
        let (tx, rx) = mailbox(2);
        tx.push(1);
        tx.push(2);
        assert_eq!(tx.push(3), Pushed::DisplacedOldest);
        assert_eq!(rx.dropped(), 1);
        assert_eq!(rx.try_next(), Some(2));
        assert_eq!(rx.try_next(), Some(3));
        assert_eq!(rx.try_next(), None);
    }

    #[test]
    fn pushing_to_a_dropped_receiver_reports_it_and_buffers_nothing() {
        let (tx, rx) = mailbox::<u8>(2);
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.push(1), Pushed::ReceiverGone);
    }

    #[tokio::test]
    async fn a_waiting_consumer_is_woken_by_a_push() {
        let (tx, mut rx) = mailbox(1);
        let consumer = tokio::spawn(async move { rx.next().await });
        tokio::task::yield_now().await;
        tx.push(7u32);
        assert_eq!(consumer.await.unwrap(), Some(7));
    }
}
