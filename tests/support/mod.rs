//! Helpers shared by the binary's end-to-end tests.

use std::io::Write;
use std::process::{Command, Stdio};

/// `jiancha user …` with the password on standard input; its standard output.
#[allow(dead_code)]
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
#[allow(dead_code)] // not every test binary adds users
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

/// Whether the command-line `tool` runs (`tool probe` starts at all): by hand a missing tool
/// skips the test (false); under `CI` it fails it, since `scripts/test.sh` installs it
/// (`how` says with what).
#[allow(dead_code)] // not every test binary needs outside tools
pub fn have(tool: &str, probe: &str, how: &str) -> bool {
    let ok = Command::new(tool).arg(probe).output().is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: {tool} is missing ({how} installs it)"
        );
        eprintln!("skipping: {tool} is not installed ({how} installs it)");
    }
    ok
}

/// Run `cmd` to its end; a command that cannot start fails the test.
#[allow(dead_code)]
pub fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}
