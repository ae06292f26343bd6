//! `keyplane alias ...` and `keyplane tag ...`.

use keyplane::Tag;

use crate::args::{AliasCommand, TagCommand};
use crate::context::Context;
use crate::io::pairs;
use crate::outcome::Failure;
use crate::output::done;
use crate::output::{date, Response, Table};

pub fn run_alias(ctx: &Context, command: AliasCommand) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let json = ctx.global.json;
    match command {
        AliasCommand::Create { name, key } => {
            engine.create_alias(&name, &key)?;
            done(json, &format!("Created {name} -> {key}"))
        }
        AliasCommand::Update { name, key } => {
            engine.update_alias(&name, &key)?;
            done(json, &format!("Updated {name} -> {key}"))
        }
        AliasCommand::Delete { name } => {
            engine.delete_alias(&name)?;
            done(json, &format!("Deleted {name}"))
        }
        AliasCommand::List { key, page } => {
            let aliases =
                engine.list_aliases(key.as_deref(), page.limit, page.marker.as_deref())?;
            if json {
                return Response::print_page("Aliases", &aliases);
            }
            let mut table = Table::new(&["ALIAS", "TARGET KEY ID", "UPDATED"]);
            for a in &aliases.items {
                // A predefined alias of an integrated service has no key until its first use.
                table.row(vec![
                    a.alias_name.clone(),
                    a.target_key_id.clone().unwrap_or_else(|| "-".into()),
                    a.last_updated_date
                        .map_or_else(|| "-".into(), |d| date(d.0)),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

pub fn run_tag(ctx: &Context, command: TagCommand) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let json = ctx.global.json;
    match command {
        TagCommand::Add { key, tags } => {
            let tags: Vec<Tag> = pairs(&tags, "tag")?
                .into_iter()
                .map(|(tag_key, tag_value)| Tag { tag_key, tag_value })
                .collect();
            let n = tags.len();
            engine.tag_resource(&key, tags)?;
            done(json, &format!("Tagged {key} ({n} tags)"))
        }
        TagCommand::Remove { key, tag_keys } => {
            let keys: Vec<&str> = tag_keys.iter().map(String::as_str).collect();
            engine.untag_resource(&key, &keys)?;
            done(json, &format!("Untagged {key}"))
        }
        TagCommand::List { key, page } => {
            let tags = engine.list_resource_tags(&key, page.limit, page.marker.as_deref())?;
            if json {
                return Response::print_page("Tags", &tags);
            }
            let mut table = Table::new(&["TAG KEY", "TAG VALUE"]);
            for t in &tags.items {
                table.row(vec![t.tag_key.clone(), t.tag_value.clone()]);
            }
            table.print();
            Ok(())
        }
    }
}
