//! Configuration sections that carry their own reference documentation.
//!
//! [`section!`] declares a `serde` struct (`deny_unknown_fields`, every field defaulted) and, from
//! the same tokens, a table of its fields: TOML key, type, default, environment variable and the
//! `///` lines written on the field. The reference (`docs/CONFIG.md`) is rendered from that
//! table, so the documentation cannot drift from the code without a test noticing. Environment
//! overrides parse through [`FromEnv`], one small impl per scalar type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// One key of a section, as the reference shows it.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// TOML key.
    pub key: &'static str,
    /// Rust type as written (rendered as a TOML type by [`toml_type`]).
    pub ty: &'static str,
    /// Environment variable that overrides it, if any.
    pub env: Option<&'static str>,
    /// The field's `///` lines.
    pub doc: &'static [&'static str],
}

/// A documented configuration section.
pub trait Section: Default + serde::Serialize {
    /// The section's `///` lines.
    const DOC: &'static [&'static str];
    /// Its keys.
    const FIELDS: &'static [Field];
    /// Set `key` from an environment variable's text.
    fn set_from_env(&mut self, key: &str, text: &str) -> Result<(), String>;
}

/// Parse an environment variable's text into a field's type.
pub trait FromEnv: Sized {
    /// The value, or why the text is not one.
    fn from_env(text: &str) -> Result<Self, String>;
}

impl FromEnv for String {
    fn from_env(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
}

impl FromEnv for PathBuf {
    fn from_env(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
}

impl FromEnv for bool {
    fn from_env(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            other => Err(format!("expected true or false, found {other:?}")),
        }
    }
}

impl FromEnv for SocketAddr {
    fn from_env(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("expected an address like 127.0.0.1:8080, found {text:?}"))
    }
}

macro_rules! from_env_number {
    ($($t:ty),*) => {$(
        impl FromEnv for $t {
            fn from_env(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|_| {
                    format!("expected a non-negative integer, found {text:?}")
                })
            }
        }
    )*};
}
from_env_number!(u32, u64, usize);

impl<T: FromEnv> FromEnv for Option<T> {
    fn from_env(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            Ok(None)
        } else {
            T::from_env(text).map(Some)
        }
    }
}

/// Declare a documented section: `name: Type = default, env "VAR";` per field (`env` optional).
#[macro_export]
macro_rules! section {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident {
            $(
                $(#[doc = $fdoc:literal])*
                $(#[serde($($sattr:tt)*)])?
                $field:ident : $ty:ty = $default:expr $(, env $env:literal)? ;
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[doc = $fdoc])*
                $(#[serde($($sattr)*)])?
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default,)* }
            }
        }

        impl $crate::Section for $name {
            const DOC: &'static [&'static str] = &[$($sdoc),*];
            const FIELDS: &'static [$crate::Field] = &[$(
                $crate::Field {
                    key: stringify!($field),
                    ty: stringify!($ty),
                    env: $crate::first(&[$($env)?]),
                    doc: &[$($fdoc),*],
                },
            )*];
            #[allow(unused_variables)]
            fn set_from_env(&mut self, key: &str, text: &str) -> Result<(), String> {
                $($(
                    if key == stringify!($field) {
                        let _ = $env;
                        self.$field = <$ty as $crate::FromEnv>::from_env(text)?;
                        return Ok(());
                    }
                )?)*
                Err(format!("{key} cannot be set from the environment"))
            }
        }
    };
}

/// The first element, if any (for the optional `env` of [`section!`]).
pub const fn first(names: &[&'static str]) -> Option<&'static str> {
    match names {
        [first, ..] => Some(first),
        [] => None,
    }
}

/// Apply every environment override of a section; `lookup` reads a variable (the real
/// environment, or a map in tests). Errors name the variable.
pub fn apply_env<S: Section>(
    section: &mut S,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut errors = Vec::new();
    for field in S::FIELDS {
        let Some(var) = field.env else { continue };
        if let Some(text) = lookup(var) {
            if let Err(e) = section.set_from_env(field.key, &text) {
                errors.push(format!("{var}: {e}"));
            }
        }
    }
    errors
}

/// A Rust type as the reference names it.
pub fn toml_type(ty: &str) -> String {
    let compact: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    if let Some(inner) = compact
        .strip_prefix("Option<")
        .and_then(|s| s.strip_suffix('>'))
    {
        return format!("{} (optional)", toml_type(inner));
    }
    if let Some(inner) = compact
        .strip_prefix("Vec<")
        .and_then(|s| s.strip_suffix('>'))
    {
        return format!("array of {}", toml_type(inner));
    }
    match compact.as_str() {
        "String" => "string".into(),
        "PathBuf" => "path".into(),
        "SocketAddr" | "std::net::SocketAddr" => "address (host:port)".into(),
        "bool" => "boolean".into(),
        "u32" | "u64" | "usize" => "integer".into(),
        "BTreeMap<String,String>" => "table of strings".into(),
        // The configuration's enums are strings with the values the field's text lists.
        other if other.starts_with(|c: char| c.is_ascii_uppercase()) => "string".into(),
        other => other.to_string(),
    }
}

/// The markdown reference of a section: its documentation, then one entry per key with type,
/// default and environment variable. `header` is the TOML table header (`[kafka]`).
pub fn render<S: Section>(header: &str) -> String {
    let defaults = serde_json::to_value(S::default()).unwrap_or_default();
    let mut out = format!("## `{header}`\n\n");
    for line in S::DOC {
        out.push_str(line.trim());
        out.push('\n');
    }
    out.push_str("\n| key | type | default | environment |\n|---|---|---|---|\n");
    for f in S::FIELDS {
        let default = match defaults.get(f.key) {
            None | Some(serde_json::Value::Null) => "–".to_string(),
            Some(serde_json::Value::Array(a)) if a.is_empty() => "`[]`".into(),
            Some(serde_json::Value::Object(o)) if o.is_empty() => "`{}`".into(),
            Some(serde_json::Value::String(s)) if s.is_empty() => "`\"\"`".into(),
            Some(v) => format!("`{v}`"),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            f.key,
            toml_type(f.ty),
            default,
            f.env
                .map(|e| format!("`{e}`"))
                .unwrap_or_else(|| "–".into())
        ));
    }
    out.push('\n');
    for f in S::FIELDS {
        out.push_str(&format!("- **`{}`** —", f.key));
        for line in f.doc {
            out.push(' ');
            out.push_str(line.trim());
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

/// The 1-based line of a byte offset in `text`.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Where a key is written: the line of `key = …` inside the `index`-th occurrence of the table
/// `header` (`"kafka"`, or `"notify.channels"` for an array of tables), else the header's line,
/// else `None`. A plain line scan: it knows `[t]`, `[[t]]` and `key =`, which is how
/// configuration files are written; dotted or inline forms fall back to the header.
pub fn locate(text: &str, header: &str, index: usize, key: Option<&str>) -> Option<usize> {
    let mut seen = 0usize;
    let mut inside = false;
    let mut header_line = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let name = line
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim();
            inside = false;
            if name == header {
                if seen == index {
                    inside = true;
                    header_line = Some(n + 1);
                }
                seen += 1;
            }
            continue;
        }
        if inside {
            if let Some(key) = key {
                let k = line.split('=').next().unwrap_or_default().trim();
                if line.contains('=') && k.trim_matches('"') == key {
                    return Some(n + 1);
                }
            }
        }
    }
    header_line
}

#[cfg(test)]
mod tests {
    use super::*;

    section! {
        /// A test section.
        pub struct Demo {
            /// Where.
            url: String = "http://x".into(), env "DEMO_URL";
            /// How many.
            count: u32 = 3, env "DEMO_COUNT";
            /// Not from the environment.
            names: Vec<String> = Vec::new();
        }
    }

    #[test]
    fn env_overrides_parse_and_report_the_variable() {
        let mut d = Demo::default();
        let env = |k: &str| match k {
            "DEMO_URL" => Some("http://y".to_string()),
            "DEMO_COUNT" => Some("many".to_string()),
            _ => None,
        };
        let errors = apply_env(&mut d, &env);
        assert_eq!(d.url, "http://y");
        assert_eq!(d.count, 3);
        assert_eq!(
            errors,
            ["DEMO_COUNT: expected a non-negative integer, found \"many\""]
        );
        assert!(d.set_from_env("names", "a").is_err());
    }

    #[test]
    fn the_reference_names_key_type_default_env_and_doc() {
        let md = render::<Demo>("[demo]");
        assert!(
            md.contains("| `count` | integer | `3` | `DEMO_COUNT` |"),
            "{md}"
        );
        assert!(
            md.contains("| `names` | array of string | `[]` | – |"),
            "{md}"
        );
        assert!(md.contains("- **`url`** — Where."), "{md}");
    }

    #[test]
    fn locate_finds_keys_in_the_nth_table() {
        let text = "[a]\nx = 1\n[[c]]\nname = \"one\"\n[[c]]\nname = \"two\"\nurl = 3\n";
        assert_eq!(locate(text, "a", 0, Some("x")), Some(2));
        assert_eq!(locate(text, "c", 1, Some("url")), Some(7));
        assert_eq!(locate(text, "c", 0, Some("url")), Some(3));
        assert_eq!(locate(text, "b", 0, None), None);
        assert_eq!(line_of_offset(text, 10), 3);
    }
}
