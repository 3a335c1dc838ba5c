//! Where everything goes. Designed at 80x24 first: a two-row header, the checklist and the
//! logs on the left, topology and metrics on the right, a one-row footer. Larger terminals
//! give the same arrangement more room; smaller ones get the too-small screen.

use ratatui::layout::Rect;

use super::state::Pane;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
pub const HEADER_ROWS: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenLayout {
    pub header: Rect,
    pub footer: Rect,
    pub checklist: Rect,
    pub logs: Rect,
    pub topology: Rect,
    pub metrics: Rect,
}

impl ScreenLayout {
    pub fn pane(&self, pane: Pane) -> Rect {
        match pane {
            Pane::Checklist => self.checklist,
            Pane::Logs => self.logs,
            Pane::Topology => self.topology,
            Pane::Metrics => self.metrics,
        }
    }

    /// The panes that are drawn: all four, or only the zoomed one over the whole body.
    pub fn visible(&self, zoomed: Option<Pane>) -> Vec<(Pane, Rect)> {
        match zoomed {
            Some(pane) => vec![(pane, self.body())],
            None => Pane::ORDER.iter().map(|&p| (p, self.pane(p))).collect(),
        }
    }

    pub fn body(&self) -> Rect {
        Rect::new(
            self.header.x,
            self.header.bottom(),
            self.header.width,
            self.footer.y - self.header.bottom(),
        )
    }
}

pub fn fits(area: Rect) -> bool {
    area.width >= MIN_WIDTH && area.height >= MIN_HEIGHT
}

/// The screen's layout, or `None` when the terminal is smaller than 80x24.
pub fn screen(area: Rect) -> Option<ScreenLayout> {
    if !fits(area) {
        return None;
    }
    let header = Rect::new(area.x, area.y, area.width, HEADER_ROWS);
    let footer = Rect::new(area.x, area.bottom() - 1, area.width, 1);
    let body_y = header.bottom();
    let body_h = footer.y - body_y;
    let left_w = (area.width * 11 / 20).max(46);
    let right_w = area.width - left_w;
    let checklist_h = (body_h * 11 / 20).max(14);
    let topology_h = body_h / 2;
    Some(ScreenLayout {
        header,
        footer,
        checklist: Rect::new(area.x, body_y, left_w, checklist_h),
        logs: Rect::new(area.x, body_y + checklist_h, left_w, body_h - checklist_h),
        topology: Rect::new(area.x + left_w, body_y, right_w, topology_h),
        metrics: Rect::new(
            area.x + left_w,
            body_y + topology_h,
            right_w,
            body_h - topology_h,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_tile_the_body_at_80x24_and_160x48() {
        for (w, h) in [(80, 24), (160, 48), (81, 25), (200, 60)] {
            let area = Rect::new(0, 0, w, h);
            let l = screen(area).expect("fits");
            let cells: u32 = [
                l.header,
                l.footer,
                l.checklist,
                l.logs,
                l.topology,
                l.metrics,
            ]
            .iter()
            .map(|r| r.area())
            .sum();
            assert_eq!(cells, area.area(), "{w}x{h}: panes overlap or leave gaps");
            for r in [l.checklist, l.logs, l.topology, l.metrics] {
                assert!(r.width >= 30 && r.height >= 7, "{w}x{h}: {r:?} too small");
                assert!(area.contains(r.as_position()));
            }
        }
    }

    #[test]
    fn below_80x24_there_is_no_layout() {
        assert!(screen(Rect::new(0, 0, 79, 24)).is_none());
        assert!(screen(Rect::new(0, 0, 80, 23)).is_none());
        assert!(screen(Rect::new(0, 0, 0, 0)).is_none());
    }
}
