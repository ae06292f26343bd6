//! `keyplane key ...`: the key lifecycle.

use std::collections::BTreeMap;

use keyplane::{CreateKeyRequest, Engine, ReplicateKeyRequest, Tag};

use crate::args::{
    CreateKeyArgs, ImportArgs, ImportParamsArgs, KeyCommand, KeyFormat, ListArgs, ReplicateArgs,
    RotationCommand,
};
use crate::context::Context;
use crate::io::pairs;
use crate::outcome::Failure;
use crate::output::{
    date, done, key_metadata, print_fields, print_json, show_metadata, Response, Table,
};

pub fn run(ctx: &Context, command: KeyCommand) -> Result<(), Failure> {
    let command = match command {
        KeyCommand::Policy(policy) => return crate::commands::access::run_policy(ctx, policy),
        KeyCommand::LastUsage(k) => return crate::commands::access::last_usage(ctx, &k.key),
        other => other,
    };
    let engine = ctx.engine()?;
    let json = ctx.global.json;
    match command {
        KeyCommand::Create(args) => {
            let meta = engine.create_key(create_request(args)?)?;
            show_metadata(&meta, json, "Created key")
        }
        KeyCommand::List(page) => list(&engine, page, json),
        KeyCommand::Describe(k) => show_metadata(&engine.describe_key(&k.key)?, json, ""),
        KeyCommand::Enable(k) => {
            engine.enable_key(&k.key)?;
            done(json, &format!("Enabled {}", k.key))
        }
        KeyCommand::Disable(k) => {
            engine.disable_key(&k.key)?;
            done(json, &format!("Disabled {}", k.key))
        }
        KeyCommand::UpdateDescription { key, description } => {
            engine.update_key_description(&key, &description)?;
            done(json, &format!("Updated the description of {key}"))
        }
        KeyCommand::Rotate(k) => {
            let arn = engine.rotate_key_on_demand(&k.key)?;
            if json {
                Response::new().field("KeyId", &arn)?.print();
            } else {
                let meta = engine.describe_key(&arn)?;
                println!(
                    "Rotated {arn}: new key material {}; earlier material keeps decrypting",
                    meta.current_key_material_id.unwrap_or_default()
                );
            }
            Ok(())
        }
        KeyCommand::Rotation(rotation) => run_rotation(&engine, rotation, json),
        KeyCommand::ScheduleDeletion {
            key,
            pending_window_days,
        } => {
            let r = engine.schedule_key_deletion(&key, pending_window_days)?;
            if json {
                print_json(&crate::output::service_value(&r)?);
            } else {
                match r.deletion_date {
                    Some(d) => println!(
                        "Scheduled {} for deletion on {} ({} days); until then it is {} and \
                         `keyplane key cancel-deletion` can keep it",
                        r.key_id,
                        date(d.0),
                        r.pending_window_in_days,
                        r.key_state
                    ),
                    None => println!(
                        "Scheduled {} for deletion: it is {} until its replica keys are deleted, \
                         then deleted after {} days; `keyplane key cancel-deletion` can keep it",
                        r.key_id, r.key_state, r.pending_window_in_days
                    ),
                }
            }
            Ok(())
        }
        KeyCommand::Policy(_) | KeyCommand::LastUsage(_) => unreachable!("handled above"),
        KeyCommand::ImportParams(args) => import_params(&engine, args, json),
        KeyCommand::Replicate(args) => replicate(&engine, args, json),
        KeyCommand::UpdatePrimaryRegion {
            key,
            primary_region,
        } => {
            engine.update_primary_region(&key, &primary_region)?;
            done(
                json,
                &format!("The primary key of {key} is now the one in {primary_region}"),
            )
        }
        KeyCommand::Import(args) => import(&engine, args, json),
        KeyCommand::DeleteImported {
            key,
            key_material_id,
        } => {
            let r = engine.delete_imported_key_material(&key, key_material_id.as_deref())?;
            if json {
                print_json(&crate::output::service_value(&r)?);
            } else {
                println!(
                    "Deleted key material {} of {}; the key is PendingImport until the same \
                     material is imported again",
                    r.key_material_id, r.key_id
                );
            }
            Ok(())
        }
        KeyCommand::CancelDeletion(k) => {
            let arn = engine.cancel_key_deletion(&k.key)?;
            if json {
                Response::new().field("KeyId", &arn)?.print();
            } else {
                println!(
                    "Cancelled the deletion of {arn}; the key is Disabled (enable it to use it)"
                );
            }
            Ok(())
        }
    }
}

fn import_params(engine: &Engine, args: ImportParamsArgs, json: bool) -> Result<(), Failure> {
    let r = engine.get_parameters_for_import(
        &args.key,
        args.wrapping_algorithm.parse()?,
        args.wrapping_key_spec.parse()?,
    )?;
    if let Some(path) = &args.public_key_out {
        let bytes = match args.format {
            KeyFormat::Der => r.public_key.clone(),
            KeyFormat::Pem => crate::io::pem("PUBLIC KEY", &r.public_key).into_bytes(),
        };
        crate::io::write_file(path, &bytes, false)?;
    }
    if let Some(path) = &args.token_out {
        crate::io::write_file(path, &r.import_token, true)?;
    }
    if json {
        return Response::new()
            .field("KeyId", &r.key_id)?
            .field("ImportToken", crate::io::b64(&r.import_token))?
            .field("PublicKey", crate::io::b64(&r.public_key))?
            .field(
                "ParametersValidTo",
                r.parameters_valid_to.as_epoch_seconds(),
            )?
            .print_ok();
    }
    let mut fields = vec![
        ("KeyId", r.key_id.clone()),
        ("ParametersValidTo", date(r.parameters_valid_to.0)),
    ];
    if args.public_key_out.is_none() {
        fields.push(("PublicKey", crate::io::b64(&r.public_key)));
    }
    if args.token_out.is_none() {
        fields.push(("ImportToken", crate::io::b64(&r.import_token)));
    }
    print_fields(&fields);
    Ok(())
}

/// Parses `--valid-to`: RFC 3339 in UTC (`2027-01-31T00:00:00Z`, fractions ignored) or epoch
/// seconds.
fn parse_time(text: &str) -> Result<keyplane::Timestamp, Failure> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(keyplane::Timestamp(seconds.saturating_mul(1000)));
    }
    let bad = || {
        Failure::usage(format!(
            "--valid-to {text:?} is neither epoch seconds nor an RFC 3339 UTC time such as \
             2027-01-31T00:00:00Z"
        ))
    };
    let b = text.as_bytes();
    if b.len() < 20 || !text.ends_with('Z') || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, Failure> {
        text.get(range).and_then(|s| s.parse().ok()).ok_or_else(bad)
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    let days = keyplane::clock::days_from_civil(y, m, d);
    Ok(keyplane::Timestamp(
        ((days * 86_400) + hh * 3600 + mm * 60 + ss) * 1000,
    ))
}

fn import(engine: &Engine, args: ImportArgs, json: bool) -> Result<(), Failure> {
    let token = crate::io::blob_from(&crate::io::read_input(Some(&args.token))?);
    let material = crate::io::blob_from(&crate::io::read_input(Some(&args.material))?);
    let valid_to = args.valid_to.as_deref().map(parse_time).transpose()?;
    let expiration_model = if args.no_expiry {
        Some(keyplane::ExpirationModel::KeyMaterialDoesNotExpire)
    } else if valid_to.is_some() {
        Some(keyplane::ExpirationModel::KeyMaterialExpires)
    } else {
        return Err(Failure::usage(
            "say when the key material expires with --valid-to TIME, or that it does not with \
             --no-expiry",
        ));
    };
    let import_type = args.import_type.as_deref().map(str::parse).transpose()?;
    let r = engine.import_key_material(&keyplane::ImportKeyMaterialRequest {
        key_id: &args.key,
        import_token: &token,
        encrypted_key_material: &material,
        valid_to,
        expiration_model,
        import_type,
        key_material_description: args.key_material_description.as_deref(),
        key_material_id: args.key_material_id.as_deref(),
    })?;
    if json {
        print_json(&crate::output::service_value(&r)?);
    } else {
        let meta = engine.describe_key(&r.key_id)?;
        println!(
            "Imported key material {} into {}; the key is {}",
            r.key_material_id, r.key_id, meta.key_state
        );
    }
    Ok(())
}

/// An empty response (`{}`) or a line for people.
fn create_request(args: CreateKeyArgs) -> Result<CreateKeyRequest, Failure> {
    let tags = pairs(&args.tags, "tag")?
        .into_iter()
        .map(|(tag_key, tag_value)| Tag { tag_key, tag_value })
        .collect();
    let policy = match args.policy_file {
        Some(path) => Some(
            String::from_utf8(crate::io::read_input(Some(&path))?.to_vec())
                .map_err(|_| Failure::usage("the key policy file is not UTF-8"))?,
        ),
        None => None,
    };
    Ok(CreateKeyRequest {
        description: args.description,
        key_spec: args.key_spec.map(|s| s.parse()).transpose()?,
        key_usage: args.key_usage.map(|s| s.parse()).transpose()?,
        origin: args.origin.map(|s| s.parse()).transpose()?,
        tags,
        policy,
        bypass_policy_lockout_safety_check: args.bypass_policy_lockout_safety_check,
        multi_region: args.multi_region.then_some(true),
        custom_key_store_id: args.custom_key_store_id,
        xks_key_id: args.xks_key_id,
    })
}

fn read_policy(path: Option<std::path::PathBuf>) -> Result<Option<String>, Failure> {
    path.map(|path| {
        String::from_utf8(crate::io::read_input(Some(&path))?.to_vec())
            .map_err(|_| Failure::usage("the key policy file is not UTF-8"))
    })
    .transpose()
}

fn replicate(engine: &Engine, args: ReplicateArgs, json: bool) -> Result<(), Failure> {
    let tags = pairs(&args.tags, "tag")?
        .into_iter()
        .map(|(tag_key, tag_value)| Tag { tag_key, tag_value })
        .collect();
    let r = engine.replicate_key(ReplicateKeyRequest {
        key_id: args.key,
        replica_region: args.replica_region,
        description: args.description,
        policy: read_policy(args.policy_file)?,
        bypass_policy_lockout_safety_check: args.bypass_policy_lockout_safety_check,
        tags,
    })?;
    if json {
        return Response::new()
            .field("ReplicaKeyMetadata", key_metadata(&r.replica_key_metadata)?)?
            .field("ReplicaPolicy", &r.replica_policy)?
            .field("ReplicaTags", &r.replica_tags)?
            .print_ok();
    }
    show_metadata(&r.replica_key_metadata, false, "Replicated")
}

fn list(engine: &Engine, page: ListArgs, json: bool) -> Result<(), Failure> {
    let keys = engine.list_keys(page.limit, page.marker.as_deref())?;
    if json {
        return Response::print_page("Keys", &keys);
    }
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut marker = None;
    loop {
        let page = engine.list_aliases(None, Some(100), marker.as_deref())?;
        for a in page.items {
            let Some(target) = a.target_key_id else {
                continue;
            };
            aliases.entry(target).or_default().push(a.alias_name);
        }
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    let mut table = Table::new(&[
        "KEY ID",
        "STATE",
        "SPEC",
        "CREATED",
        "ALIASES",
        "DESCRIPTION",
    ]);
    for key in &keys.items {
        let meta = engine.describe_key(&key.key_id)?;
        table.row(vec![
            meta.key_id.clone(),
            meta.key_state.to_string(),
            meta.key_spec.to_string(),
            date(meta.creation_date.0),
            aliases
                .get(&meta.key_id)
                .map(|a| a.join(","))
                .unwrap_or_default(),
            meta.description.clone(),
        ]);
    }
    table.print();
    if let Some(next) = keys.next_marker {
        println!("(more: --marker {next})");
    }
    Ok(())
}

fn run_rotation(engine: &Engine, command: RotationCommand, json: bool) -> Result<(), Failure> {
    match command {
        RotationCommand::Enable { key, period_days } => {
            engine.enable_key_rotation(&key, period_days)?;
            let status = engine.get_key_rotation_status(&key)?;
            done(
                json,
                &format!(
                    "Automatic rotation of {key} enabled: every {} days, next on {}",
                    status.rotation_period_in_days.unwrap_or_default(),
                    status
                        .next_rotation_date
                        .map(|d| date(d.0))
                        .unwrap_or_default()
                ),
            )
        }
        RotationCommand::Disable(k) => {
            engine.disable_key_rotation(&k.key)?;
            done(json, &format!("Automatic rotation of {} disabled", k.key))
        }
        RotationCommand::Status(k) => {
            let status = engine.get_key_rotation_status(&k.key)?;
            if json {
                print_json(&crate::output::service_value(&status)?);
            } else {
                print_fields(&[
                    ("KeyId", status.key_id.clone()),
                    (
                        "KeyRotationEnabled",
                        status.key_rotation_enabled.to_string(),
                    ),
                    (
                        "RotationPeriodInDays",
                        status
                            .rotation_period_in_days
                            .map(|d| d.to_string())
                            .unwrap_or_default(),
                    ),
                    (
                        "NextRotationDate",
                        status
                            .next_rotation_date
                            .map(|d| date(d.0))
                            .unwrap_or_default(),
                    ),
                ]);
            }
            Ok(())
        }
        RotationCommand::List { key, page } => {
            let rotations = engine.list_key_rotations(&key, page.limit, page.marker.as_deref())?;
            if json {
                return Response::print_page("Rotations", &rotations);
            }
            let mut table = Table::new(&["ROTATION DATE", "TYPE", "KEY MATERIAL ID", "STATE"]);
            for r in &rotations.items {
                let state = match (r.key_material_state, r.import_state) {
                    (Some(m), Some(i)) => format!("{m} {i}"),
                    _ => String::new(),
                };
                table.row(vec![
                    r.rotation_date.map(|d| date(d.0)).unwrap_or_default(),
                    r.rotation_type.map(|t| t.to_string()).unwrap_or_default(),
                    r.key_material_id.clone(),
                    state,
                ]);
            }
            table.print();
            Ok(())
        }
    }
}
