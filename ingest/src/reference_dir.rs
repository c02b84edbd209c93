//! Reading a reference directory (SPEC §4) from disk.
//!
//! ```text
//! DIR/items.csv  DIR/windows.csv  DIR/staff.csv  DIR/calendar/*.json  DIR/policy.toml
//! DIR/departments.csv  DIR/centers.csv   (optional display names for dashboards)
//! ```
//! Files are read here and parsed by `rules::reference`; every problem comes back with its file,
//! line and reason.

use std::fs;
use std::path::{Path, PathBuf};

use rules::{Policy, Reference, ReferenceError, ReferenceFiles};

/// Reference data and policy loaded from a directory.
#[derive(Debug)]
pub struct Loaded {
    /// Validated reference data.
    pub reference: Reference,
    /// Policy: `--policy FILE` if given, else `DIR/policy.toml`, else the defaults.
    pub policy: Policy,
    /// Which optional files were absent (for `jiancha check` to mention).
    pub notes: Vec<String>,
}

fn read(path: &Path, errors: &mut Vec<ReferenceError>) -> Option<(String, String)> {
    let name = path.display().to_string();
    match fs::read_to_string(path) {
        Ok(text) => Some((name, text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            errors.push(ReferenceError::new(
                &name,
                None,
                format!("cannot read: {e}"),
            ));
            None
        }
    }
}

/// Load `dir`, with an optional policy file overriding `dir/policy.toml`.
/// Returns every problem found.
pub fn load(dir: &Path, policy_file: Option<&Path>) -> Result<Loaded, Vec<ReferenceError>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    if !dir.is_dir() {
        return Err(vec![ReferenceError::new(
            &dir.display().to_string(),
            None,
            "not a directory (expected items.csv, windows.csv, staff.csv, calendar/, policy.toml)",
        )]);
    }
    let mut files = ReferenceFiles {
        items: read(&dir.join("items.csv"), &mut errors),
        windows: read(&dir.join("windows.csv"), &mut errors),
        staff: read(&dir.join("staff.csv"), &mut errors),
        calendar: Vec::new(),
        departments: read(&dir.join("departments.csv"), &mut errors),
        centers: read(&dir.join("centers.csv"), &mut errors),
    };
    for (name, present) in [
        ("windows.csv", files.windows.is_some()),
        ("staff.csv", files.staff.is_some()),
    ] {
        if !present {
            notes.push(format!("{name} absent: no window or staff reference data"));
        }
    }
    let cal_dir = dir.join("calendar");
    if cal_dir.is_dir() {
        let mut paths: Vec<PathBuf> = match fs::read_dir(&cal_dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(e) => {
                errors.push(ReferenceError::new(
                    &cal_dir.display().to_string(),
                    None,
                    format!("cannot list: {e}"),
                ));
                Vec::new()
            }
        };
        paths.sort();
        files
            .calendar
            .extend(paths.iter().filter_map(|p| read(p, &mut errors)));
    } else {
        notes.push("calendar/ absent: using the built-in official calendar 2020-2027".into());
    }
    let policy_path = policy_file.map_or_else(|| dir.join("policy.toml"), Path::to_path_buf);
    let policy = match read(&policy_path, &mut errors) {
        Some((name, text)) => Policy::parse(&name, &text).unwrap_or_else(|e| {
            errors.push(e);
            Policy::default()
        }),
        None if policy_file.is_some() => {
            errors.push(ReferenceError::new(
                &policy_path.display().to_string(),
                None,
                "policy file not found",
            ));
            Policy::default()
        }
        None => Policy::default(),
    };
    let reference = match Reference::parse(&files) {
        Ok(r) => Some(r),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    match reference {
        Some(reference) if errors.is_empty() => Ok(Loaded {
            reference,
            policy,
            notes,
        }),
        _ => Err(errors),
    }
}
