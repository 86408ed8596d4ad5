//! `--chown` owners resolved the way BuildKit resolves them: names from the stage's own
//! `/etc/passwd` and `/etc/group`, numbers as they are.

/// A numeric owner for files a step writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
}

/// Why a `--chown` value could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    /// A user name that `/etc/passwd` does not list.
    #[error("unable to find user `{name}`: no matching entries in passwd file")]
    UnknownUser {
        /// The name given.
        name: String,
    },
    /// A group name that `/etc/group` does not list.
    #[error("unable to find group `{name}`: no matching entries in group file")]
    UnknownGroup {
        /// The name given.
        name: String,
    },
    /// An empty user part, such as `:staff`.
    #[error("invalid owner `{spec}`: the user part is empty")]
    Empty {
        /// The value given.
        spec: String,
    },
}

/// Finds `name` in a passwd- or group-format file and returns the numeric field after
/// the password field (uid for passwd, gid for group), plus the primary gid for passwd.
fn lookup(file: Option<&[u8]>, name: &str) -> Option<(u64, Option<u64>)> {
    let text = String::from_utf8_lossy(file?);
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&name) {
            return None;
        }
        let id = fields.get(2)?.trim().parse().ok()?;
        let primary = fields.get(3).and_then(|g| g.trim().parse().ok());
        Some((id, primary))
    })
}

/// Resolves `user[:group]`: numbers are taken as ids, names are looked up in `passwd`
/// and `group` (the stage's files, when it has them). Without a group, a numeric user
/// gets its own id as group id and a named user its primary group, as BuildKit does.
///
/// BuildKit silently uses id 0 for a name its files do not list; that hides typos
/// behind root-owned files, so an unknown name is an error here.
pub fn resolve_owner(
    spec: &str,
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> Result<Owner, OwnerError> {
    let (user, group_name) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    if user.is_empty() {
        return Err(OwnerError::Empty {
            spec: spec.to_string(),
        });
    }
    let (uid, primary_gid) = match user.parse::<u64>() {
        Ok(uid) => (uid, uid),
        Err(_) => {
            let (uid, primary) = lookup(passwd, user).ok_or_else(|| OwnerError::UnknownUser {
                name: user.to_string(),
            })?;
            (uid, primary.unwrap_or(uid))
        }
    };
    let gid = match group_name {
        None | Some("") => primary_gid,
        Some(name) => match name.parse::<u64>() {
            Ok(gid) => gid,
            Err(_) => {
                lookup(group, name)
                    .ok_or_else(|| OwnerError::UnknownGroup {
                        name: name.to_string(),
                    })?
                    .0
            }
        },
    };
    Ok(Owner { uid, gid })
}

/// The identity a RUN step runs as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids (without the primary one, as runc sets them).
    pub groups: Vec<u32>,
    /// The home directory from `/etc/passwd`, `/` when it has none.
    pub home: String,
}

/// One `/etc/passwd` line: name, uid, gid, home.
fn passwd_entries(passwd: Option<&[u8]>) -> Vec<(String, u32, u32, String)> {
    let text = String::from_utf8_lossy(passwd.unwrap_or_default());
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let uid = fields.get(2)?.trim().parse().ok()?;
            let gid = fields.get(3)?.trim().parse().ok()?;
            let home = fields.get(5).copied().unwrap_or("/").to_string();
            Some((fields[0].to_string(), uid, gid, home))
        })
        .collect()
}

/// One `/etc/group` line: name, gid, members.
fn group_entries(group: Option<&[u8]>) -> Vec<(String, u32, Vec<String>)> {
    let text = String::from_utf8_lossy(group.unwrap_or_default());
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let gid = fields.get(2)?.trim().parse().ok()?;
            let members = fields
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Some((fields[0].to_string(), gid, members))
        })
        .collect()
}

/// Resolves `USER` for a RUN step the way runc does for Docker: a name must be in
/// `/etc/passwd`; a number need not be (its group is then 0 and its home `/`); an explicit
/// group replaces both the primary group and the supplementary ones; otherwise the
/// supplementary groups are those `/etc/group` lists the user's name in.
pub fn resolve_run_user(
    spec: Option<&str>,
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> Result<RunUser, OwnerError> {
    let spec = spec.filter(|s| !s.is_empty()).unwrap_or("root");
    let (user, group_name) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    if user.is_empty() {
        return Err(OwnerError::Empty {
            spec: spec.to_string(),
        });
    }
    let users = passwd_entries(passwd);
    let found = match user.parse::<u32>() {
        Ok(uid) => users.iter().find(|u| u.1 == uid).cloned().or(Some((
            String::new(),
            uid,
            0,
            "/".to_string(),
        ))),
        Err(_) => users.iter().find(|u| u.0 == user).cloned(),
    };
    let Some((name, uid, primary, home)) = found else {
        // Docker's images have no passwd for scratch; root still works there.
        if user == "root" {
            return Ok(RunUser {
                home: "/root".to_string(),
                ..RunUser::default()
            });
        }
        return Err(OwnerError::UnknownUser {
            name: user.to_string(),
        });
    };
    let groups = group_entries(group);
    let (gid, supplementary) = match group_name {
        Some(wanted) => {
            let gid = match wanted.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => groups
                    .iter()
                    .find(|g| g.0 == wanted)
                    .map(|g| g.1)
                    .ok_or_else(|| OwnerError::UnknownGroup {
                        name: wanted.to_string(),
                    })?,
            };
            (gid, Vec::new())
        }
        None => {
            let mut supplementary: Vec<u32> = groups
                .iter()
                .filter(|g| !name.is_empty() && g.2.iter().any(|m| m == &name))
                .map(|g| g.1)
                .filter(|g| *g != primary)
                .collect();
            supplementary.dedup();
            (primary, supplementary)
        }
    };
    Ok(RunUser {
        uid,
        gid,
        groups: supplementary,
        home: if home.is_empty() {
            "/".to_string()
        } else {
            home
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:\nstaff:x:50:\napp:x:1001:\n";

    fn check(spec: &str, expected: Result<(u64, u64), &str>) {
        let actual = resolve_owner(spec, Some(PASSWD), Some(GROUP))
            .map(|o| (o.uid, o.gid))
            .map_err(|e| e.to_string());
        assert_eq!(actual, expected.map_err(str::to_string), "spec {spec:?}");
    }

    #[test]
    fn owners_resolve_like_buildkit() {
        check("0", Ok((0, 0)));
        check("10:11", Ok((10, 11)));
        check("1000", Ok((1000, 1000)));
        check("app", Ok((1000, 1001)));
        check("app:staff", Ok((1000, 50)));
        check("app:1001", Ok((1000, 1001)));
        check("55:app", Ok((55, 1001)));
        check(
            "nobody",
            Err("unable to find user `nobody`: no matching entries in passwd file"),
        );
        check(
            "app:wheel",
            Err("unable to find group `wheel`: no matching entries in group file"),
        );
        check(
            ":staff",
            Err("invalid owner `:staff`: the user part is empty"),
        );
    }

    #[test]
    fn run_users_resolve_like_runc() {
        let passwd: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
        let group: &[u8] = b"root:x:0:\nstaff:x:50:app,other\napp:x:1001:\nwheel:x:10:root\n";
        let run = |spec: Option<&str>| {
            resolve_run_user(spec, Some(passwd), Some(group)).map_err(|e| e.to_string())
        };
        let user = |uid, gid, groups: &[u32], home: &str| {
            Ok(RunUser {
                uid,
                gid,
                groups: groups.to_vec(),
                home: home.to_string(),
            })
        };
        // Supplementary groups only, never the primary one (runc, and BuildKit's `id`).
        assert_eq!(run(None), user(0, 0, &[10], "/root"));
        assert_eq!(run(Some("app")), user(1000, 1001, &[50], "/home/app"));
        assert_eq!(run(Some("1000")), user(1000, 1001, &[50], "/home/app"));
        assert_eq!(run(Some("app:staff")), user(1000, 50, &[], "/home/app"));
        assert_eq!(run(Some("4242")), user(4242, 0, &[], "/"));
        assert_eq!(run(Some("4242:7")), user(4242, 7, &[], "/"));
        assert_eq!(
            run(Some("ghost")),
            Err("unable to find user `ghost`: no matching entries in passwd file".into())
        );
        assert_eq!(
            run(Some("app:nogroup")),
            Err("unable to find group `nogroup`: no matching entries in group file".into())
        );
        assert_eq!(
            resolve_run_user(None, None, None),
            Ok(RunUser {
                home: "/root".into(),
                ..RunUser::default()
            })
        );
    }

    #[test]
    fn names_without_passwd_file_fail() {
        assert!(resolve_owner("app", None, None).is_err());
        assert_eq!(
            resolve_owner("5:6", None, None),
            Ok(Owner { uid: 5, gid: 6 })
        );
    }
}
