//! `notify:`: the webhooks (each URL a secret, named by `env` or `file`) and the command
//! that hear when kongup needs the operator.

use super::read::{argv, index, list, mapping, secret};
use super::yaml::Node;
use super::{Loader, optional};
use crate::plan::model::NotifySpec;

impl Loader {
    pub(super) fn notify(&mut self, node: &Node) -> Option<NotifySpec> {
        let d = &mut self.d;
        let f = mapping(d, node, "notify", Some(&["webhooks", "command"]))?;
        let webhooks = optional(f.get("webhooks"), Vec::new(), |n| {
            let items = list(d, n, "notify.webhooks")?;
            let mut webhooks = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match secret(d, item, &index("notify.webhooks", i)) {
                    Some(source) => webhooks.push(source),
                    None => ok = false,
                }
            }
            ok.then_some(webhooks)
        });
        let command = optional(f.get("command"), None, |n| {
            argv(d, n, "notify.command").map(Some)
        });
        Some(NotifySpec {
            webhooks: webhooks?,
            command: command?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::plan::load::parse_plan;
    use crate::plan::model::SecretRef;

    const PLAN: &str = "\
name: notified
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
        proxy_url: http://127.0.0.1:9000
";

    #[test]
    fn webhooks_are_secrets_and_the_command_an_argv() {
        let text = format!(
            "{PLAN}notify:\n  webhooks:\n    - {{env: KONGUP_SLACK_WEBHOOK}}\n    - {{file: /etc/kongup/hook}}\n  command: [notify-send, kongup]\n"
        );
        let notify = parse_plan(&text, "plan.yaml").unwrap().plan.notify;
        assert_eq!(
            notify.webhooks,
            vec![
                SecretRef::Env("KONGUP_SLACK_WEBHOOK".into()),
                SecretRef::File(PathBuf::from("/etc/kongup/hook")),
            ]
        );
        assert_eq!(
            notify.command,
            Some(vec!["notify-send".to_string(), "kongup".to_string()])
        );
        assert_eq!(
            parse_plan(PLAN, "p").unwrap().plan.notify,
            Default::default()
        );
    }

    #[test]
    fn a_url_written_in_the_plan_is_refused_where_it_stands() {
        let text = format!(
            "{PLAN}notify:\n  webhooks:\n    - https://hooks.example/services/T/B/token\n  command: notify-send kongup\n"
        );
        let errors = parse_plan(&text, "plan.yaml").unwrap_err().diagnostics;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!((errors[0].line, errors[0].column), (17, 7));
        assert!(
            errors[0].message.contains("notify.webhooks[0]")
                && errors[0].message.contains("holds a secret inline"),
            "{}",
            errors[0]
        );
        assert!(
            !errors[0].to_string().contains("token"),
            "the error repeats the secret: {}",
            errors[0]
        );
        assert_eq!((errors[1].line, errors[1].column), (18, 12));
        assert!(errors[1].message.contains("must be a list of arguments"));
    }
}
