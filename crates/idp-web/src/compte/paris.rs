//! Dates as a person in France reads them: the legal time of mainland
//! France (Europe/Paris) and French words, e.g. « jeudi 3 décembre 2026 à
//! 14 h 05 ».
//!
//! The offset follows the European rule in force since 1996: UTC+2 from the
//! last Sunday of March at 01:00 UTC to the last Sunday of October at 01:00
//! UTC, UTC+1 otherwise. Deadlines in e-mails are the only use, so dates
//! before 1996 need not be exact.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};

const DAYS: [&str; 7] = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"];
const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// 01:00 UTC on the last Sunday of `month` (March or October: 31 days).
fn change_instant(year: i32, month: u32) -> Option<DateTime<Utc>> {
    let last = NaiveDate::from_ymd_opt(year, month, 31)?;
    let sunday = last - Duration::days(i64::from(last.weekday().num_days_from_sunday()));
    Some(Utc.from_utc_datetime(&sunday.and_hms_opt(1, 0, 0)?))
}

/// The offset of Paris from UTC at `at`, in hours.
pub fn offset_hours(at: DateTime<Utc>) -> i64 {
    match (change_instant(at.year(), 3), change_instant(at.year(), 10)) {
        (Some(start), Some(end)) if at >= start && at < end => 2,
        _ => 1,
    }
}

/// `at` in Paris time and French words: « jeudi 3 décembre 2026 à 14 h 05 »
/// (« 1er » for the first of the month).
pub fn long_date(at: DateTime<Utc>) -> String {
    let local = at.naive_utc() + Duration::hours(offset_hours(at));
    let day = match local.day() {
        1 => "1er".to_owned(),
        d => d.to_string(),
    };
    let weekday = DAYS.get(local.weekday().num_days_from_monday() as usize).copied().unwrap_or_default();
    let month = MONTHS.get(local.month0() as usize).copied().unwrap_or_default();
    format!("{weekday} {day} {month} {} à {} h {:02}", local.year(), local.hour(), local.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn winter_and_summer() {
        assert_eq!(long_date(utc("2026-12-03T13:05:00Z")), "jeudi 3 décembre 2026 à 14 h 05");
        assert_eq!(long_date(utc("2026-07-01T08:30:00Z")), "mercredi 1er juillet 2026 à 10 h 30");
    }

    #[test]
    fn across_the_changes_of_2026() {
        // Summer time starts on Sunday 29 March 2026 at 01:00 UTC.
        assert_eq!(long_date(utc("2026-03-29T00:59:00Z")), "dimanche 29 mars 2026 à 1 h 59");
        assert_eq!(long_date(utc("2026-03-29T01:00:00Z")), "dimanche 29 mars 2026 à 3 h 00");
        // And ends on Sunday 25 October 2026 at 01:00 UTC.
        assert_eq!(long_date(utc("2026-10-25T00:59:00Z")), "dimanche 25 octobre 2026 à 2 h 59");
        assert_eq!(long_date(utc("2026-10-25T01:00:00Z")), "dimanche 25 octobre 2026 à 2 h 00");
    }

    #[test]
    fn the_last_sunday_of_other_years() {
        // 2027: 28 March and 31 October (a month ending on a Sunday).
        assert_eq!(offset_hours(utc("2027-03-28T01:00:00Z")), 2);
        assert_eq!(offset_hours(utc("2027-03-27T12:00:00Z")), 1);
        assert_eq!(offset_hours(utc("2027-10-31T00:59:00Z")), 2);
        assert_eq!(offset_hours(utc("2027-10-31T01:00:00Z")), 1);
    }
}
