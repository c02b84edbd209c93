//! Helpers shared by the binary's end-to-end tests.

use std::io::Write;
use std::process::{Command, Stdio};

/// `jiancha user …` with the password on standard input; its standard output.
pub fn jiancha_user(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .arg("user")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jiancha user");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("jiancha user");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `jiancha user add` of `username` with `role` over `region` (plus `extra` arguments, such as
/// `--name`) to the users file `users`, with `password`.
pub fn add_user(
    users: &std::path::Path,
    username: &str,
    role: &str,
    region: &str,
    extra: &[&str],
    password: &str,
) {
    let users = users.to_str().expect("UTF-8 path");
    let mut args = vec![
        "add",
        "--users",
        users,
        "--username",
        username,
        "--role",
        role,
        "--region",
        region,
    ];
    args.extend_from_slice(extra);
    jiancha_user(&args, &format!("{password}\n"));
}

/// A bearer token for `username` from `jiancha user token`.
#[allow(dead_code)] // not every test binary needs tokens from the CLI
pub fn token(users: &std::path::Path, secret: &std::path::Path, username: &str) -> String {
    jiancha_user(
        &[
            "token",
            "--users",
            users.to_str().expect("UTF-8 path"),
            "--token-secret-file",
            secret.to_str().expect("UTF-8 path"),
            "--username",
            username,
        ],
        "",
    )
}
