//! `keyplane credentials ...`: the access keys that sign requests to `keyplane serve`.
//!
//! Each is a store secret (`credential.<AccessKeyId>`), sealed under the root key; the store
//! records each change among its own events (naming the access key id, never the secret). A
//! secret is printed once, by `create`, from a buffer zeroed afterwards.

use std::io::Write;

use keyplane_server::auth::{CredentialInfo, CredentialStore};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::args::CredentialsCommand;
use crate::context::Context;
use crate::outcome::Failure;
use crate::output::{date, print_json, Table};

pub fn run(ctx: &Context, command: CredentialsCommand) -> Result<(), Failure> {
    let json = ctx.global.json;
    let store = CredentialStore::sqlite(ctx.open_store()?).with_lock_policy(ctx.lock_policy());
    match command {
        CredentialsCommand::Create => {
            let principal = ctx.global.principal.as_deref().ok_or_else(|| {
                Failure::usage(
                    "credentials create needs --principal ARN: the principal it signs as",
                )
            })?;
            let new = store.create(principal)?;
            let mut out = Zeroizing::new(Vec::<u8>::with_capacity(256));
            if json {
                #[derive(Serialize)]
                #[serde(rename_all = "PascalCase")]
                struct Created<'a> {
                    access_key_id: &'a str,
                    secret_access_key: &'a str,
                    principal: &'a str,
                    status: &'a str,
                    create_date: u64,
                }
                serde_json::to_writer(
                    &mut *out,
                    &Created {
                        access_key_id: &new.access_key_id,
                        secret_access_key: &new.secret_access_key,
                        principal: &new.principal,
                        status: "Active",
                        create_date: new.create_date,
                    },
                )
                .map_err(|e| Failure::from(keyplane::Error::Internal(e.to_string())))?;
                out.push(b'\n');
            } else {
                out.extend_from_slice(b"AccessKeyId ");
                out.extend_from_slice(new.access_key_id.as_bytes());
                out.extend_from_slice(b"\nSecretAccessKey ");
                out.extend_from_slice(new.secret_access_key.as_bytes());
                out.push(b'\n');
            }
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&out)
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::from(keyplane::Error::Internal(e.to_string())))?;
            if !json {
                eprintln!(
                    "Credential for {} created. The secret access key is shown only now: keyplane \
                     keeps it sealed and cannot show it again.",
                    new.principal
                );
            }
            Ok(())
        }
        CredentialsCommand::List => {
            let list = store.list()?;
            if json {
                let rows: Vec<_> = list.iter().map(listed).collect();
                print_json(&serde_json::json!({ "Credentials": rows }));
            } else {
                let mut table = Table::new(&["AccessKeyId", "Status", "Created", "Principal"]);
                for c in &list {
                    table.row(vec![
                        c.access_key_id.clone(),
                        c.status.to_owned(),
                        date(c.create_date as i64 * 1000),
                        c.principal.clone(),
                    ]);
                }
                table.print();
            }
            Ok(())
        }
        CredentialsCommand::Disable { access_key_id } => {
            store.disable(&access_key_id)?;
            changed(json, &access_key_id, "Inactive")
        }
        CredentialsCommand::Enable { access_key_id } => {
            store.enable(&access_key_id)?;
            changed(json, &access_key_id, "Active")
        }
        CredentialsCommand::Delete { access_key_id } => {
            store.delete(&access_key_id)?;
            changed(json, &access_key_id, "Deleted")
        }
    }
}

fn listed(c: &CredentialInfo) -> serde_json::Value {
    serde_json::json!({
        "AccessKeyId": c.access_key_id,
        "Principal": c.principal,
        "Status": c.status,
        "CreateDate": c.create_date,
    })
}

fn changed(json: bool, access_key_id: &str, status: &str) -> Result<(), Failure> {
    if json {
        print_json(&serde_json::json!({ "AccessKeyId": access_key_id, "Status": status }));
    } else {
        println!("{access_key_id} {}", status.to_lowercase());
    }
    Ok(())
}
