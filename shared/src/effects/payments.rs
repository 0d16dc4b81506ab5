//! What refunds claw back: the arithmetic on one payment's record, kept free
//! of storage so it can be checked exhaustively.
//!
//! A payment's claw-back is proportional to the share of it refunded so far,
//! rounded down, and never more than it granted: after a full refund it is
//! exactly the grant, however the refunds were split.

use crate::ports::Payment;

/// Credits clawed back in total once `refunded` of `paid` has been refunded.
/// An unknown or zero amount paid counts any refund as a full one.
pub fn claw_target(granted: i64, paid: Option<i64>, refunded: i64) -> i64 {
    if granted <= 0 || refunded <= 0 {
        return 0;
    }
    match paid {
        Some(paid) if paid > 0 && refunded < paid => {
            let share = i128::from(granted) * i128::from(refunded) / i128::from(paid);
            i64::try_from(share).unwrap_or(granted).min(granted)
        }
        _ => granted,
    }
}

/// Brings `payment`'s claw-back up to what its refunds call for and returns
/// the credits newly due (0 while nothing is granted).
fn settle(payment: &mut Payment) -> i64 {
    let Some(granted) = payment.granted else {
        return 0;
    };
    let target = claw_target(granted, payment.paid_minor, payment.refunded_minor);
    let due = (target - payment.clawed_back).max(0);
    payment.clawed_back = payment.clawed_back.max(target);
    due
}

/// Records the grant a payment paid for; returns the credits due back for
/// refunds that arrived before it.
pub fn grant(payment: &mut Payment, credits: i64, paid: Option<i64>, currency: Option<String>) -> i64 {
    payment.granted = Some(credits);
    payment.paid_minor = paid.or(payment.paid_minor);
    payment.currency = currency.or(payment.currency.take());
    settle(payment)
}

/// Records a refund of `amount`; returns the credits due back.
pub fn refund(payment: &mut Payment, amount: i64) -> i64 {
    payment.refunded_minor = payment.refunded_minor.saturating_add(amount.max(0));
    settle(payment)
}

/// Takes back a refund of `amount` that failed or was cancelled; returns
/// the credits due back to the account: what its claw-back took beyond
/// what the refunds left call for, less any part the balance never gave.
pub fn unrefund(payment: &mut Payment, amount: i64) -> i64 {
    payment.refunded_minor = payment.refunded_minor.saturating_sub(amount.max(0)).max(0);
    let Some(granted) = payment.granted else {
        return 0;
    };
    let target = claw_target(granted, payment.paid_minor, payment.refunded_minor);
    let over = (payment.clawed_back - target).max(0);
    payment.clawed_back -= over;
    let never_given = over.min(payment.unclawed);
    payment.unclawed -= never_given;
    over - never_given
}

/// Folds `other` (refunds recorded under another id of the same payment
/// before the two were linked) into `payment`; returns the credits due back.
pub fn merge(payment: &mut Payment, other: &Payment) -> i64 {
    payment.refunded_minor = payment.refunded_minor.saturating_add(other.refunded_minor);
    if payment.account.is_empty() {
        payment.account.clone_from(&other.account);
    }
    settle(payment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn claw_backs_are_proportional_and_rounded_down() {
        assert_eq!(claw_target(100, Some(2000), 500), 25);
        assert_eq!(claw_target(100, Some(3000), 1000), 33);
        assert_eq!(claw_target(100, Some(2000), 2000), 100);
        assert_eq!(claw_target(100, Some(2000), 5000), 100);
        assert_eq!(claw_target(100, None, 1), 100);
        assert_eq!(claw_target(0, Some(2000), 2000), 0);
    }

    #[test]
    fn a_failed_refund_gives_back_what_it_took_and_no_more() {
        let mut payment = Payment::default();
        grant(&mut payment, 100, Some(3000), None);
        assert_eq!(refund(&mut payment, 1000), 33);
        assert_eq!(refund(&mut payment, 1000), 33);
        assert_eq!(unrefund(&mut payment, 1000), 33);
        assert_eq!((payment.refunded_minor, payment.clawed_back), (1000, 33));
        // What the balance never gave is not given back.
        payment.unclawed = 20;
        assert_eq!(unrefund(&mut payment, 1000), 13);
        assert_eq!((payment.clawed_back, payment.unclawed), (0, 0));
        // A refund that never counted gives nothing.
        assert_eq!(unrefund(&mut payment, 1000), 0);
    }

    #[test]
    fn a_refund_before_its_grant_is_settled_by_the_grant() {
        let mut payment = Payment::default();
        assert_eq!(refund(&mut payment, 1000), 0);
        assert_eq!(grant(&mut payment, 100, Some(2000), None), 50);
        assert_eq!(refund(&mut payment, 1000), 50);
        assert_eq!(payment.clawed_back, 100);
    }

    proptest! {
        /// However a payment is refunded in parts, the claw-backs add up to
        /// the proportional total and never exceed the grant.
        #[test]
        fn split_refunds_never_claw_back_more_than_was_granted(
            granted in 0i64..1_000_000,
            paid in 1i64..10_000_000,
            parts in proptest::collection::vec(0i64..5_000_000, 1..12),
            refund_first in any::<bool>(),
        ) {
            let mut payment = Payment::default();
            let mut clawed = 0;
            if !refund_first {
                clawed += grant(&mut payment, granted, Some(paid), None);
            }
            for part in &parts {
                clawed += refund(&mut payment, *part);
            }
            if refund_first {
                clawed += grant(&mut payment, granted, Some(paid), None);
            }
            let refunded: i64 = parts.iter().sum();
            prop_assert!(clawed <= granted);
            prop_assert_eq!(clawed, claw_target(granted, Some(paid), refunded));
            prop_assert_eq!(clawed, payment.clawed_back);
        }

        /// However some of its refunds later fail, a payment's claw-backs
        /// less what was given back are what the refunds left call for.
        #[test]
        fn failed_refunds_give_back_exactly_what_the_rest_no_longer_call_for(
            granted in 0i64..1_000_000,
            paid in 1i64..10_000_000,
            parts in proptest::collection::vec((0i64..5_000_000, any::<bool>()), 1..12),
        ) {
            let mut payment = Payment::default();
            let mut net = grant(&mut payment, granted, Some(paid), None);
            for (part, _) in &parts {
                net += refund(&mut payment, *part);
            }
            for (part, fails) in &parts {
                if *fails {
                    net -= unrefund(&mut payment, *part);
                }
            }
            let standing: i64 = parts.iter().filter(|(_, fails)| !fails).map(|(part, _)| part).sum();
            prop_assert_eq!(net, claw_target(granted, Some(paid), standing));
            prop_assert_eq!(net, payment.clawed_back);
        }
    }
}
