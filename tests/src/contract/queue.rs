//! What every [`Queue`] must do (the subset of SQS semantics payhooks relies on).

use std::collections::BTreeSet;
use std::time::Duration;

use payhooks::ports::Queue;

/// The queue under test has a visibility timeout of at least a few seconds;
/// its dead-letter queue takes messages after `max_receive_count` receives.
pub async fn a_sent_message_is_received_with_its_body_and_a_receive_count(queue: &dyn Queue) {
    let id = queue.send(r#"{"provider":"stripe","event_id":"evt_1"}"#).await.expect("send");
    assert!(!id.is_empty());
    let batch = queue.receive(10, Duration::from_secs(1)).await.expect("receive");
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].body, r#"{"provider":"stripe","event_id":"evt_1"}"#);
    assert_eq!(batch[0].message_id, id);
    assert_eq!(batch[0].receive_count, 1);
    assert!(!batch[0].receipt.is_empty());
}

pub async fn a_received_message_stays_hidden_until_deleted(queue: &dyn Queue) {
    queue.send("one").await.expect("send");
    let batch = queue.receive(10, Duration::from_secs(1)).await.expect("receive");
    assert_eq!(batch.len(), 1);
    assert!(queue.receive(10, Duration::ZERO).await.expect("receive").is_empty(), "in flight, so hidden");
    queue.delete(&batch[0].receipt).await.expect("delete");
    queue.change_visibility(&batch[0].receipt, Duration::ZERO).await.ok();
    assert!(queue.receive(10, Duration::ZERO).await.expect("receive").is_empty(), "deleted, so gone");
}

pub async fn a_zero_visibility_change_redelivers_and_counts_the_receive(queue: &dyn Queue) {
    queue.send("retry me").await.expect("send");
    let first = queue.receive(1, Duration::from_secs(1)).await.expect("receive");
    queue.change_visibility(&first[0].receipt, Duration::ZERO).await.expect("change visibility");
    let second = queue.receive(1, Duration::from_secs(1)).await.expect("receive");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt, first[0].receipt, "each receive has its own receipt");
}

pub async fn a_visibility_delay_hides_the_message_until_it_ends(queue: &dyn Queue) {
    queue.send("later").await.expect("send");
    let first = queue.receive(1, Duration::from_secs(1)).await.expect("receive");
    queue.change_visibility(&first[0].receipt, Duration::from_secs(2)).await.expect("change visibility");
    assert!(queue.receive(1, Duration::ZERO).await.expect("receive").is_empty());
    let again = queue.receive(1, Duration::from_secs(5)).await.expect("receive");
    assert_eq!(again.len(), 1, "visible again once the delay ends");
}

pub async fn a_batch_holds_up_to_ten_messages(queue: &dyn Queue) {
    let mut sent = BTreeSet::new();
    for i in 0..12 {
        queue.send(&format!("m{i}")).await.expect("send");
        sent.insert(format!("m{i}"));
    }
    let mut received = BTreeSet::new();
    for _ in 0..10 {
        let batch = queue.receive(10, Duration::from_secs(1)).await.expect("receive");
        assert!(batch.len() <= 10);
        for delivery in batch {
            queue.delete(&delivery.receipt).await.expect("delete");
            received.insert(delivery.body);
        }
        if received.len() == sent.len() {
            break;
        }
    }
    assert_eq!(received, sent);
}

pub async fn a_message_received_too_often_moves_to_the_dead_letter_queue(
    queue: &dyn Queue,
    dead_letters: &dyn Queue,
    max_receive_count: u32,
) {
    queue.send("poison").await.expect("send");
    for attempt in 1..=max_receive_count {
        let batch = queue.receive(1, Duration::from_secs(1)).await.expect("receive");
        assert_eq!(batch.len(), 1, "receive {attempt} of {max_receive_count}");
        queue.change_visibility(&batch[0].receipt, Duration::ZERO).await.expect("change visibility");
    }
    assert!(queue.receive(1, Duration::from_secs(1)).await.expect("receive").is_empty());
    let dead = dead_letters.receive(1, Duration::from_secs(1)).await.expect("receive");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
}

pub async fn the_depth_counts_waiting_and_in_flight_messages(queue: &dyn Queue) {
    for body in ["a", "b", "c"] {
        queue.send(body).await.expect("send");
    }
    let depth = queue.counts().await.expect("counts");
    assert_eq!((depth.visible, depth.in_flight), (3, 0));
    let batch = queue.receive(1, Duration::from_secs(1)).await.expect("receive");
    assert_eq!(batch.len(), 1);
    let depth = queue.counts().await.expect("counts");
    assert_eq!((depth.visible, depth.in_flight), (2, 1));
}
