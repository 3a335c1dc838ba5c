//! A credential in a URL on the command line (issue 14, item 4): `init` and `scrape`
//! refuse it before connecting, as `db status --pg` refuses a password, and never echo it.

use assert_cmd::cargo::cargo_bin_cmd;

const PASSWORD: &str = "Sup3rSecretPassw0rd";

fn refused(args: &[&str]) -> String {
    let output = cargo_bin_cmd!("kongup")
        .args(args)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{args:?}: {stdout}{stderr}"
    );
    stderr.into_owned()
}

#[test]
fn init_refuses_a_user_and_password_in_an_admin_url() {
    // Port 9 (discard): nothing is asked of it, the refusal comes first.
    let url = format!("http://admin:{PASSWORD}@127.0.0.1:9");
    let stderr = refused(&["init", "--admin", &url]);
    assert!(
        stderr.contains("--admin http://[REDACTED]@127.0.0.1:9")
            && stderr.contains("--token-env")
            && stderr.contains("--token-file"),
        "{stderr}"
    );
}

#[test]
fn scrape_refuses_a_user_and_password_in_a_url() {
    let url = format!("http://kong:{PASSWORD}@127.0.0.1:9/metrics");
    let stderr = refused(&["scrape", "--interval", "1ms", &url]);
    assert!(
        stderr.contains("http://[REDACTED]@127.0.0.1:9/metrics") && stderr.contains("--token-env"),
        "{stderr}"
    );
}

#[test]
fn db_status_refuses_a_password_in_the_database_url_without_echoing_it() {
    let url = format!("postgres://kong:{PASSWORD}@127.0.0.1:9/kong");
    let output = cargo_bin_cmd!("kongup")
        .args(["db", "status", "--pg", &url])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(stderr.contains("PGPASSWORD"), "{stderr}");
}
