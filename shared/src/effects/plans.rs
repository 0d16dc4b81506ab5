//! What each plan (the provider's plan or price id) is worth in credits:
//! per paid period, once with the one trial, and per payment for a price
//! sold as a credit pack.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Plans(BTreeMap<String, Terms>);

/// A plan's worth: a bare number is its credits per paid period.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum Terms {
    PerPeriod(i64),
    Detailed(Detailed),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Detailed {
    /// Per paid period of a subscription.
    credits: Option<i64>,
    /// Once, with the account's one trial on this plan.
    #[serde(default)]
    trial_credits: i64,
    /// Per payment of this price outside any subscription (a credit pack).
    credits_per_payment: Option<i64>,
}

impl Terms {
    fn detailed(&self) -> Detailed {
        match self {
            Terms::PerPeriod(credits) => Detailed { credits: Some(*credits), ..Detailed::default() },
            Terms::Detailed(detailed) => detailed.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "plans must be a JSON object of plan id to whole credits per period, or to {{credits, trial_credits, credits_per_payment}}"
)]
pub struct InvalidPlans(#[source] serde_json::Error);

impl Plans {
    pub fn from_json(json: &str) -> Result<Self, InvalidPlans> {
        serde_json::from_str(json).map_err(InvalidPlans)
    }

    fn terms(&self, plan: &str) -> Option<Detailed> {
        self.0.get(plan).map(Terms::detailed)
    }

    /// Credits per paid period; `None` for a plan not configured for periods.
    pub fn credits(&self, plan: &str) -> Option<i64> {
        self.terms(plan)?.credits
    }

    /// Credits the one trial on `plan` grants (0 unless configured).
    pub fn trial_credits(&self, plan: &str) -> i64 {
        self.terms(plan).map_or(0, |terms| terms.trial_credits)
    }

    /// Credits per payment of `plan` outside a subscription (0 unless it is
    /// configured as a credit pack).
    pub fn payment_credits(&self, plan: &str) -> i64 {
        self.terms(plan).and_then(|terms| terms.credits_per_payment).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_a_number_per_period_or_its_terms() {
        let plans = Plans::from_json(
            r#"{"pro": 100, "team": {"credits": 300, "trial_credits": 20}, "pack": {"credits_per_payment": 500}}"#,
        )
        .unwrap();
        assert_eq!((plans.credits("pro"), plans.trial_credits("pro"), plans.payment_credits("pro")), (Some(100), 0, 0));
        assert_eq!((plans.credits("team"), plans.trial_credits("team")), (Some(300), 20));
        assert_eq!((plans.credits("pack"), plans.payment_credits("pack")), (None, 500));
        assert_eq!(
            (plans.credits("other"), plans.trial_credits("other"), plans.payment_credits("other")),
            (None, 0, 0)
        );
    }

    #[test]
    fn a_misspelt_term_or_a_fraction_is_refused() {
        assert!(Plans::from_json(r#"{"team": {"credit": 300}}"#).is_err());
        assert!(Plans::from_json(r#"{"pro": 1.5}"#).is_err());
        assert!(Plans::from_json(r#"["pro"]"#).is_err());
    }
}
