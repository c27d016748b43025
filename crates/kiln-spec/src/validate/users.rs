//! `[[users]]`

use crate::dom::{At, Result, Table};
use crate::error::ErrorKind;
use crate::model::{LOGIN_SHELL, NO_HOME, SYSTEM_SHELL, User};
use crate::names;
use crate::validate::{no_duplicates, shape};

const FIELDS: &[&str] = &["name", "system", "uid", "groups", "shell", "home"];

pub(super) fn validate(tables: &[Table<'_>]) -> Result<Vec<User>> {
    let mut users = Vec::with_capacity(tables.len());
    let mut names_seen = Vec::new();
    let mut uids_seen = Vec::new();
    for t in tables {
        t.deny_unknown(FIELDS)?;
        let ctx = t.ctx();
        let name = t.required_string("name", "\"app\"")?;
        shape(ctx, &name, "user name", names::account_name)?;
        if name.value.chars().all(|c| c.is_ascii_digit()) || name.value == "root" {
            return Err(name.error(
                ctx,
                ErrorKind::InvalidValue,
                format!(
                    "`{}`: cannot create a user named `{}`",
                    name.path, name.value
                ),
                Some("choose a name of letters, e.g. `app`; root exists in every image".to_owned()),
            ));
        }
        let system = t.bool("system")?.is_some_and(|s| s.value);
        let uid = match t.integer("uid")? {
            None => None,
            Some(uid) => {
                let value = u32::try_from(uid.value)
                    .ok()
                    .filter(|u| *u != 0 && *u != u32::MAX && *u != 65534);
                let Some(value) = value else {
                    return Err(uid.error(
                        ctx,
                        ErrorKind::InvalidValue,
                        format!("`{}`: {} cannot be a user's uid", uid.path, uid.value),
                        Some(
                            "0 is root and 65534 is nobody; system users take 100-999, others \
                             1000 and up, or leave `uid` out to have one allocated"
                                .to_owned(),
                        ),
                    ));
                };
                uids_seen.push(At {
                    value: value.to_string(),
                    span: uid.span.clone(),
                    path: uid.path.clone(),
                });
                Some(value)
            }
        };
        let groups = t.string_list("groups")?.unwrap_or_default();
        for group in &groups {
            shape(ctx, group, "group name", names::account_name)?;
        }
        no_duplicates(ctx, &groups, "group")?;
        let shell = match t.string("shell")? {
            Some(s) => {
                shape(ctx, &s, "path", names::guest_path)?;
                s.value.to_owned()
            }
            None if system => SYSTEM_SHELL.to_owned(),
            None => LOGIN_SHELL.to_owned(),
        };
        let home = match t.string("home")? {
            Some(h) => {
                shape(ctx, &h, "path", names::guest_path)?;
                h.value.to_owned()
            }
            None if system => NO_HOME.to_owned(),
            None => format!("/home/{}", name.value),
        };
        names_seen.push(At {
            value: name.value.to_owned(),
            span: name.span.clone(),
            path: name.path.clone(),
        });
        users.push(User {
            name: name.value.to_owned(),
            system,
            uid,
            groups: groups.iter().map(|g| g.value.to_owned()).collect(),
            shell,
            home,
        });
    }
    if let Some(t) = tables.first() {
        no_duplicates(t.ctx(), &names_seen, "user")?;
        no_duplicates(t.ctx(), &uids_seen, "uid")?;
    }
    Ok(users)
}
