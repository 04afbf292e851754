//! Schedule expressions as EventBridge writes them: `rate(<n> <unit>)` (minutes, hours, days)
//! and `cron(<6 fields>)`. Local mode runs rates on a timer; cron schedules run in AWS (and
//! locally when fired by hand).

use std::time::Duration;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Rate(Duration),
    /// The six fields: minutes, hours, day of month, month, day of week, year.
    Cron(Vec<String>),
}

impl Schedule {
    pub fn parse(expression: &str) -> Result<Self, String> {
        let inner = |prefix: &str| {
            expression
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::trim)
        };
        if let Some(rate) = inner("rate(") {
            return parse_rate(rate).ok_or_else(|| {
                format!("schedule {expression:?}: a rate is `rate(<n> minute[s]|hour[s]|day[s])` with n ≥ 1")
            });
        }
        if let Some(cron) = inner("cron(") {
            let fields: Vec<String> = cron.split_whitespace().map(str::to_owned).collect();
            if fields.len() != 6 {
                return Err(format!(
                    "schedule {expression:?}: a cron expression has 6 fields (minutes hours day-of-month month day-of-week year)"
                ));
            }
            return Ok(Schedule::Cron(fields));
        }
        Err(format!(
            "schedule {expression:?} must be `rate(..)` or `cron(..)` as EventBridge writes them"
        ))
    }

    /// The period of a rate schedule.
    pub fn period(&self) -> Option<Duration> {
        match self {
            Schedule::Rate(period) => Some(*period),
            Schedule::Cron(_) => None,
        }
    }
}

fn parse_rate(rate: &str) -> Option<Schedule> {
    let (count, unit) = rate.split_once(' ')?;
    let count: u64 = count.parse().ok().filter(|n| *n >= 1)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Schedule::Rate(Duration::from_secs(count.checked_mul(seconds)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_crons_parse_and_others_are_refused() {
        assert_eq!(
            Schedule::parse("rate(5 minutes)"),
            Ok(Schedule::Rate(Duration::from_secs(300)))
        );
        assert_eq!(
            Schedule::parse("rate(1 day)").ok().and_then(|s| s.period()),
            Some(Duration::from_secs(86_400))
        );
        assert!(matches!(Schedule::parse("cron(0 3 * * ? *)"), Ok(Schedule::Cron(f)) if f.len() == 6));
        for bad in [
            "rate(0 minutes)",
            "rate(5 weeks)",
            "cron(0 3 * *)",
            "every day",
            "rate(5minutes)",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
