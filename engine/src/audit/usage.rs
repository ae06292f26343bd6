//! GetKeyLastUsage from the logs of an audit directory: every process's successful cryptographic
//! uses, read once at engine start and then only the bytes appended since the last read.
//!
//! A record counts for a key when it is a cryptographic operation without `errorCode`, its
//! `resources` name the key, and (for a batch) not every item that used the key failed. The latest
//! by `eventTime` wins. Records are read as written, not verified: `verify` is what says whether a
//! log was tampered with.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use uuid::Uuid;

use super::chain::RECORD_PREFIX;
use super::segments::list_logs;
use super::AuditError;

/// A successful cryptographic use of a key, as its record states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedUse {
    /// The operation (`Encrypt`, `Decrypt`, ...).
    pub operation: String,
    /// Its `eventTime`, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Its `eventID`.
    pub event_id: String,
    /// Its `requestID`.
    pub request_id: String,
}

/// The last use of every key found in the logs of an audit directory, and how far each log has
/// been read.
#[derive(Debug, Default)]
pub struct LastUses {
    uses: HashMap<Uuid, RecordedUse>,
    /// Bytes of each log read so far (always up to the end of a complete line).
    offsets: HashMap<PathBuf, u64>,
    /// The time of the earliest first record of any log.
    earliest_ms: Option<i64>,
    /// A log not to read again after its first read: this process's own segment, whose new
    /// records are [`note`](Self::note)d as they are written.
    own: Option<PathBuf>,
    /// Records read in all.
    records: u64,
}

impl LastUses {
    /// Nothing read yet.
    pub fn new() -> Self {
        LastUses::default()
    }

    /// After its first read, `path` (this process's segment) is not read again.
    pub fn set_own(&mut self, path: impl Into<PathBuf>) {
        self.own = Some(path.into());
    }

    /// Reads what was appended to every log of the audit directory `dir` since the last call
    /// (everything on the first): new logs from their start, known ones from where the last read
    /// stopped. A line without its newline (being written, or torn) is left for the next call.
    pub fn refresh(&mut self, dir: &Path) -> Result<(), AuditError> {
        for log in list_logs(dir)? {
            let offset = self.offsets.get(&log.path).copied();
            if offset.is_some() && self.own.as_ref() == Some(&log.path) {
                continue;
            }
            self.read_from(&log.path, offset.unwrap_or(0))?;
        }
        Ok(())
    }

    /// Records a use this process made (kept if no later one is known).
    pub fn note(&mut self, key: Uuid, used: RecordedUse) {
        match self.uses.get(&key) {
            Some(known) if known.time_ms > used.time_ms => {}
            _ => {
                self.uses.insert(key, used);
            }
        }
    }

    /// The last use of `key`, if any is known.
    pub fn get(&self, key: &Uuid) -> Option<&RecordedUse> {
        self.uses.get(key)
    }

    /// When the earliest log began (its first record's time), if any log has a record.
    pub fn earliest_ms(&self) -> Option<i64> {
        self.earliest_ms
    }

    /// Records read in all.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    fn read_from(&mut self, path: &Path, offset: u64) -> Result<(), AuditError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            // Gone since it was listed: nothing to read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(AuditError::io("opening", path, &e)),
        };
        let len = file
            .metadata()
            .map_err(|e| AuditError::io("reading metadata of", path, &e))?
            .len();
        if len <= offset {
            self.offsets.insert(path.to_owned(), offset.min(len));
            return Ok(());
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| AuditError::io("reading", path, &e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::with_capacity(4096);
        let mut done = offset;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| AuditError::io("reading", path, &e))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            if done == 0 {
                if let Some(ms) = event_time_of(&line) {
                    self.earliest_ms = Some(self.earliest_ms.map_or(ms, |e| e.min(ms)));
                }
            }
            done += n as u64;
            if line.starts_with(RECORD_PREFIX) {
                self.records += 1;
                self.take_record(&line);
            }
        }
        self.offsets.insert(path.to_owned(), done);
        Ok(())
    }

    fn take_record(&mut self, line: &[u8]) {
        let Some(name) = event_name_of(line) else {
            return;
        };
        if !crate::operation::Operation::from_name(name).is_some_and(|o| o.is_cryptographic()) {
            return;
        }
        let Ok(record) = serde_json::from_slice::<Record<'_>>(line) else {
            return;
        };
        if record.error_code.is_some() {
            return;
        }
        let Some(time_ms) = parse_rfc3339_millis(&record.event_time) else {
            return;
        };
        for resource in &record.resources {
            let failed = record
                .additional_event_data
                .as_ref()
                .and_then(|extra| extra.keys.iter().find(|k| k.arn == resource.arn))
                .is_some_and(|k| k.error_count >= k.item_count);
            let key = resource
                .arn
                .rsplit_once(":key/")
                .and_then(|(_, id)| Uuid::parse_str(id).ok());
            if let (Some(key), false) = (key, failed) {
                self.note(
                    key,
                    RecordedUse {
                        operation: record.event_name.to_string(),
                        time_ms,
                        event_id: record.event_id.to_string(),
                        request_id: record.request_id.to_string(),
                    },
                );
            }
        }
    }
}

/// The members of a record that GetKeyLastUsage needs.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(rename = "eventName", borrow)]
    event_name: Cow<'a, str>,
    #[serde(rename = "eventTime", borrow)]
    event_time: Cow<'a, str>,
    #[serde(rename = "eventID", borrow)]
    event_id: Cow<'a, str>,
    #[serde(rename = "requestID", borrow)]
    request_id: Cow<'a, str>,
    #[serde(rename = "errorCode", default)]
    error_code: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    resources: Vec<Resource<'a>>,
    #[serde(rename = "additionalEventData", default, borrow)]
    additional_event_data: Option<Extra<'a>>,
}

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(rename = "ARN", borrow)]
    arn: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Extra<'a> {
    #[serde(default, borrow)]
    keys: Vec<BatchKeyCounts<'a>>,
}

#[derive(Deserialize)]
struct BatchKeyCounts<'a> {
    #[serde(rename = "ARN", borrow)]
    arn: Cow<'a, str>,
    #[serde(rename = "itemCount")]
    item_count: u64,
    #[serde(rename = "errorCount")]
    error_count: u64,
}

/// The string value that follows `key` (such as `"eventName":"`) in a record line. Inside a JSON
/// string every quote is escaped, so the first unescaped occurrence is the member itself.
fn string_member<'l>(line: &'l [u8], key: &[u8]) -> Option<&'l str> {
    let start = line.windows(key.len()).position(|w| w == key)? + key.len();
    let len = line[start..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&line[start..start + len]).ok()
}

fn event_name_of(line: &[u8]) -> Option<&str> {
    string_member(line, b",\"eventName\":\"")
}

fn event_time_of(line: &[u8]) -> Option<i64> {
    string_member(line, b",\"eventTime\":\"").and_then(parse_rfc3339_millis)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` as milliseconds since the Unix epoch; `None` if it is not one.
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let millis = match s.get(19..s.len() - 1)? {
        "" => 0,
        frac => {
            let digits = frac.strip_prefix('.')?;
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            format!("{digits:0<3}").get(..3)?.parse::<i64>().ok()?
        }
    };
    let days = crate::clock::days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_back() {
        for ms in [0_i64, 951_782_400_000, 1_700_000_000_123] {
            let text = super::super::rfc3339_millis(ms);
            assert_eq!(parse_rfc3339_millis(&text), Some(ms), "{text}");
        }
        assert_eq!(parse_rfc3339_millis("yesterday"), None);
        assert_eq!(parse_rfc3339_millis("2024-13-01T00:00:00Z"), None);
    }
}
