//! Time: the clock the engine is given, and the timestamps it records.
//!
//! Scheduled deletion and automatic rotation happen when due according to this clock, so tests (and
//! simulations) can move time forward with [`ManualClock`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Timestamp {
    /// This timestamp plus `days` days.
    pub fn plus_days(self, days: u32) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::from(days).saturating_mul(DAY_MS)),
        )
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_millis(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_millis(self.0.unsigned_abs())
        }
    }

    /// Seconds since the epoch as a float, the service's JSON date format.
    pub fn as_epoch_seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock that reads `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }

    /// A clock starting at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// Moves the clock forward by whole days.
    pub fn advance_days(&self, days: u32) {
        self.0.fetch_add(i64::from(days) * DAY_MS, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`); negative before it. `month` is 1–12; `day` is not checked against the
/// month (a parser that must refuse February 30 checks it, or formats the result back).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Year, month (1–12) and day (1–31) of the proleptic Gregorian calendar `days` after
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// A UTC date and time of day, to the second, as the formats keyplane writes spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl CivilTime {
    /// The date and time `seconds` after 1970-01-01T00:00:00Z (before it when negative).
    pub fn from_unix_seconds(seconds: i64) -> CivilTime {
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        let second_of_day = seconds.rem_euclid(86_400) as u32;
        CivilTime {
            year,
            month,
            day,
            hour: second_of_day / 3600,
            minute: second_of_day % 3600 / 60,
            second: second_of_day % 60,
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS` (RFC 3339 without its zone).
    pub fn extended(&self) -> String {
        self.joined("-", ":", "")
    }

    /// `YYYYMMDDTHHMMSSZ`, SigV4's `X-Amz-Date`.
    pub fn amz_date(&self) -> String {
        self.joined("", "", "Z")
    }

    /// The ISO 8601 spellings: `date` between the date's fields, `time` between the time's.
    fn joined(&self, date: &str, time: &str, zone: &str) -> String {
        let CivilTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        } = self;
        format!(
            "{year:04}{date}{month:02}{date}{day:02}T{hour:02}{time}{minute:02}{time}{second:02}{zone}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(
            CivilTime::from_unix_seconds(1_440_938_160).amz_date(),
            "20150830T123600Z"
        );
        assert_eq!(
            CivilTime::from_unix_seconds(-1).extended(),
            "1969-12-31T23:59:59"
        );
    }

    #[test]
    fn days_round_trip_over_eight_hundred_years() {
        for days in (-150_000..150_000).step_by(7) {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=12).contains(&month) && (1..=31).contains(&day));
            assert_eq!(
                days_from_civil(year, i64::from(month), i64::from(day)),
                days
            );
        }
    }

    /// Against an independent implementation: httpdate's formatting of the same instants (it
    /// covers 1970 to 9999).
    #[test]
    fn agrees_with_httpdate() {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mut seconds = 0i64;
        while seconds < 253_402_300_800 {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
            let theirs = httpdate::fmt_http_date(time);
            let c = CivilTime::from_unix_seconds(seconds);
            let ours = format!(
                "{:02} {} {} {:02}:{:02}:{:02} GMT",
                c.day,
                MONTHS[c.month as usize - 1],
                c.year,
                c.hour,
                c.minute,
                c.second
            );
            assert_eq!(&theirs[5..], ours, "{seconds}");
            seconds += 86_399 * 13 + 7;
        }
    }
}
