//! When a message may go (DESIGN.md, "Schedule, quiet hours and the daily budget"): its
//! `not_before`, and the school's quiet hours and days in the school's time zone. Local times
//! are the time zone library's (chrono-tz, the IANA database), daylight-saving changes
//! included; nothing here adds hand-written offsets.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;

use super::message::{Priority, QueueMessage};

/// The furthest ahead a message may be scheduled: 35 days.
pub const MAX_SCHEDULE_SECONDS: i64 = 35 * 86_400;

/// Daily quiet hours, `20:00-07:30`: from the first time to the second, across midnight when
/// the second is earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// `HH:MM-HH:MM`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (start, end) =
            raw.split_once('-').ok_or_else(|| format!("expected HH:MM-HH:MM (such as 20:00-07:30), got {raw:?}"))?;
        let time = |part: &str| {
            NaiveTime::parse_from_str(part.trim(), "%H:%M")
                .map_err(|_| format!("expected HH:MM-HH:MM (such as 20:00-07:30), got {raw:?}"))
        };
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(format!("the start and the end are the same ({raw:?}): no quiet hours is an empty value"));
        }
        Ok(QuietHours { start, end })
    }

    /// Whether `time` (local) is inside.
    fn contains(&self, time: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start.format("%H:%M"), self.end.format("%H:%M"))
    }
}

/// Whole days without messages (`sat,sun`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuietDays(u8);

impl QuietDays {
    /// A comma-separated list of `mon tue wed thu fri sat sun` (any case); empty: none.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut days = 0u8;
        for part in raw.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let day = match part.to_ascii_lowercase().as_str() {
                "mon" => Weekday::Mon,
                "tue" => Weekday::Tue,
                "wed" => Weekday::Wed,
                "thu" => Weekday::Thu,
                "fri" => Weekday::Fri,
                "sat" => Weekday::Sat,
                "sun" => Weekday::Sun,
                other => return Err(format!("unknown day {other:?} (expected mon, tue, wed, thu, fri, sat, sun)")),
            };
            days |= 1 << day.num_days_from_monday();
        }
        if days == 0x7f {
            return Err("every day is quiet: no message could ever go".into());
        }
        Ok(QuietDays(days))
    }

    fn contains(&self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

/// The school's calendar: its time zone, quiet hours and days, and the morning spread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolCalendar {
    pub timezone: Tz,
    pub quiet_hours: Option<QuietHours>,
    pub quiet_days: QuietDays,
    /// A normal message held by quiet hours goes at their end plus up to this (uniform).
    pub spread_seconds: u32,
}

impl Default for SchoolCalendar {
    fn default() -> Self {
        SchoolCalendar {
            timezone: chrono_tz::Europe::Paris,
            quiet_hours: None,
            quiet_days: QuietDays::default(),
            spread_seconds: 600,
        }
    }
}

/// The first instant at or after `local` that exists in `tz` (a local time skipped by a
/// spring-forward change is moved on to the end of the gap; an ambiguous one, at a fall-back
/// change, is its earlier instant).
fn instant(tz: Tz, local: NaiveDateTime) -> i64 {
    let mut candidate = local;
    for _ in 0..(4 * 60) {
        match tz.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return t.timestamp(),
            LocalResult::Ambiguous(earlier, _) => return earlier.timestamp(),
            LocalResult::None => candidate += Duration::minutes(1),
        }
    }
    // No time zone skips four hours; read as UTC rather than loop.
    local.and_utc().timestamp()
}

impl SchoolCalendar {
    /// When the quiet time that `at` falls in ends (Unix seconds), or `None` when `at` is not
    /// quiet. Quiet days and quiet hours chain: Sunday quiet and `20:00-07:30` make Saturday
    /// 23:00 wait until Monday 07:30.
    pub fn quiet_until(&self, at: i64) -> Option<i64> {
        let mut t = at;
        // Each step ends one quiet stretch; a week of them is the most there can be.
        for _ in 0..16 {
            let local = self.timezone.timestamp_opt(t, 0).single()?.naive_local();
            if self.quiet_days.contains(local.weekday()) {
                let next_day: NaiveDate = local.date().succ_opt()?;
                t = instant(self.timezone, next_day.and_time(NaiveTime::MIN));
                continue;
            }
            match self.quiet_hours {
                Some(hours) if hours.contains(local.time()) => {
                    let end_day = if local.time() < hours.end { local.date() } else { local.date().succ_opt()? };
                    t = instant(self.timezone, end_day.and_time(hours.end));
                }
                _ => break,
            }
        }
        (t != at).then_some(t)
    }
}

/// Why a message waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    /// Its `not_before`.
    NotBefore,
    /// The school's quiet hours or days.
    QuietHours,
    /// The daily budget of distinct parents (Meta's limit).
    Budget,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::NotBefore => "not_before",
            HoldReason::QuietHours => "quiet_hours",
            HoldReason::Budget => "budget",
        }
    }
}

/// A message held until `until` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub until: i64,
    pub reason: HoldReason,
}

/// When `message` may go, if later than `now`: its `not_before`, then (for a normal message)
/// the end of the quiet time that instant falls in, plus `spread` (a stable draw in
/// `[0, 1)` per message, so that redeliveries agree).
pub fn time_hold(message: &QueueMessage, calendar: &SchoolCalendar, now: i64, spread: f64) -> Option<Hold> {
    let mut hold = message.not_before.filter(|at| *at > now).map(|until| Hold { until, reason: HoldReason::NotBefore });
    if message.priority == Priority::Normal {
        let from = hold.map_or(now, |hold| hold.until);
        if let Some(end) = calendar.quiet_until(from) {
            let spread = (spread.clamp(0.0, 1.0) * f64::from(calendar.spread_seconds)) as i64;
            hold = Some(Hold { until: end + spread, reason: HoldReason::QuietHours });
        }
    }
    hold
}

/// A stable draw in `[0, 1)` from a message's id: the same spread for every copy of it.
pub fn stable_unit(message_id: &str) -> f64 {
    // FNV-1a, 64 bits, then the top 53 bits as a fraction.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in message_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// A local date and time in the school's time zone (`2026-12-04 08:00`) as Unix seconds, for
/// the CLI's `--at`: a time skipped by a daylight-saving change is an error, not a guess.
pub fn local_time(calendar_tz: Tz, raw: &str) -> Result<i64, String> {
    let local = NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%d %H:%M")
        .map_err(|_| format!("expected YYYY-MM-DD HH:MM in {calendar_tz}, got {raw:?}"))?;
    match calendar_tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok(t.timestamp()),
        LocalResult::Ambiguous(earlier, _) => Ok(earlier.timestamp()),
        LocalResult::None => Err(format!("{raw} does not exist in {calendar_tz} (the clocks skip it)")),
    }
}

/// An instant in the school's time zone, for messages and logs (`2026-12-04 08:00 CET`).
pub fn describe_local(calendar_tz: Tz, at: i64) -> String {
    match DateTime::from_timestamp(at, 0) {
        Some(t) => t.with_timezone(&calendar_tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        None => at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris(raw: &str) -> i64 {
        local_time(chrono_tz::Europe::Paris, raw).unwrap()
    }

    fn calendar(hours: &str, days: &str) -> SchoolCalendar {
        SchoolCalendar {
            quiet_hours: (!hours.is_empty()).then(|| QuietHours::parse(hours).unwrap()),
            quiet_days: QuietDays::parse(days).unwrap(),
            ..SchoolCalendar::default()
        }
    }

    fn message(extra: serde_json::Value) -> QueueMessage {
        let mut body = serde_json::json!({"v": 1, "message_id": "m1", "to": "+33612345678", "body": "x"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        QueueMessage::parse(&body.to_string()).unwrap()
    }

    #[test]
    fn quiet_hours_and_days_parse_or_name_the_mistake() {
        assert_eq!(QuietHours::parse("20:00-07:30").unwrap().to_string(), "20:00-07:30");
        assert_eq!(QuietHours::parse(" 12:00 - 14:00 ").unwrap().to_string(), "12:00-14:00");
        for bad in ["20-7", "20:00", "25:00-07:00", "20:00-20:00", "8pm-7am"] {
            assert!(QuietHours::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(QuietDays::parse("").unwrap(), QuietDays::default());
        assert!(QuietDays::parse("Sat, sun").unwrap().contains(Weekday::Sun));
        assert_eq!(
            QuietDays::parse("sat,dim").unwrap_err(),
            "unknown day \"dim\" (expected mon, tue, wed, thu, fri, sat, sun)"
        );
        assert!(QuietDays::parse("mon,tue,wed,thu,fri,sat,sun").is_err());
    }

    #[test]
    fn a_night_message_waits_for_the_morning() {
        let c = calendar("20:00-07:30", "");
        assert_eq!(c.quiet_until(paris("2026-12-03 23:00")), Some(paris("2026-12-04 07:30")));
        assert_eq!(c.quiet_until(paris("2026-12-04 05:00")), Some(paris("2026-12-04 07:30")));
        assert_eq!(c.quiet_until(paris("2026-12-04 20:00")), Some(paris("2026-12-05 07:30")));
        assert_eq!(c.quiet_until(paris("2026-12-04 07:30")), None);
        assert_eq!(c.quiet_until(paris("2026-12-04 19:59")), None);
        let day = calendar("12:00-14:00", "");
        assert_eq!(day.quiet_until(paris("2026-12-04 13:00")), Some(paris("2026-12-04 14:00")));
        assert_eq!(day.quiet_until(paris("2026-12-04 23:00")), None);
    }

    #[test]
    fn quiet_days_chain_with_quiet_hours() {
        let c = calendar("20:00-07:30", "sat,sun");
        // Friday 2026-12-04 21:00 → Monday 07:30.
        assert_eq!(c.quiet_until(paris("2026-12-04 21:00")), Some(paris("2026-12-07 07:30")));
        assert_eq!(c.quiet_until(paris("2026-12-05 12:00")), Some(paris("2026-12-07 07:30")));
        let days_only = calendar("", "sun");
        assert_eq!(days_only.quiet_until(paris("2026-12-06 12:00")), Some(paris("2026-12-07 00:00")));
    }

    #[test]
    fn the_nights_the_clocks_change() {
        let c = calendar("20:00-07:30", "");
        // Spring forward in Paris: 2026-03-29 02:00 → 03:00. The night is an hour shorter.
        let before = paris("2026-03-28 23:00");
        let end = c.quiet_until(before).unwrap();
        assert_eq!(end, paris("2026-03-29 07:30"));
        assert_eq!(end - before, 7 * 3600 + 30 * 60, "8 h 30 of local time, 7 h 30 of real time");
        // Fall back: 2026-10-25 03:00 → 02:00. The night is an hour longer.
        let before = paris("2026-10-24 23:00");
        let end = c.quiet_until(before).unwrap();
        assert_eq!(end, paris("2026-10-25 07:30"));
        assert_eq!(end - before, 9 * 3600 + 30 * 60);
        // Quiet hours that end inside the skipped hour end when it does.
        let odd = calendar("22:00-02:30", "");
        assert_eq!(odd.quiet_until(paris("2026-03-28 23:00")), Some(paris("2026-03-29 03:00")));
        assert!(local_time(chrono_tz::Europe::Paris, "2026-03-29 02:30").is_err());
    }

    #[test]
    fn the_hold_of_a_message() {
        let c = calendar("20:00-07:30", "");
        let night = paris("2026-12-03 23:00");
        let morning = paris("2026-12-04 07:30");
        let hold = time_hold(&message(serde_json::json!({})), &c, night, 0.5).unwrap();
        assert_eq!(hold, Hold { until: morning + 300, reason: HoldReason::QuietHours });
        let urgent = message(serde_json::json!({"priority": "urgent"}));
        assert_eq!(time_hold(&urgent, &c, night, 0.5), None, "urgent ignores quiet hours");
        let day = paris("2026-12-04 10:00");
        assert_eq!(time_hold(&message(serde_json::json!({})), &c, day, 0.5), None);
        // not_before at 23:00 tonight, a normal message: the morning after, with the spread.
        let later = message(serde_json::json!({"not_before": "2026-12-04T22:00:00Z"}));
        let hold = time_hold(&later, &c, day, 0.0).unwrap();
        assert_eq!(hold, Hold { until: paris("2026-12-05 07:30"), reason: HoldReason::QuietHours });
        let hold = time_hold(&message(serde_json::json!({"not_before": "2026-12-04T13:00:00Z"})), &c, day, 0.0);
        assert_eq!(hold, Some(Hold { until: paris("2026-12-04 14:00"), reason: HoldReason::NotBefore }));
        let past = message(serde_json::json!({"not_before": "2026-12-01T13:00:00Z"}));
        assert_eq!(time_hold(&past, &c, day, 0.0), None);
    }

    #[test]
    fn the_spread_is_stable_per_message_and_spread_out() {
        assert_eq!(stable_unit("trip:p-1"), stable_unit("trip:p-1"));
        let draws: Vec<f64> = (0..1000).map(|i| stable_unit(&format!("trip:p-{i}"))).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }

    #[test]
    fn local_times_are_read_in_the_schools_zone() {
        assert_eq!(paris("2026-12-04 08:00"), 1_796_367_600);
        assert_eq!(local_time(chrono_tz::America::New_York, "2026-12-04 08:00").unwrap(), 1_796_389_200);
        assert!(local_time(chrono_tz::Europe::Paris, "04/12/2026 8h").is_err());
        assert_eq!(describe_local(chrono_tz::Europe::Paris, 1_796_367_600), "2026-12-04 08:00 CET");
    }
}
