//! Printing results: the service's JSON response shapes (`--json`), or tables for people.

use keyplane::KeyMetadata;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::outcome::Failure;

/// Response fields the service sends as timestamps (seconds since the epoch, fractional); the
/// engine keeps milliseconds.
const DATE_FIELDS: [&str; 10] = [
    "CreationDate",
    "DeletionDate",
    "NextRotationDate",
    "RotationDate",
    "LastUpdatedDate",
    "ValidTo",
    "OnDemandRotationStartDate",
    "TrackingStartDate",
    "KeyCreationDate",
    "Timestamp",
];

/// `value` as the service's JSON: dates in epoch seconds.
pub fn service_value<T: Serialize>(value: &T) -> Result<Value, Failure> {
    let mut value = serde_json::to_value(value).map_err(|e| Failure {
        code: "KMSInternalException".into(),
        message: format!("encoding the response: {e}"),
        exit: crate::outcome::INTERNAL,
    })?;
    convert_dates(&mut value);
    Ok(value)
}

fn convert_dates(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match field {
                    Value::Number(ms) if DATE_FIELDS.contains(&key.as_str()) => {
                        if let Some(ms) = ms.as_i64() {
                            *field = serde_json::json!(ms as f64 / 1000.0);
                        }
                    }
                    other => convert_dates(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(convert_dates),
        _ => {}
    }
}

/// DescribeKey's `KeyMetadata` as the service shapes it. (The engine's metadata also carries
/// `KeyRotationEnabled`, which the service reports through GetKeyRotationStatus instead.)
pub fn key_metadata(meta: &keyplane::KeyMetadata) -> Result<Value, Failure> {
    let mut value = service_value(meta)?;
    if let Value::Object(map) = &mut value {
        map.remove("KeyRotationEnabled");
    }
    Ok(value)
}

/// A JSON object built field by field.
#[derive(Default)]
pub struct Response(Map<String, Value>);

impl Response {
    pub fn new() -> Self {
        Response::default()
    }

    pub fn field<T: Serialize>(mut self, name: &str, value: T) -> Result<Self, Failure> {
        self.0.insert(name.to_owned(), service_value(&value)?);
        Ok(self)
    }

    pub fn optional<T: Serialize>(self, name: &str, value: Option<T>) -> Result<Self, Failure> {
        match value {
            Some(v) => self.field(name, v),
            None => Ok(self),
        }
    }

    pub fn print(self) {
        print_json(&Value::Object(self.0));
    }

    pub fn print_ok(self) -> Result<(), Failure> {
        self.print();
        Ok(())
    }

    /// Prints one page of a List call as the service answers it: the items under `name`,
    /// `Truncated`, and `NextMarker` when there is more.
    pub fn print_page<T: Serialize>(name: &str, page: &keyplane::Page<T>) -> Result<(), Failure> {
        Response::new()
            .field(name, &page.items)?
            .field("Truncated", page.truncated)?
            .optional("NextMarker", page.next_marker.as_deref())?
            .print_ok()
    }
}

pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A table printed with aligned columns.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let last = cells.len().saturating_sub(1);
            cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == last {
                        c.clone()
                    } else {
                        format!("{c:<w$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!("{}", line(&self.header));
        for row in &self.rows {
            println!("{}", line(row));
        }
    }
}

/// Field/value lines for one object.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        println!("{key:<width$}  {value}");
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn date(ms: i64) -> String {
    let time = keyplane::clock::CivilTime::from_unix_seconds(ms.div_euclid(1000));
    format!("{}Z", time.extended())
}

/// A command that answers nothing: `{}` with `--json`, else `line`.
pub fn done(json: bool, line: &str) -> Result<(), Failure> {
    if json {
        println!("{{}}");
    } else {
        println!("{line}");
    }
    Ok(())
}

/// A key's metadata: `{"KeyMetadata": ...}` with `--json`, else a headline and a field list.
pub fn show_metadata(meta: &KeyMetadata, json: bool, headline: &str) -> Result<(), Failure> {
    if json {
        let mut body = serde_json::Map::new();
        body.insert("KeyMetadata".into(), key_metadata(meta)?);
        print_json(&serde_json::Value::Object(body));
        return Ok(());
    }
    if !headline.is_empty() {
        println!("{headline} {}", meta.key_id);
    }
    let mut fields = vec![
        ("KeyId", meta.key_id.clone()),
        ("Arn", meta.arn.clone()),
        ("KeyState", meta.key_state.to_string()),
        ("KeySpec", meta.key_spec.to_string()),
        ("KeyUsage", meta.key_usage.to_string()),
        ("Origin", meta.origin.to_string()),
        ("KeyManager", meta.key_manager.to_string()),
        ("Description", meta.description.clone()),
        ("CreationDate", date(meta.creation_date.0)),
        (
            "CurrentKeyMaterialId",
            meta.current_key_material_id.clone().unwrap_or_default(),
        ),
        ("KeyRotationEnabled", meta.key_rotation_enabled.to_string()),
    ];
    if let Some(d) = meta.deletion_date {
        fields.push(("DeletionDate", date(d.0)));
    }
    if let Some(store) = &meta.custom_key_store_id {
        fields.push(("CustomKeyStoreId", store.clone()));
    }
    if let Some(cluster) = &meta.cloud_hsm_cluster_id {
        fields.push(("CloudHsmClusterId", cluster.clone()));
    }
    if let Some(c) = &meta.multi_region_configuration {
        fields.push(("MultiRegionKeyType", c.multi_region_key_type.to_string()));
        fields.push(("PrimaryKey", c.primary_key.arn.clone()));
        let replicas: Vec<&str> = c.replica_keys.iter().map(|k| k.arn.as_str()).collect();
        fields.push(("ReplicaKeys", replicas.join(" ")));
    }
    print_fields(&fields);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_iso_8601() {
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(date(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn date_fields_become_epoch_seconds_at_any_depth() {
        let v = service_value(&serde_json::json!({
            "KeyMetadata": {"CreationDate": 1_700_000_000_123_i64, "KeyId": "k"},
            "Aliases": [{"LastUpdatedDate": 1000}]
        }))
        .unwrap();
        assert_eq!(v["KeyMetadata"]["CreationDate"], 1_700_000_000.123);
        assert_eq!(v["Aliases"][0]["LastUpdatedDate"], 1.0);
        assert_eq!(v["KeyMetadata"]["KeyId"], "k");
    }
}
