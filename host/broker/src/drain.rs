//! A wake-up for producers that pause until a consumer has caught up (a
//! slow MQTT subscriber, the metadata writer): the waiter registers, says
//! it waits, and looks at the consumer's progress; the consumer, having
//! made progress, looks whether anyone waits. SeqCst on both sides makes
//! one of the two see the other, so no wake-up is lost and a consumer
//! nobody waits for pays one load.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Drain {
    waited_on: AtomicBool,
    notify: Notify,
}

impl Drain {
    /// Returns once `caught_up()` holds, looking again at each [`Drain::wake`].
    pub async fn wait(&self, caught_up: impl Fn() -> bool) {
        loop {
            let woken = self.notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            self.waited_on.store(true, SeqCst);
            if caught_up() {
                return;
            }
            woken.await;
        }
    }

    /// The consumer has caught up (after storing its progress with SeqCst):
    /// wakes whoever waits.
    pub fn wake(&self) {
        if self.waited_on.load(SeqCst) && self.waited_on.swap(false, SeqCst) {
            self.notify.notify_waiters();
        }
    }

    /// Wakes every waiter, whether or not the consumer caught up (they
    /// look again and decide).
    pub fn wake_all(&self) {
        self.waited_on.store(false, SeqCst);
        self.notify.notify_waiters();
    }
}
