//! The operator's own commands: `set` is an argv template where `{x}` and `{y}` become
//! the percentages (e.g. `["lbctl", "weights", "--x", "{x}", "--y", "{y}"]`); the
//! optional `get` prints the applied split as `X Y` (two integers summing to 100, on
//! its last non-empty line). Both run through the plan's executor (local by default)
//! with the driver's timeout.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{LbError, ReadBackSource, Split, TrafficDriver};
use crate::exec::process::{kill_on_drop, longest_run};
use crate::exec::{ExecRequest, Executor, run_to_completion};
use crate::plan::model::{CommandDriver, CommandLine};

pub struct CommandTrafficDriver {
    spec: CommandDriver,
    executor: Arc<dyn Executor>,
}

fn error(message: String) -> LbError {
    LbError::Driver {
        driver: "command",
        message,
    }
}

impl CommandTrafficDriver {
    pub fn new(spec: CommandDriver, executor: Arc<dyn Executor>) -> Result<Self, LbError> {
        if spec.set.is_empty() {
            return Err(error(
                "traffic.command.set is empty: give the command that sets the split".to_string(),
            ));
        }
        Ok(CommandTrafficDriver { spec, executor })
    }

    /// The `set` argv for `split`.
    pub fn set_argv(&self, split: Split) -> Vec<String> {
        self.spec
            .set
            .iter()
            .map(|arg| {
                arg.replace("{x}", &split.x.to_string())
                    .replace("{y}", &split.y.to_string())
            })
            .collect()
    }

    async fn run(&self, argv: Vec<String>) -> Result<String, LbError> {
        let command = CommandLine::Argv(argv);
        let shown = command.display();
        let done = kill_on_drop(run_to_completion(
            self.executor.as_ref(),
            ExecRequest {
                command,
                env: Vec::new(),
                timeout: self.spec.timeout,
            },
            CancellationToken::new(),
        ))
        .await
        .map_err(|e| error(e.to_string()))?;
        if !done.outcome.success() {
            return Err(error(format!(
                "`{shown}` on {} {}",
                self.executor.describe(),
                done.failure_summary(3)
            )));
        }
        Ok(done.stdout())
    }
}

/// Reads `X Y` from the last non-empty line of a `get` command's output.
pub fn parse_split(output: &str) -> Result<Split, String> {
    let line = output
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .ok_or_else(|| "it printed nothing; it must print `X Y`, e.g. `95 5`".to_string())?;
    let numbers: Vec<u8> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("it printed {line:?}; it must print `X Y`, e.g. `95 5`"))?;
    match numbers[..] {
        [x, y] if u16::from(x) + u16::from(y) == 100 => Ok(Split { x, y }),
        _ => Err(format!(
            "it printed {line:?}; it must print two percentages that sum to 100, e.g. `95 5`"
        )),
    }
}

#[async_trait::async_trait]
impl TrafficDriver for CommandTrafficDriver {
    fn describe(&self) -> String {
        let set = CommandLine::Argv(self.spec.set.clone()).display();
        let get = match &self.spec.get {
            Some(get) => format!(
                ", read back with `{}`",
                CommandLine::Argv(get.clone()).display()
            ),
            None => ", which cannot be read back".to_string(),
        };
        format!("command on {}: `{set}`{get}", self.executor.describe())
    }

    fn read_back_source(&self) -> ReadBackSource {
        match self.spec.get {
            Some(_) => ReadBackSource::LoadBalancer,
            None => ReadBackSource::Nothing,
        }
    }

    fn call_timeout(&self) -> std::time::Duration {
        longest_run(self.spec.timeout)
    }

    async fn set_split(&self, split: Split) -> Result<(), LbError> {
        self.run(self.set_argv(split)).await.map(|_| ())
    }

    async fn read_split(&self) -> Result<Option<Split>, LbError> {
        let Some(get) = &self.spec.get else {
            return Ok(None);
        };
        let output = self.run(get.clone()).await?;
        parse_split(&output).map(Some).map_err(|e| {
            error(format!(
                "the get command `{}`: {e}",
                CommandLine::Argv(get.clone()).display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_gives_x_and_y() {
        assert_eq!(
            parse_split("checking…\n 95 5 \n\n"),
            Ok(Split { x: 95, y: 5 })
        );
        assert!(parse_split("95 6").is_err());
        assert!(parse_split("95").is_err());
        assert!(parse_split("ninety five").is_err());
        assert!(parse_split("").is_err());
    }
}
