//! A queue in memory with SQS's delivery semantics: a visibility timeout, a
//! receive count per message, and redrive to a dead-letter queue once a
//! message has been received `max_receive_count` times without being deleted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::ports::queue::{Delivery, Queue, QueueDepth, QueueError};

#[derive(Debug)]
struct Message {
    id: String,
    body: String,
    receive_count: u32,
    visible_at: Instant,
    receipt: Option<String>,
}

#[derive(Debug)]
struct Redrive {
    dead_letters: Arc<MemoryQueue>,
    max_receive_count: u32,
}

#[derive(Debug)]
pub struct MemoryQueue {
    messages: Mutex<Vec<Message>>,
    arrived: Notify,
    visibility_timeout: Duration,
    redrive: Option<Redrive>,
}

impl MemoryQueue {
    pub fn new(visibility_timeout: Duration) -> Self {
        Self { messages: Mutex::new(Vec::new()), arrived: Notify::new(), visibility_timeout, redrive: None }
    }

    /// Messages received `max_receive_count` times move to `dead_letters`
    /// on their next receive, as SQS's redrive policy does.
    pub fn with_dead_letters(mut self, dead_letters: Arc<MemoryQueue>, max_receive_count: u32) -> Self {
        self.redrive = Some(Redrive { dead_letters, max_receive_count });
        self
    }

    fn messages(&self) -> std::sync::MutexGuard<'_, Vec<Message>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Messages in the queue, visible or in flight.
    pub fn depth(&self) -> usize {
        self.messages().len()
    }

    fn push(&self, body: String, receive_count: u32) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.messages().push(Message {
            id: id.clone(),
            body,
            receive_count,
            visible_at: Instant::now(),
            receipt: None,
        });
        self.arrived.notify_waiters();
        id
    }

    fn take_visible(&self, max: usize) -> Vec<Delivery> {
        let now = Instant::now();
        let mut messages = self.messages();
        let mut taken = Vec::new();
        let mut index = 0;
        while index < messages.len() && taken.len() < max {
            if messages[index].visible_at > now {
                index += 1;
                continue;
            }
            if let Some(redrive) = &self.redrive
                && messages[index].receive_count >= redrive.max_receive_count
            {
                let moved = messages.remove(index);
                // SQS keeps the receive count when it moves a message.
                redrive.dead_letters.push(moved.body, moved.receive_count);
                continue;
            }
            let message = &mut messages[index];
            let receipt = uuid::Uuid::new_v4().to_string();
            message.receive_count += 1;
            message.visible_at = now + self.visibility_timeout;
            message.receipt = Some(receipt.clone());
            taken.push(Delivery {
                message_id: message.id.clone(),
                receipt,
                body: message.body.clone(),
                receive_count: message.receive_count,
            });
            index += 1;
        }
        taken
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        Ok(self.push(body.to_owned(), 0))
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            let taken = self.take_visible(max.clamp(1, 10) as usize);
            if !taken.is_empty() || Instant::now() >= deadline {
                return Ok(taken);
            }
            // Wake on a send, or poll again shortly for messages whose
            // visibility ends while waiting.
            let _ = tokio::time::timeout((deadline - Instant::now()).min(Duration::from_millis(50)), arrived).await;
        }
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        // Like SQS, deleting what is already gone is not an error.
        self.messages().retain(|m| m.receipt.as_deref() != Some(receipt));
        Ok(())
    }

    async fn counts(&self) -> Result<QueueDepth, QueueError> {
        let now = Instant::now();
        let messages = self.messages();
        let visible = messages.iter().filter(|m| m.visible_at <= now).count() as u64;
        Ok(QueueDepth { visible, in_flight: messages.len() as u64 - visible })
    }

    async fn change_visibility(&self, receipt: &str, hide_for: Duration) -> Result<(), QueueError> {
        let now = Instant::now();
        let mut messages = self.messages();
        let message = messages
            .iter_mut()
            .find(|m| m.receipt.as_deref() == Some(receipt) && m.visible_at > now)
            .ok_or(QueueError::StaleReceipt)?;
        message.visible_at = now + hide_for;
        drop(messages);
        if hide_for.is_zero() {
            self.arrived.notify_waiters();
        }
        Ok(())
    }
}
