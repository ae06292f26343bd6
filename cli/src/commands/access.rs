//! Access control from the command line: `key policy get|put|list`, `grant ...`, `managed-key`,
//! and `key last-usage`.

use keyplane::{CreateGrantRequest, GrantConstraints, GrantListEntry, GrantOperation, Page};
use serde_json::Value;

use crate::args::{GrantCommand, PolicyCommand};
use crate::context::Context;
use crate::io::{pairs, read_input, write_file};
use crate::outcome::Failure;
use crate::output::{date, print_fields, print_json, service_value, Response, Table};
use crate::output::{done, show_metadata};

pub fn run_policy(ctx: &Context, command: PolicyCommand) -> Result<(), Failure> {
    let json = ctx.global.json;
    match command {
        PolicyCommand::Template { admins, users } => {
            let admins: Vec<&str> = admins.iter().map(String::as_str).collect();
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            let policy = keyplane::policy::templates::separated(&admins, &users)?;
            println!("{policy}");
            Ok(())
        }
        PolicyCommand::Get {
            key,
            policy_name,
            output,
        } => {
            let engine = ctx.engine()?;
            let policy = engine.get_key_policy(&key, policy_name.as_deref())?;
            if let Some(path) = &output {
                write_file(path, policy.as_bytes(), false)?;
            }
            if json {
                return Response::new()
                    .field("Policy", &policy)?
                    .field("PolicyName", policy_name.as_deref().unwrap_or("default"))?
                    .print_ok();
            }
            if output.is_none() {
                // Pretty-printed when it is JSON (it always is once accepted).
                match serde_json::from_str::<Value>(&policy) {
                    Ok(v) => print_json(&v),
                    Err(_) => println!("{policy}"),
                }
            }
            Ok(())
        }
        PolicyCommand::Put {
            key,
            file,
            policy_name,
            bypass_policy_lockout_safety_check,
        } => {
            let policy = String::from_utf8(read_input(Some(&file))?.to_vec())
                .map_err(|_| Failure::usage("the key policy file is not UTF-8"))?;
            let engine = ctx.engine()?;
            engine.put_key_policy(
                &key,
                &policy,
                policy_name.as_deref(),
                bypass_policy_lockout_safety_check,
            )?;
            done(json, &format!("Put the key policy of {key}"))
        }
        PolicyCommand::List { key } => {
            let engine = ctx.engine()?;
            let names = engine.list_key_policies(&key)?;
            if json {
                return Response::print_page("PolicyNames", &names);
            }
            for name in &names.items {
                println!("{name}");
            }
            Ok(())
        }
    }
}

fn constraints(equals: &[String], subset: &[String]) -> Result<Option<GrantConstraints>, Failure> {
    let equals = pairs(equals, "--context-equals")?;
    let subset = pairs(subset, "--context-subset")?;
    if equals.is_empty() && subset.is_empty() {
        return Ok(None);
    }
    Ok(Some(GrantConstraints {
        encryption_context_equals: (!equals.is_empty()).then_some(equals),
        encryption_context_subset: (!subset.is_empty()).then_some(subset),
    }))
}

fn print_grants(grants: Page<GrantListEntry>, json: bool) -> Result<(), Failure> {
    if json {
        return Response::print_page("Grants", &grants);
    }
    let mut table = Table::new(&[
        "GRANT ID",
        "KEY",
        "GRANTEE",
        "OPERATIONS",
        "RETIRING",
        "CONSTRAINTS",
        "CREATED",
    ]);
    for g in &grants.items {
        let constraints = g
            .constraints
            .as_ref()
            .map(|c| service_value(c).map(|v| v.to_string()).unwrap_or_default())
            .unwrap_or_default();
        table.row(vec![
            g.grant_id.clone(),
            g.key_id.rsplit('/').next().unwrap_or_default().to_owned(),
            g.grantee_principal.clone(),
            g.operations
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join(","),
            g.retiring_principal.clone().unwrap_or_default(),
            constraints,
            date(g.creation_date.0),
        ]);
    }
    table.print();
    if let Some(next) = grants.next_marker {
        println!("(more: --marker {next})");
    }
    Ok(())
}

pub fn run_grant(ctx: &Context, command: GrantCommand) -> Result<(), Failure> {
    let json = ctx.global.json;
    match command {
        GrantCommand::Create {
            key_id,
            grantee_principal,
            operations,
            retiring_principal,
            name,
            context_equals,
            context_subset,
        } => {
            let operations = operations
                .iter()
                .map(|o| o.trim().parse::<GrantOperation>())
                .collect::<Result<Vec<_>, _>>()?;
            let constraints = constraints(&context_equals, &context_subset)?;
            let engine = ctx.engine()?;
            let grant = engine.create_grant(CreateGrantRequest {
                key_id: key_id.clone(),
                grantee_principal: grantee_principal.clone(),
                retiring_principal,
                operations,
                constraints,
                name,
            })?;
            if json {
                print_json(&service_value(&grant)?);
                return Ok(());
            }
            println!("Granted {grantee_principal} on {key_id}");
            print_fields(&[
                ("GrantId", grant.grant_id.clone()),
                ("GrantToken", grant.grant_token.clone()),
            ]);
            Ok(())
        }
        GrantCommand::List {
            key,
            grant_id,
            grantee_principal,
            page,
        } => {
            let engine = ctx.engine()?;
            let grants = engine.list_grants(
                &key,
                grant_id.as_deref(),
                grantee_principal.as_deref(),
                page.limit,
                page.marker.as_deref(),
            )?;
            print_grants(grants, json)
        }
        GrantCommand::ListRetirable {
            retiring_principal,
            page,
        } => {
            let engine = ctx.engine()?;
            let grants = engine.list_retirable_grants(
                &retiring_principal,
                page.limit,
                page.marker.as_deref(),
            )?;
            print_grants(grants, json)
        }
        GrantCommand::Retire {
            grant_token,
            key_id,
            grant_id,
        } => {
            let engine = ctx.engine()?;
            engine.retire_grant(
                grant_token.as_deref(),
                key_id.as_deref(),
                grant_id.as_deref(),
            )?;
            done(json, "Retired the grant")
        }
        GrantCommand::Revoke { key, grant_id } => {
            let engine = ctx.engine()?;
            engine.revoke_grant(&key, &grant_id)?;
            done(json, &format!("Revoked grant {grant_id} on {key}"))
        }
    }
}

pub fn managed_key(ctx: &Context, service: &str) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let meta = engine.managed_key(service)?;
    show_metadata(&meta, ctx.global.json, &format!("alias/aws/{service} ->"))
}

/// GetKeyLastUsage. The engine reads every process's uses from the data directory's audit
/// segments (at start, and what was appended since at each call); tracking starts with the
/// directory's first record.
pub fn last_usage(ctx: &Context, key: &str) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let answer = engine.get_key_last_usage(key)?;
    let value = service_value(&answer)?;
    if ctx.global.json {
        print_json(&value);
        return Ok(());
    }
    let secs = |v: &Value| {
        v.as_f64()
            .map(|s| date((s * 1000.0) as i64))
            .unwrap_or_default()
    };
    let usage = &value["KeyLastUsage"];
    let mut fields = vec![("KeyId", answer.key_id.clone())];
    if usage.is_object() {
        fields.push((
            "LastUsed",
            format!(
                "{} ({})",
                secs(&usage["Timestamp"]),
                usage["Operation"].as_str().unwrap_or_default()
            ),
        ));
        fields.push((
            "KmsRequestId",
            usage["KmsRequestId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
        fields.push((
            "CloudTrailEventId",
            usage["CloudTrailEventId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
    } else {
        fields.push(("LastUsed", "never (since tracking started)".into()));
    }
    fields.push(("TrackingStartDate", secs(&value["TrackingStartDate"])));
    fields.push(("KeyCreationDate", secs(&value["KeyCreationDate"])));
    print_fields(&fields);
    Ok(())
}
