//! Taking a node that failed out of its wave: the step's failure (which names the nodes),
//! what taking one out means, then the node's name typed and the reason.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use tui_input::Input;

use crate::plan::steps::{ClusterSide, StepKind, StepRef};
use crate::ui::state::ConsoleState;
use crate::ui::theme::Tone;

use super::{Dialog, irreversible::input_line, keys_line, paragraph};

const WIDTH: u16 = 76;

pub fn dialog(
    state: &ConsoleState,
    step: &StepRef,
    node: &Input,
    reason: Option<&Input>,
    area: Rect,
) -> Dialog {
    let theme = state.theme();
    let mut dialog = Dialog::new(format!("Take a node out · {step}"), WIDTH);
    let width = dialog.inner_width(area);
    let found = state.step(step);
    if let Some((s, status)) = found {
        dialog.body = paragraph(&s.title, width, theme.bold());
        if let Some(detail) = &status.detail {
            dialog.body.extend(paragraph(
                &format!("✖ {detail}"),
                width,
                theme.tone(Tone::Bad),
            ));
        }
    }
    // What is left behind differs by side: a Y node that did not start, an X node that
    // did not stop (and may still serve).
    let left = match found.map(|(s, _)| &s.kind) {
        Some(StepKind::StopNodes {
            cluster: ClusterSide::X,
            ..
        }) => {
            "An X node that did not stop stays as it is: kongup does not stop it again, \
             decommission-x leaves it alone, and status and the report name it \"taken out, \
             still running\"."
        }
        _ => {
            "A Y node that did not start is not waited for and gets no command again; status \
             and the report name it."
        }
    };
    dialog.body.push(Line::default());
    dialog.body.extend(paragraph(
        &format!(
            "The node is left out of the rest of the run. {left} Once every other node of the \
             step is done, the step runs again on them (its wait), and the run goes on."
        ),
        width,
        theme.tone(Tone::Plain),
    ));
    let name = node.value().trim();
    dialog.fixed = vec![Line::default()];
    match reason {
        None => {
            dialog.fixed.extend(paragraph(
                "Type the name of the node that failed:",
                width,
                theme.tone(Tone::Plain),
            ));
            dialog.fixed.push(input_line(state, node, width));
            dialog.fixed.push(Line::default());
            dialog.fixed.push(keys_line(
                theme,
                &[("⏎", "then the reason"), ("Esc", "cancel")],
            ));
        }
        Some(reason) => {
            dialog.fixed.push(Line::from(vec![
                Span::styled("Node: ", theme.tone(Tone::Plain)),
                Span::styled(name.to_string(), theme.bold()),
            ]));
            dialog.fixed.extend(paragraph(
                "Why is it taken out? The reason goes into the journal and the report.",
                width,
                theme.tone(Tone::Plain),
            ));
            dialog.fixed.push(input_line(state, reason, width));
            dialog.fixed.push(Line::default());
            dialog
                .fixed
                .push(keys_line(theme, &[("⏎", "take it out"), ("Esc", "cancel")]));
        }
    }
    dialog
}
