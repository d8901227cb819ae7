//! One small blocking queue for every hand-off between threads (events to the owner, its answers,
//! HTTP jobs to the workers, NOTIFYs to send): a mutex, a condition variable and a `VecDeque`.
//! std's channels cost the router flash for three flavours of generic code per message type; this
//! costs one small instantiation each (the mipsel binary lost 35 kB with it: 1,208,940 -> 1,173,496 B).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    /// At most this many items wait; `push` refuses more.
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    /// No more items are taken: waiting takers return, pushes are refused.
    closed: bool,
}

impl<T> Queue<T> {
    pub fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity,
        }
    }

    /// No bound (each producer sends a bounded number of items: at most one pending event each).
    pub fn unbounded() -> Self {
        Self::new(usize::MAX)
    }

    /// Adds an item; gives it back when the queue is full or closed.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut s = self.state.lock().unwrap();
        if s.closed || s.items.len() >= self.capacity {
            return Err(item);
        }
        s.items.push_back(item);
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// The next item, waiting for one; `None` once the queue is closed.
    pub fn pop(&self) -> Option<T> {
        let mut s = self.state.lock().unwrap();
        loop {
            if let Some(item) = s.items.pop_front() {
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap();
        }
    }

    /// The next item, waiting at most `timeout`; `None` when none came (or the queue is closed).
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        loop {
            if let Some(item) = s.items.pop_front() {
                return Some(item);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if s.closed || left.is_zero() {
                return None;
            }
            s = self.ready.wait_timeout(s, left).unwrap().0;
        }
    }

    /// Wakes every taker; what is still queued is taken, then `pop` returns `None`.
    pub fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.ready.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().unwrap().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn items_come_out_in_order_and_a_full_queue_gives_them_back() {
        let q = Queue::new(2);
        assert_eq!(q.push(1), Ok(()));
        assert_eq!(q.push(2), Ok(()));
        assert_eq!(q.push(3), Err(3));
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop_timeout(Duration::ZERO), Some(2));
        assert_eq!(q.pop_timeout(Duration::from_millis(20)), None);
    }

    #[test]
    fn a_waiting_taker_gets_a_later_item_and_close_ends_the_wait() {
        let q = Arc::new(Queue::unbounded());
        let taker = {
            let q = q.clone();
            std::thread::spawn(move || (q.pop(), q.pop()))
        };
        std::thread::sleep(Duration::from_millis(20));
        q.push("late").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        q.close();
        assert_eq!(taker.join().unwrap(), (Some("late"), None));
        assert_eq!(q.push("after"), Err("after"), "closed");
    }
}
