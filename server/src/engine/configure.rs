//! Configuration changes (`PATCH /admin/jackpots/{id}`). Name and status change
//! at once. The rules — contribution rate, reserve share, seed, maximum,
//! minimum bet, trigger mode — change the odds or the rate, so the running
//! cycle keeps the rules it opened under and the change applies from the next
//! cycle. Every change is recorded with who made it, why, and before/after.

use domain::jackpot::{Rules, RulesError, Status, TriggerMode};
use domain::money::{Amount, Rate};
use serde_json::json;
use sqlx::PgConnection;

use crate::audit::{self, Action, Actor, Entry};
use crate::db::jackpots::{self, Jackpot, LockedJackpot, NewChange};

/// What to change; `None` keeps the current setting.
#[derive(Debug, Clone, Default)]
pub struct JackpotEdit {
    pub name: Option<String>,
    pub status: Option<Status>,
    pub contribution_rate: Option<Rate>,
    pub reserve_share: Option<Rate>,
    pub seed: Option<Amount>,
    pub max_value: Option<Amount>,
    pub min_bet: Option<Amount>,
    pub trigger_mode: Option<TriggerMode>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no jackpot with this id")]
    JackpotNotFound,
    #[error("the edit changes nothing")]
    NothingToChange,
    #[error("{0}")]
    InvalidRules(RulesError),
}

/// A stored change.
#[derive(Debug, Clone)]
pub struct ChangeReceipt {
    pub change_id: i64,
    /// The configuration after the change.
    pub jackpot: Jackpot,
    pub running_cycle: i64,
    /// The running cycle's rules, which the change does not touch.
    pub running_rules: Rules,
    /// The first cycle under the new rules; `None` when the rules are unchanged.
    pub applies_from_cycle: Option<i64>,
}

/// Applies `edit` under the jackpot's lock, so it falls between two batches of
/// contributions and never inside one.
pub async fn configure(
    conn: &mut PgConnection,
    jackpot_id: &str,
    edit: &JackpotEdit,
    actor: &Actor,
    reason: &str,
) -> Result<Result<ChangeReceipt, ConfigError>, sqlx::Error> {
    let Some(LockedJackpot { jackpot: before, cycle, .. }) =
        jackpots::lock_with_cycles(conn, &[jackpot_id]).await?.pop()
    else {
        return Ok(Err(ConfigError::JackpotNotFound));
    };
    let current = before.rules;
    let rules = match Rules::new(
        edit.contribution_rate.unwrap_or(current.contribution_rate()),
        edit.reserve_share.unwrap_or(current.reserve_share()),
        edit.seed.unwrap_or(current.seed()),
        edit.max_value.unwrap_or(current.max_value()),
        edit.min_bet.unwrap_or(current.min_bet()),
        edit.trigger_mode.unwrap_or(current.trigger_mode()),
    ) {
        Ok(rules) => rules,
        Err(error) => return Ok(Err(ConfigError::InvalidRules(error))),
    };
    let after = Jackpot {
        name: edit.name.clone().unwrap_or_else(|| before.name.clone()),
        status: edit.status.unwrap_or(before.status),
        rules,
        ..before.clone()
    };
    if after == before {
        return Ok(Err(ConfigError::NothingToChange));
    }
    let applies_from_cycle = (after.rules != before.rules).then_some(cycle.cycle_number + 1);
    jackpots::update_config(conn, &after).await?;
    jackpots::bump_config_version(conn, jackpot_id).await?;
    let change = NewChange {
        jackpot_id,
        changed_by: &actor.key_id,
        reason,
        before: configuration(&before),
        after: configuration(&after),
        applies_from_cycle,
    };
    let change_id = jackpots::insert_change(conn, &change).await?;
    let entry = Entry {
        actor: actor.clone(),
        action: Action::ConfigChange,
        jackpot_id: Some(jackpot_id.to_owned()),
        before_micros: None,
        after_micros: None,
        detail: json!({
            "changeId": change_id,
            "reason": reason,
            "before": change.before,
            "after": change.after,
            "appliesFromCycle": applies_from_cycle,
        }),
    };
    audit::append(conn, &[entry]).await?;
    Ok(Ok(ChangeReceipt {
        change_id,
        jackpot: after,
        running_cycle: cycle.cycle_number,
        running_rules: cycle.rules,
        applies_from_cycle,
    }))
}

/// A configuration as the change record stores it (the API's field names).
pub(super) fn configuration(jackpot: &Jackpot) -> serde_json::Value {
    let rules = &jackpot.rules;
    json!({
        "name": jackpot.name,
        "status": jackpot.status,
        "contributionRatePpm": rules.contribution_rate().ppm(),
        "reserveSharePpm": rules.reserve_share().ppm(),
        "seed": rules.seed(),
        "maxValue": rules.max_value(),
        "minBet": rules.min_bet(),
        "triggerMode": rules.trigger_mode(),
    })
}
