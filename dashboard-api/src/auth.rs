//! Users, roles, jurisdiction and tokens.
//!
//! Users live in a TOML file (`users.toml`) that operators edit with `jiancha user`; passwords are
//! stored only as Argon2id PHC strings. A login returns a signed, expiring token:
//!
//! ```text
//! v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "v1." + claims))>
//! ```
//!
//! A token is checked against the *current* users file on every request: removing a user,
//! changing their role, region or password, or raising their `token_epoch` (`jiancha user
//! revoke`, `POST /api/v1/users/{username}/revoke`) revokes their tokens at once (the claims
//! must still match; open WebSockets are closed too, see `live.rs`).
//! The region scope is a GB/T 2260 prefix (`43` province, `4306` city, `430626` county, 三级联网);
//! a user sees an alert, window or case only when its `region` starts with that prefix.

use std::collections::HashMap;
use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::ApiError;

/// What a user is for (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 书记/县长/中心主任 offices: live window status and alerts, big screen.
    Leader,
    /// 纪检监察 officers: the alert queue and every action on alerts.
    Inspector,
    /// Audit / 绩效 staff: history and performance metrics.
    Auditor,
    /// Operators: reference data, policy, users.
    Admin,
    /// Window systems sending events (`POST /api/v1/events`); sees no dashboard data.
    Publisher,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Inspector => "inspector",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Publisher => "publisher",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Leader,
            Role::Inspector,
            Role::Auditor,
            Role::Admin,
            Role::Publisher,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A jurisdiction: a GB/T 2260 code prefix of 2, 4 or 6 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    /// Whether a record of region `code` is inside this jurisdiction.
    pub fn covers(&self, code: &str) -> bool {
        code.starts_with(&self.0)
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Region {
    type Error = String;
    fn try_from(s: String) -> Result<Region, String> {
        let ok = matches!(s.len(), 2 | 4 | 6) && s.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Region(s))
        } else {
            Err(format!(
                "region {s:?} is not a GB/T 2260 prefix: use 2 digits for a province (43), 4 for \
                 a city (4306) or 6 for a county (430626)"
            ))
        }
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

/// One user of the users file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Display name (e.g. 平江县纪委 张三).
    #[serde(default)]
    pub name: String,
    /// Role.
    pub role: Role,
    /// Jurisdiction prefix.
    pub region: Region,
    /// Argon2id PHC string (`$argon2id$v=19$…`), made by `jiancha user add`.
    pub password_hash: String,
    /// Raised to revoke every token issued before (`jiancha user revoke`, or an admin's
    /// `POST /api/v1/users/{username}/revoke`); tokens carry the epoch they were issued in.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub token_epoch: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a login name cannot be used, if it cannot: non-empty, at most 64 characters, and no
/// whitespace, control character, quote, backslash or markup (`<`, `>`, `&`), because names are
/// shown in dashboards, logs, CSV files and the audit trail (docs/SECURITY.md).
pub fn check_username(name: &str) -> Result<(), String> {
    let bad = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"'`\\<>&".contains(*c));
    match bad {
        _ if name.is_empty() => Err("a username must not be empty".into()),
        _ if name.chars().count() > 64 => {
            Err(format!("username {name:?} is longer than 64 characters"))
        }
        Some(c) => Err(format!(
            "username {name:?} contains {c:?}: use letters, digits, '-', '_' or '.', without \
             spaces, quotes, control characters or markup"
        )),
        None => Ok(()),
    }
}

/// Why a display name cannot be used, if it cannot: at most 64 characters, no control
/// character and no markup (`<`, `>`).
pub fn check_display_name(name: &str) -> Result<(), String> {
    if name.chars().count() > 64 {
        return Err(format!(
            "display name {name:?} is longer than 64 characters"
        ));
    }
    match name.chars().find(|c| c.is_control() || "<>".contains(*c)) {
        Some(c) => Err(format!(
            "display name {name:?} contains {c:?}: no control characters or markup"
        )),
        None => Ok(()),
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    /// The users.
    #[serde(default, rename = "user")]
    users: Vec<User>,
}

/// Why a users file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct UsersError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when the file could not be read at all).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// The users, by login name.
#[derive(Debug, Clone, Default)]
pub struct Users {
    by_name: HashMap<String, User>,
    order: Vec<String>,
}

impl Users {
    /// Parse a users file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Users, UsersError> {
        let err = |line: usize, reason: String| UsersError {
            file: file.to_string(),
            line,
            reason,
        };
        let line_of = |offset: usize| text[..offset.min(text.len())].lines().count().max(1);
        let parsed: UsersFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(s.start));
            err(line, e.message().to_string())
        })?;
        let mut users = Users::default();
        for user in parsed.users {
            // Locate the entry for errors found after parsing.
            let at = text
                .find(&format!("\"{}\"", user.username))
                .map_or(1, line_of);
            if let Err(reason) =
                check_username(&user.username).and_then(|()| check_display_name(&user.name))
            {
                return Err(err(at, reason));
            }
            if PasswordHash::new(&user.password_hash).is_err() {
                return Err(err(
                    at,
                    format!(
                        "user {:?}: password_hash is not a PHC string; set it with `jiancha user add`",
                        user.username
                    ),
                ));
            }
            if users.by_name.contains_key(&user.username) {
                return Err(err(at, format!("user {:?} appears twice", user.username)));
            }
            users.order.push(user.username.clone());
            users.by_name.insert(user.username.clone(), user);
        }
        Ok(users)
    }

    /// Read and parse a users file.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|e| UsersError {
            file: path.display().to_string(),
            line: 0,
            reason: e.to_string(),
        })?;
        Users::parse(&path.display().to_string(), &text)
    }

    /// The file text for these users (what `jiancha user add` writes).
    pub fn to_toml(&self) -> String {
        let file = UsersFile {
            users: self.iter().cloned().collect(),
        };
        let body = toml::to_string(&file).unwrap_or_default();
        format!(
            "# jiancha users: edit with `jiancha user add`; passwords are Argon2id hashes.\n\n{body}"
        )
    }

    /// Write the file: beside it, then renamed over it, so a running API never reads a
    /// half-written file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, self.to_toml())?;
        std::fs::rename(&tmp, path)
    }

    /// Add a user, or replace the one of the same name.
    pub fn upsert(&mut self, user: User) {
        if !self.by_name.contains_key(&user.username) {
            self.order.push(user.username.clone());
        }
        self.by_name.insert(user.username.clone(), user);
    }

    /// Revoke every token of `username` (raise its epoch); `false` when there is no such user.
    pub fn revoke(&mut self, username: &str) -> bool {
        match self.by_name.get_mut(username) {
            Some(u) => {
                u.token_epoch = u.token_epoch.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// A user by login name.
    pub fn get(&self, username: &str) -> Option<&User> {
        self.by_name.get(username)
    }

    /// All users in file order.
    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.order.iter().filter_map(|n| self.by_name.get(n))
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Hash a password for the users file (Argon2id, random salt).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the stored hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Username.
    pub sub: String,
    /// Role at issue time.
    pub role: Role,
    /// Jurisdiction at issue time.
    pub region: Region,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// The user's `token_epoch` at issue time.
    pub epoch: u32,
    /// A keyed fingerprint of the password hash at issue time: a new password revokes the
    /// token (and says nothing about the password, being an HMAC under the server's secret).
    pub pwd: String,
}

/// Signs and checks tokens with a secret key.
#[derive(Clone)]
pub struct TokenKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// The shortest secret accepted: 32 bytes, the HMAC-SHA256 block of security.
pub const MIN_SECRET_BYTES: usize = 32;

impl TokenKey {
    /// A key from secret bytes (at least [`MIN_SECRET_BYTES`]).
    pub fn new(secret: &[u8]) -> Result<TokenKey, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the token secret has {} bytes; use at least {MIN_SECRET_BYTES} random bytes \
                 (e.g. `head -c 48 /dev/urandom | base64 > secret`)",
                secret.len()
            ));
        }
        Ok(TokenKey {
            secret: secret.to_vec(),
        })
    }

    /// Read a key from a file (surrounding whitespace ignored).
    pub fn load(path: &Path) -> Result<TokenKey, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let trimmed = text.trim_ascii();
        TokenKey::new(trimmed).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        // `new_from_slice` accepts any key length for HMAC; it cannot fail here.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(data);
        mac
    }

    /// The keyed fingerprint of a password hash carried in tokens (12 characters).
    fn password_fingerprint(&self, password_hash: &str) -> String {
        let mut data = b"password\0".to_vec();
        data.extend_from_slice(password_hash.as_bytes());
        let mac = self.mac(&data).finalize().into_bytes();
        B64.encode(&mac[..9])
    }

    /// A token for `user`, valid from `now` for `ttl_secs`.
    pub fn issue(&self, user: &User, now: i64, ttl_secs: i64) -> (String, Claims) {
        let claims = Claims {
            sub: user.username.clone(),
            role: user.role,
            region: user.region.clone(),
            iat: now,
            exp: now + ttl_secs,
            epoch: user.token_epoch,
            pwd: self.password_fingerprint(&user.password_hash),
        };
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let body = format!("v1.{}", B64.encode(json));
        let sig = B64.encode(self.mac(body.as_bytes()).finalize().into_bytes());
        (format!("{body}.{sig}"), claims)
    }

    /// Check a token's signature and expiry, and that its user still exists with the same role,
    /// region and password, and has not had its tokens revoked since.
    pub fn verify(&self, token: &str, users: &Users, now: i64) -> Result<Principal, ApiError> {
        let bad = || {
            ApiError::unauthorized(
                "the token is malformed or was not signed by this server; log in again",
            )
        };
        let (body, sig) = token.rsplit_once('.').ok_or_else(bad)?;
        let payload = body.strip_prefix("v1.").ok_or_else(bad)?;
        let sig = B64.decode(sig).map_err(|_| bad())?;
        self.mac(body.as_bytes())
            .verify_slice(&sig)
            .map_err(|_| bad())?;
        let json = B64.decode(payload).map_err(|_| bad())?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| bad())?;
        if claims.exp <= now {
            return Err(ApiError::unauthorized(
                "the token has expired; log in again (POST /api/v1/auth/login)",
            ));
        }
        let user = users.get(&claims.sub).ok_or_else(|| {
            ApiError::unauthorized(format!(
                "user {:?} no longer exists; ask an administrator",
                claims.sub
            ))
        })?;
        if user.role != claims.role || user.region != claims.region {
            return Err(ApiError::unauthorized(format!(
                "the role or region of user {:?} changed since this token was issued; log in again",
                claims.sub
            )));
        }
        if self.password_fingerprint(&user.password_hash) != claims.pwd {
            return Err(ApiError::unauthorized(format!(
                "the password of user {:?} changed since this token was issued; log in again",
                claims.sub
            )));
        }
        if user.token_epoch != claims.epoch {
            return Err(ApiError::unauthorized(format!(
                "the sessions of user {:?} were revoked by an administrator; log in again",
                claims.sub
            )));
        }
        Ok(Principal {
            username: user.username.clone(),
            name: user.name.clone(),
            role: user.role,
            region: user.region.clone(),
            expires_at: claims.exp,
        })
    }
}

/// Who is calling: an authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Username.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Jurisdiction.
    pub region: Region,
    /// Token expiry (Unix seconds).
    pub expires_at: i64,
}

impl Principal {
    /// Refuse unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "{what} is for the {} role; user {:?} is a {}",
            allowed.join(" or "),
            self.username,
            self.role.as_str()
        )))
    }

    /// Whether a record of this region is in the caller's jurisdiction.
    pub fn sees(&self, region: &str) -> bool {
        self.region.covers(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, role: Role, region: &str) -> User {
        User {
            username: name.to_string(),
            name: String::new(),
            role,
            region: Region::try_from(region.to_string()).expect("region"),
            password_hash: hash_password("pw").expect("hash"),
            token_epoch: 0,
        }
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("正确的密码").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("正确的密码", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(h, hash_password("正确的密码").expect("hash"), "salted");
    }

    #[test]
    fn tokens_expire_are_tamper_proof_and_follow_the_users_file() {
        let key = TokenKey::new(&[7u8; 32]).expect("key");
        let mut users = Users::default();
        users.upsert(user("pj", Role::Inspector, "430626"));
        let (token, claims) = key.issue(users.get("pj").expect("pj"), 1000, 60);
        assert_eq!(claims.exp, 1060);
        let p = key.verify(&token, &users, 1059).expect("valid");
        assert_eq!((p.role, p.region.as_str()), (Role::Inspector, "430626"));
        let expired = key.verify(&token, &users, 1060).expect_err("expired");
        assert!(expired.message.contains("expired"), "{expired}");
        // Another key, or a token whose claims were edited, is refused.
        let other = TokenKey::new(&[8u8; 32]).expect("key");
        assert!(other.verify(&token, &users, 1000).is_err());
        let (body, sig) = token.rsplit_once('.').expect("sig");
        let forged_claims =
            B64.encode(br#"{"sub":"pj","role":"inspector","region":"43","iat":1000,"exp":1060}"#);
        let forged = format!("v1.{forged_claims}.{sig}");
        assert_ne!(forged, token);
        assert!(key.verify(&forged, &users, 1000).is_err(), "{body}");
        // A new password, or an administrator's revocation, revokes the token.
        let mut repassworded = users.clone();
        let mut u = users.get("pj").expect("pj").clone();
        u.password_hash = hash_password("new").expect("hash");
        repassworded.upsert(u);
        let e = key
            .verify(&token, &repassworded, 1000)
            .expect_err("password");
        assert!(e.message.contains("password"), "{e}");
        let mut revoked = users.clone();
        assert!(revoked.revoke("pj") && !revoked.revoke("nobody"));
        let e = key.verify(&token, &revoked, 1000).expect_err("revoked");
        assert!(e.message.contains("revoked"), "{e}");
        let (fresh, _) = key.issue(revoked.get("pj").expect("pj"), 1000, 60);
        assert!(key.verify(&fresh, &revoked, 1000).is_ok());
        // Demoting the user revokes the token.
        users.upsert(user("pj", Role::Leader, "430626"));
        let e = key.verify(&token, &users, 1000).expect_err("role changed");
        assert!(e.message.contains("changed"), "{e}");
        assert!(TokenKey::new(b"short").is_err());
    }

    #[test]
    fn users_files_are_checked_with_line_numbers() {
        let h = hash_password("pw").expect("hash");
        let good = format!(
            "[[user]]\nusername = \"a\"\nrole = \"leader\"\nregion = \"4306\"\npassword_hash = \"{h}\"\n"
        );
        let users = Users::parse("users.toml", &good).expect("valid");
        assert_eq!(users.len(), 1);
        let reparsed = Users::parse("users.toml", &users.to_toml()).expect("round trip");
        assert_eq!(reparsed.get("a"), users.get("a"));

        let bad_role = good.replace("leader", "mayor");
        let e = Users::parse("users.toml", &bad_role).expect_err("role");
        assert_eq!((e.file.as_str(), e.line), ("users.toml", 3), "{e}");
        assert!(e.reason.contains("leader"), "names the allowed roles: {e}");

        let bad_region = good.replace("4306", "43A");
        let e = Users::parse("users.toml", &bad_region).expect_err("region");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.reason.contains("GB/T 2260"), "{e}");

        for name in ["a\\u0007b", "a\\\"b", "a'b", "<b>", "a b"] {
            let text = good.replace("username = \"a\"", &format!("username = \"{name}\""));
            let e = Users::parse("users.toml", &text).expect_err(name);
            assert!(e.reason.contains("username"), "{name}: {e}");
        }
        let bad_hash = good.replace(&h, "plaintext");
        let e = Users::parse("users.toml", &bad_hash).expect_err("hash");
        assert!(e.reason.contains("jiancha user add"), "{e}");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn jurisdiction_is_a_prefix() {
        let city = Region::try_from("4306".to_string()).expect("city");
        assert!(city.covers("430626") && city.covers("430621"));
        assert!(!city.covers("430105"));
        assert!(Region::try_from("430".to_string()).is_err());
    }
}
