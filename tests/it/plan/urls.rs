//! A credential written into a URL of the plan (issue 14, item 4): refused where it is
//! written, and never repeated in the message.

use kongup::plan::load::parse_plan;

const PASSWORD: &str = "Sup3rSecretPassw0rd";

fn plan(key: &str, url: &str) -> String {
    format!(
        "\
name: urls
from: 3.4.3
to: 3.5.0
mode: traditional
strategy: in-place
clusters:
  x:
    nodes:
      - name: x1
        proxy_url: http://127.0.0.1:8000
  y:
    nodes:
      - name: y1
        {key}: {url}
"
    )
}

#[test]
fn a_credential_in_any_url_of_a_plan_is_refused_and_never_echoed() {
    for (key, hint) in [
        ("admin_url", "admin.token"),
        ("status_url", "admin.token"),
        ("proxy_url", "smoke_tests"),
    ] {
        for url in [
            format!("http://admin:{PASSWORD}@10.0.0.1:8001"),
            format!("https://{PASSWORD}@10.0.0.1:8444/admin"),
            // No host: it is no URL either, and the message still hides the password.
            format!("http://admin:{PASSWORD}@"),
        ] {
            let source = plan(key, &url);
            let errors = match parse_plan(&source, "plan.yaml") {
                Ok(_) => panic!("{key}: {url} was accepted"),
                Err(errors) => errors,
            };
            let text = errors.to_string();
            assert!(!text.contains(PASSWORD), "{text}");
            let diagnostic = &errors.diagnostics[0];
            assert_eq!(
                (diagnostic.line, diagnostic.column),
                (14, 9 + key.len() + 2),
                "{text}"
            );
            assert!(
                diagnostic
                    .message
                    .contains(&format!("clusters.y.nodes[0].{key}"))
                    && diagnostic.message.contains("[REDACTED]@"),
                "{text}"
            );
            if url.ends_with("@10.0.0.1:8001") || url.ends_with("/admin") {
                assert!(
                    diagnostic.message.contains("user name or password"),
                    "{text}"
                );
                let given = diagnostic.hint.as_deref().unwrap_or_default();
                assert!(given.contains(hint), "{key}: {given}");
            }
        }
    }
}
