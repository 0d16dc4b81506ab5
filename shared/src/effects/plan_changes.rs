//! What a plan change mid-period is worth once it is paid for: the new
//! plan's credits for the time left, less the old plan's for the same time
//! (`prorate`), the whole difference (`full`), or nothing (`none`). A
//! downgrade gives nothing back and takes nothing: its lower plan starts
//! with the next period's payment.

use crate::event::Proration;

use super::Plans;

/// How a plan change paid for mid-period tops the period up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlanChanges {
    /// In proportion to the time left in the period, as the provider
    /// charged for it.
    #[default]
    Prorate,
    /// The new plan's whole difference, however little time is left.
    Full,
    /// Nothing until the next period.
    None,
}

impl std::str::FromStr for PlanChanges {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "prorate" => Ok(Self::Prorate),
            "full" => Ok(Self::Full),
            "none" => Ok(Self::None),
            other => Err(format!("{other:?} is not prorate, full or none")),
        }
    }
}

/// The top-up needs the length of the subscription's period, which no
/// event payhooks holds has stated yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodUnknown;

impl PlanChanges {
    /// Whether `prorations` top their period up at all: more time charged
    /// at plans worth credits than credited back. Known without the
    /// period's length, which only scales the sum.
    pub fn may_top_up(self, prorations: &[Proration], plans: &Plans) -> bool {
        match self {
            PlanChanges::None => false,
            PlanChanges::Full => prorations.iter().map(|p| signed(plans, p)).sum::<i64>() > 0,
            PlanChanges::Prorate => weighted(prorations, plans, None) > 0,
        }
    }

    /// The credits `prorations` add to the period they fall in, whose
    /// length is `period_secs` where known. Plans not configured for
    /// periods (add-ons, seats) are worth nothing.
    pub fn top_up(
        self,
        prorations: &[Proration],
        plans: &Plans,
        period_secs: Option<i64>,
    ) -> Result<i64, PeriodUnknown> {
        if !self.may_top_up(prorations, plans) {
            return Ok(0);
        }
        let total = match self {
            PlanChanges::None => 0,
            PlanChanges::Full => prorations.iter().map(|p| signed(plans, p)).sum(),
            PlanChanges::Prorate => {
                let period = period_secs.filter(|secs| *secs > 0).ok_or(PeriodUnknown)?;
                let sum = weighted(prorations, plans, Some(period));
                i64::try_from(sum.div_euclid(i128::from(period))).unwrap_or(0)
            }
        };
        Ok(total.max(0))
    }
}

/// Σ ± credits × seconds covered (each at most `period` long).
fn weighted(prorations: &[Proration], plans: &Plans, period: Option<i64>) -> i128 {
    prorations
        .iter()
        .map(|p| {
            let secs = (p.period.end - p.period.start).whole_seconds().clamp(0, period.unwrap_or(i64::MAX));
            i128::from(signed(plans, p)) * i128::from(secs)
        })
        .sum()
}

/// A line's plan credits: negative for unused time given back.
fn signed(plans: &Plans, proration: &Proration) -> i64 {
    if proration.credit { -worth(plans, proration) } else { worth(plans, proration) }
}

fn worth(plans: &Plans, proration: &Proration) -> i64 {
    plans.credits(&proration.plan).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::event::Period;

    const DAY: i64 = 86_400;

    fn line(plan: &str, from_day: i64, credit: bool) -> Proration {
        let at = |day: i64| OffsetDateTime::from_unix_timestamp(1_766_592_000 + day * DAY).unwrap();
        Proration { plan: plan.to_owned(), period: Period { start: at(from_day), end: at(30) }, credit, share: None }
    }

    fn plans() -> Plans {
        Plans::from_json(r#"{"pro": 100, "team": 250, "seat": {"credits_per_payment": 5}}"#).unwrap()
    }

    #[test]
    fn an_upgrade_halfway_tops_up_half_the_difference() {
        let upgrade = [line("pro", 15, true), line("team", 15, false)];
        let month = Some(30 * DAY);
        assert_eq!(PlanChanges::Prorate.top_up(&upgrade, &plans(), month), Ok(75));
        assert_eq!(PlanChanges::Full.top_up(&upgrade, &plans(), month), Ok(150));
        assert_eq!(PlanChanges::None.top_up(&upgrade, &plans(), month), Ok(0));
        // A third of the period left: floor(150 / 3).
        let late = [line("pro", 20, true), line("team", 20, false)];
        assert_eq!(PlanChanges::Prorate.top_up(&late, &plans(), month), Ok(50));
    }

    #[test]
    fn a_downgrade_waits_for_the_next_period() {
        let downgrade = [line("team", 10, true), line("pro", 10, false)];
        for mode in [PlanChanges::Prorate, PlanChanges::Full, PlanChanges::None] {
            assert_eq!(mode.top_up(&downgrade, &plans(), Some(30 * DAY)), Ok(0), "{mode:?}");
        }
    }

    #[test]
    fn two_changes_in_one_period_are_each_credited_for_their_time() {
        // Up to team on day 10, back to pro on day 20: team for ten days.
        let lines = [line("pro", 10, true), line("team", 10, false), line("team", 20, true), line("pro", 20, false)];
        assert_eq!(PlanChanges::Prorate.top_up(&lines, &plans(), Some(30 * DAY)), Ok(50));
        assert_eq!(PlanChanges::Full.top_up(&lines, &plans(), Some(30 * DAY)), Ok(0));
    }

    #[test]
    fn prorating_needs_the_period_only_when_something_is_due() {
        let upgrade = [line("pro", 15, true), line("team", 15, false)];
        assert_eq!(PlanChanges::Prorate.top_up(&upgrade, &plans(), None), Err(PeriodUnknown));
        assert_eq!(PlanChanges::Full.top_up(&upgrade, &plans(), None), Ok(150));
        let downgrade = [line("team", 10, true), line("pro", 10, false)];
        assert_eq!(PlanChanges::Prorate.top_up(&downgrade, &plans(), None), Ok(0));
        let add_on = [line("seat", 5, false)];
        assert_eq!(PlanChanges::Prorate.top_up(&add_on, &plans(), None), Ok(0), "not a plan with periods");
    }
}
