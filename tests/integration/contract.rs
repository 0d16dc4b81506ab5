//! The contract suites, run against the memory adapters and the emulators.

use std::sync::Arc;
use std::time::Duration;

use payhooks::adapters::MemoryEventStore;
use payhooks::ports::{EventStore, Lock};
use payhooks_tests::Backend;
use payhooks_tests::backend::MAX_RECEIVE_COUNT;
use payhooks_tests::contract::{event_store, ledger, lock, queue};

macro_rules! event_store_contract {
    ($($name:ident),* $(,)?) => {
        mod event_store_on_memory {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                event_store::$name(Arc::new(MemoryEventStore::new()) as Arc<dyn EventStore>).await;
            })*
        }
        mod event_store_on_dynamodb_local {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                let Some(backend) = Backend::emulators(Duration::from_secs(30)).await else { return };
                event_store::$name(backend.store).await;
            })*
        }
    };
}

event_store_contract!(
    a_claim_creates_the_record_once_and_then_returns_it,
    concurrent_claims_create_exactly_one_record,
    marking_enqueued_moves_only_a_received_record,
    a_lease_keeps_other_workers_off_until_it_expires,
    concurrent_leases_are_granted_to_exactly_one_worker,
    a_finished_event_cannot_be_leased_again,
    a_released_lease_can_be_taken_at_once,
    leasing_an_unknown_event_reports_it_missing,
    only_one_delivery_takes_over_an_abandoned_event,
    conflicts_are_counted_on_the_record,
    stuck_lists_only_unfinished_events_older_than_asked_oldest_first,
    only_one_sweeper_requeues_a_stuck_event,
    only_a_failed_event_can_be_reopened,
    the_last_success_only_moves_forward,
    only_a_record_done_with_expires,
    failed_events_are_listed_until_reopened,
    an_event_out_of_attempts_is_given_up_once,
);

macro_rules! queue_contract {
    ($($name:ident),* $(,)?) => {
        mod queue_on_memory {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                let backend = Backend::memory(Duration::from_secs(30));
                queue::$name(backend.queue.as_ref()).await;
            })*
        }
        mod queue_on_moto_sqs {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                let Some(backend) = Backend::emulators(Duration::from_secs(30)).await else { return };
                queue::$name(backend.queue.as_ref()).await;
            })*
        }
    };
}

queue_contract!(
    a_sent_message_is_received_with_its_body_and_a_receive_count,
    a_received_message_stays_hidden_until_deleted,
    a_zero_visibility_change_redelivers_and_counts_the_receive,
    a_visibility_delay_hides_the_message_until_it_ends,
    a_batch_holds_up_to_ten_messages,
    the_depth_counts_waiting_and_in_flight_messages,
);

#[tokio::test]
async fn the_memory_queue_dead_letters_after_max_receives() {
    let backend = Backend::memory(Duration::from_secs(30));
    queue::a_message_received_too_often_moves_to_the_dead_letter_queue(
        backend.queue.as_ref(),
        backend.dead_letters.as_ref(),
        MAX_RECEIVE_COUNT,
    )
    .await;
}

#[tokio::test]
async fn moto_sqs_dead_letters_after_max_receives() {
    let Some(backend) = Backend::emulators(Duration::from_secs(30)).await else { return };
    queue::a_message_received_too_often_moves_to_the_dead_letter_queue(
        backend.queue.as_ref(),
        backend.dead_letters.as_ref(),
        MAX_RECEIVE_COUNT,
    )
    .await;
}

macro_rules! ledger_contract {
    ($($name:ident),* $(,)?) => {
        mod ledger_on_memory {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                ledger::$name(Arc::new(MemoryEventStore::new()) as Arc<dyn ledger::Books>).await;
            })*
        }
        mod ledger_on_dynamodb_local {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                let Some(books) = Backend::emulator_books().await else { return };
                ledger::$name(books).await;
            })*
        }
    };
}

ledger_contract!(
    an_effect_applies_once_and_completes_its_event,
    without_the_lease_nothing_changes,
    concurrent_commits_of_one_fact_apply_once,
    concurrent_grants_for_distinct_periods_add_up_exactly,
    a_trial_and_a_failed_payment_are_recorded_on_the_account,
    a_payment_is_written_only_over_the_version_read,
    a_balance_guard_and_flags_hold_on_the_balance_before_the_change,
    an_effect_without_an_account_records_payments_and_completes,
    an_effect_may_leave_its_event_for_a_second_one,
    at_the_same_provider_time_a_later_stage_wins,
    each_subscription_is_ordered_on_its_own,
    an_entitlement_commits_only_over_the_state_it_was_decided_from,
    a_checkpoint_is_kept_until_replaced_or_cleared,
);

macro_rules! lock_contract {
    ($($name:ident),* $(,)?) => {
        mod lock_on_memory {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                lock::$name(Arc::new(MemoryEventStore::new()) as Arc<dyn Lock>).await;
            })*
        }
        mod lock_on_dynamodb_local {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                let Some(locks) = Backend::emulator_locks().await else { return };
                lock::$name(locks).await;
            })*
        }
    };
}

lock_contract!(
    a_lock_keeps_others_out_until_its_lease_ends,
    concurrent_acquires_are_granted_to_exactly_one_owner,
    a_released_lock_can_be_taken_at_once_but_only_its_holder_releases_it,
    locks_with_different_names_are_independent,
);
